"""The strong baseline (bot): BNNeck, warmup schedule, last stride, triplet anchors, checkpoints, DDP."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
import torch
from torchreid.reid.losses import TripletLoss

from augreid.reid import load_reid_model
from augreid.reid.config import resolve_config
from augreid.reid.losses import SyntheticAwareTripletLoss, batch_hard_triplet
from augreid.reid.methods import get_method, method_names, method_of
from augreid.reid.methods.bot import BNNeckModel, WarmupMultiStepLR
from augreid.reid.sampler import RankBatches
from augreid.reid.train import train_reid

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = {
    "height": 64,
    "width": 32,
    "epochs": 1,
    "batch_size": 16,
    "iters_per_epoch": 2,
    "workers": 0,
    "threads": 1,
    "evaluate": False,
}


def _bot(num_classes: int = 7, last_stride: int = 1) -> BNNeckModel:
    return get_method("bot").build_model("mobilenetv2_x1_0", num_classes, {"last_stride": last_stride})


def test_methods_are_registered_plug_ins():
    assert {"bot", "softmax", "triplet"} <= set(method_names())
    assert method_of({"loss": "softmax"}) == "softmax" and method_of({"loss": "both"}) == "triplet"
    assert method_of({"method": "bot", "loss": "triplet"}) == "bot"


def test_bnneck_features_in_training_and_in_eval_mode():
    torch.manual_seed(0)
    model = _bot()
    images = torch.randn(4, 3, 64, 32)
    logits, feature = model.train()(images)
    assert logits.shape == (4, 7) and feature.shape == (4, 1280)
    assert model.classifier.bias is None and not model.bottleneck.bias.requires_grad
    # the classifier sees the BN'd feature, the triplet loss the raw one
    assert torch.allclose(logits, model.classifier(model.bottleneck(feature)), atol=1e-5)
    model.eval()
    with torch.no_grad():
        retrieval = model(images)
        pooled = model.pooled(images)
    assert torch.allclose(retrieval, model.bottleneck(pooled), atol=1e-6)
    assert not torch.allclose(retrieval, pooled)


def test_last_stride_one_doubles_the_final_feature_map():
    x = torch.zeros(1, 3, 128, 64)
    with torch.no_grad():
        ls1 = _bot(last_stride=1).eval().backbone.featuremaps(x)
        ls2 = _bot(last_stride=2).eval().backbone.featuremaps(x)
    assert ls2.shape[-2:] == (4, 2) and ls1.shape[-2:] == (8, 4)


def test_warmup_then_step_schedule_values():
    param = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.Adam([param], lr=1.0)
    scheduler = WarmupMultiStepLR(optimizer, milestones=[40, 70], gamma=0.1, warmup_epochs=10, warmup_factor=0.1)
    seen = []
    for _ in range(80):
        seen.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    assert seen[0] == pytest.approx(0.1) and seen[5] == pytest.approx(0.55) and seen[9] == pytest.approx(0.91)
    assert seen[10] == pytest.approx(1.0) and seen[39] == pytest.approx(1.0)
    assert seen[40] == pytest.approx(0.1) and seen[70] == pytest.approx(0.01)
    state = scheduler.state_dict()
    fresh = WarmupMultiStepLR(torch.optim.Adam([param], lr=1.0), [40, 70])
    fresh.load_state_dict(state)
    assert fresh.factor(fresh.last_epoch) == scheduler.factor(scheduler.last_epoch)


def test_batch_hard_triplet_equals_torchreid_and_anchor_rules():
    torch.manual_seed(1)
    feats, pids = torch.randn(8, 5), torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    assert batch_hard_triplet(feats, pids, 0.3).item() == pytest.approx(TripletLoss(0.3)(feats, pids).item(), abs=1e-5)
    # 1-D: real a (pid 0) at 0, real b (pid 1) at 1, synthetic s (pid 0) at 5.
    feats, pids, synthetic = (
        torch.tensor([[0.0], [1.0], [5.0]]),
        torch.tensor([0, 1, 0]),
        torch.tensor([False, False, True]),
    )
    member = SyntheticAwareTripletLoss.for_scheme("same-id", 0.3)(feats, pids, synthetic)
    non_anchor = SyntheticAwareTripletLoss.for_scheme("smoothed-id", 0.3)(feats, pids, synthetic)
    excluded = SyntheticAwareTripletLoss.for_scheme("lsro", 0.3)(feats, pids, synthetic)
    # anchors: a (pos s at 5, neg b at 1 -> 4.3); s (pos a at 5, neg b at 4 -> 1.3); b (only itself, neg a -> 0)
    assert member.item() == pytest.approx((4.3 + 1.3 + 0.0) / 3, abs=1e-4)
    assert non_anchor.item() == pytest.approx((4.3 + 0.0) / 2, abs=1e-4)  # s is a's positive, never an anchor
    assert excluded.item() == pytest.approx(0.0, abs=1e-5)  # without s, a has no positive but itself


def test_rank_batches_partition_the_single_process_sequence():
    batches = [[i, i + 1] for i in range(0, 14, 2)]  # 7 batches
    ranks = [list(RankBatches(batches, r, 2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == 3  # equal step counts, the odd batch dropped
    assert sorted(sum(ranks, [])) == batches[:6]


def test_bot_checkpoint_loads_back_exactly(tmp_path, demo_root):
    config = resolve_config(overrides={**TINY, "data": str(demo_root), "method": "bot"})
    result = train_reid(config, tmp_path / "run", progress=False)
    model, info = load_reid_model(result.run_dir)
    assert info["method"] == "bot" and info["method_options"] == {"last_stride": 1}
    assert isinstance(model, BNNeckModel) and not model.training
    state = torch.load(result.checkpoint, weights_only=True)["state_dict"]
    again = _bot(info["num_classes"])
    again.load_state_dict(state)
    images = torch.randn(3, 3, 64, 32)
    with torch.no_grad():
        assert torch.equal(model(images), again.eval()(images))


def test_bot_under_torchrun_with_gloo_and_two_processes(tmp_path, demo_root):
    out = tmp_path / "ddp"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nnodes",
        "1",
        "--nproc_per_node",
        "2",
        "-m",
        "augreid.cli",
        "train-reid",
        "--out",
        str(out),
        "--data",
        str(demo_root),
        "--method",
        "bot",
        "--height",
        "64",
        "--width",
        "32",
        "--epochs",
        "1",
        "--batch-size",
        "16",
        "--workers",
        "0",
        "--threads",
        "1",
        "--no-evaluate",
        "--device",
        "cpu",
        "--set",
        "iters_per_epoch=4",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    run = json.loads((out / "run.json").read_text())
    assert run["runtime"]["world_size"] == 2
    payload = torch.load(out / "checkpoint.pth", weights_only=True)
    steps = {int(s["step"]) for s in payload["optimizer"]["state"].values()}
    assert steps == {2}  # 4 batches shared by 2 ranks: 2 optimiser steps each
    model, _ = load_reid_model(out)
    assert model(torch.zeros(1, 3, 64, 32)).shape == (1, 1280)


def test_torchreid_engines_refuse_torchrun(monkeypatch, tmp_path):
    from augreid.errors import ConfigError
    from augreid import runtime as dist_module

    fake = dist_module.DistInfo(0, 2, 0, torch.device("cpu"), False)
    monkeypatch.setattr("augreid.reid.train.init_distributed", lambda preference: fake)
    with pytest.raises(ConfigError, match="method softmax runs in one process"):
        train_reid(resolve_config(overrides={**TINY, "method": "softmax"}), tmp_path / "run")
