"""torchreid datasets, traps, bad input and tiny end-to-end training on the demo dataset."""

from __future__ import annotations

import json
import shutil
from collections import Counter
from pathlib import Path

import pytest
import torch

from augreid.data import load_market
from augreid.errors import ConfigError, DatasetError
from augreid.reid import load_reid_model
from augreid.reid.config import resolve_config
from augreid.reid.datasets import SYNTHETIC, build_union, dataset_classes, load_synthetic_set, register_datasets
from augreid.reid.train import train_reid
from reid_helpers import TINY, make_synthetic

pytestmark = pytest.mark.usefixtures("one_torch_thread")


# ---------------------------------------------------------------- torchreid traps


def test_registered_dataset_works_in_torchreids_own_datamanager(demo_root, market):
    register_datasets()
    register_datasets()  # idempotent: torchreid itself refuses a second registration
    from torchreid.reid.data import ImageDataManager

    manager = ImageDataManager(
        root=str(demo_root), sources="augreid_market", height=64, width=32, batch_size_train=8, workers=0, use_gpu=False
    )
    assert manager.num_train_pids == market.num_train_pids
    assert len(manager.test_loader["augreid_market"]["query"].dataset) == len(market.query)
    batch = next(iter(manager.train_loader))
    assert batch["img"].shape == (8, 3, 64, 32)


def test_wrong_layout_fails_without_any_download(tmp_path, monkeypatch):
    import torchreid.reid.data.datasets.dataset as tr_dataset
    import torchreid.reid.utils.tools as tr_tools

    def no_network(*args, **kwargs):
        raise AssertionError("a download was attempted")

    monkeypatch.setattr(tr_tools, "download_url", no_network)
    monkeypatch.setattr(tr_dataset, "download_url", no_network)
    (tmp_path / "images").mkdir()  # a folder laid out differently from Market-1501
    from torchreid.reid.data.datasets import init_image_dataset

    register_datasets()
    with pytest.raises(DatasetError, match="not a Market-1501 layout"):
        init_image_dataset("augreid_market", root=str(tmp_path), mode="train")
    _, market_cls, _ = dataset_classes()
    with pytest.raises(DatasetError, match="refusing to download"):
        market_cls.download_dataset(object.__new__(market_cls), str(tmp_path), "http://example.org/x.zip")


def test_training_only_set_needs_no_query_or_gallery(synth_root):
    from torchreid.reid.data.datasets import init_image_dataset
    from torchreid.reid.data.datasets.dataset import ImageDataset

    items = [("a.jpg", 0, 7, 0)]
    with pytest.raises(IndexError):  # the trap: torchreid indexes query[0]
        ImageDataset(items, [], [], verbose=False)
    register_datasets()
    synth = init_image_dataset("augreid_synthetic", root=str(synth_root))
    assert len(synth) > 0 and synth.query == [] and synth.gallery == []
    assert {item[3] for item in synth.train} == {SYNTHETIC}


def test_union_keeps_real_labels_unlike_torchreid_add(market, synth_root):
    synthetic = load_synthetic_set(synth_root, market)
    union = build_union(market, synthetic)
    assert len(union.train) == len(market.train) + len(synthetic.records)
    assert union.num_train_pids == market.num_train_pids  # torchreid's __add__ would double the ids
    by_name = {Path(p).name: label for p, label, _, d in union.train if d == SYNTHETIC}
    manifest = [json.loads(line) for line in (synth_root / "manifest.jsonl").read_text().splitlines()]
    for row in manifest[:5]:
        assert by_name[row["file"]] == market.pid2label[row["pid"]]


@pytest.mark.filterwarnings("ignore:Detected call of `lr_scheduler.step\\(\\)` before")
def test_torchreid_engine_without_scheduler_crashes_ours_gets_one(market, tmp_path):
    from torchreid.reid.engine import ImageSoftmaxEngine

    from augreid.reid.checkpoint import build_reid_model
    from augreid.reid.engine import ReidDataManager
    from augreid.reid.methods import get_method

    config = resolve_config(overrides={**TINY, "method": "softmax"})
    manager = ReidDataManager(market, None, config)
    model = build_reid_model("osnet_x0_25", manager.num_train_pids)
    optimizer = torch.optim.Adam(model.parameters())
    theirs = ImageSoftmaxEngine(manager, model, optimizer, scheduler=None, use_gpu=False)
    with pytest.raises(AttributeError):
        theirs.save_model(0, 0.0, str(tmp_path / "theirs"))
    ours = get_method("softmax").build_engine(config, manager, model, optimizer, None, use_gpu=False)
    assert ours.scheduler is not None
    lr = optimizer.param_groups[0]["lr"]
    ours.update_lr()
    assert optimizer.param_groups[0]["lr"] == lr  # the stand-in keeps the rate constant


def test_synthetic_images_ride_on_top_of_the_real_batch(market, synth_root):
    from augreid.reid.engine import ReidDataManager

    synthetic = load_synthetic_set(synth_root, market)
    config = resolve_config(overrides={**TINY, "synthetic": str(synth_root), "synthetic_per_batch": 4})
    manager = ReidDataManager(market, synthetic, config, identity=True)
    baseline = ReidDataManager(market, None, resolve_config(overrides=TINY), identity=True)
    assert manager.synthetic_per_batch == 4 and len(manager.batch_sampler.primary) == len(market.train)
    assert len(manager.train_loader) == len(baseline.train_loader) == TINY["iters_per_epoch"]
    for batch in manager.batch_sampler:
        flags = [manager.trainset.train[i][3] for i in batch]
        assert flags.count(SYNTHETIC) == 4 and len(flags) - 4 == TINY["batch_size"]


# ---------------------------------------------------------------- bad input, before any training


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error on a machine without CUDA")
def test_cuda_asked_for_without_a_gpu(tmp_path):
    with pytest.raises(ConfigError, match="no CUDA device"):
        train_reid(resolve_config(overrides={**TINY, "device": "cuda"}), tmp_path / "run")


def test_synthetic_folder_from_another_dataset(market, demo_root, tmp_path):
    foreign = make_synthetic(demo_root, tmp_path / "foreign", every=40, pid_offset=5000, fingerprint="x")
    with pytest.raises(DatasetError, match=r"not training ids of .*another dataset"):
        load_synthetic_set(foreign, market)
    other = make_synthetic(demo_root, tmp_path / "other", every=40, fingerprint="0123456789abcdef")
    with pytest.raises(DatasetError, match="made from dataset 0123456789abcdef"):
        load_synthetic_set(other, market)


def test_empty_or_missing_synthetic_folder(market, tmp_path):
    (tmp_path / "empty" / "bounding_box_train").mkdir(parents=True)
    with pytest.raises(DatasetError, match="synthetic folder .*no training images"):
        load_synthetic_set(tmp_path / "empty", market)
    with pytest.raises(DatasetError, match="does not exist"):
        load_synthetic_set(tmp_path / "nowhere", market)


def test_synthetic_names_must_not_reuse_real_ones(market, demo_root, tmp_path):
    clash = tmp_path / "clash" / "bounding_box_train"
    clash.mkdir(parents=True)
    shutil.copy(market.train[0].path, clash / market.train[0].name)
    (clash.parent / "synth.json").write_text(json.dumps({"status": "complete"}))
    with pytest.raises(DatasetError, match="also real training images"):
        load_synthetic_set(clash.parent, market)


def test_cap_per_identity(market, synth_root):
    full = load_synthetic_set(synth_root, market)
    capped = load_synthetic_set(synth_root, market, max_per_id=1, seed=3)
    assert len({r.pid for r in capped.records}) == len(capped.records) == len({r.pid for r in full.records})
    assert capped.records == load_synthetic_set(synth_root, market, max_per_id=1, seed=3).records
    assert capped.provenance()["num_available"] == len(full.records)


def test_unknown_model_fails_before_anything_is_written(tmp_path):
    config = resolve_config(overrides={**TINY, "model": "osnet_x9"})
    with pytest.raises(ConfigError, match="unknown model 'osnet_x9'"):
        train_reid(config, tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_missing_pretrained_weights_and_wrong_weights(tmp_path, demo_root):
    config = resolve_config(overrides={**TINY, "pretrained": str(tmp_path / "none.pth")})
    with pytest.raises(ConfigError, match="never downloads"):
        train_reid(config, tmp_path / "run")
    torch.save({"fc.weight": torch.zeros(3, 3)}, tmp_path / "wrong.pth")
    config = resolve_config(overrides={**TINY, "pretrained": str(tmp_path / "wrong.pth"), "data": str(demo_root)})
    with pytest.raises(ConfigError, match="no layer matches"):
        train_reid(config, tmp_path / "run2")


# ---------------------------------------------------------------- end to end


def _scalars(run_dir: Path) -> set[str]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"))
    acc.Reload()
    return set(acc.Tags()["scalars"])


def test_train_real_only_via_cli(tmp_path, demo_root):
    from typer.testing import CliRunner

    from augreid.cli import app

    out = tmp_path / "real"
    args = [
        "train-reid",
        "--out",
        str(out),
        "--data",
        str(demo_root),
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
        "--seed",
        "5",
        "--evaluate",
    ]
    config = tmp_path / "limit.toml"
    config.write_text("iters_per_epoch = 2\n")
    result = CliRunner().invoke(app, args + ["--config", str(config)])
    assert result.exit_code == 0, result.output
    assert "rank-1" in result.output
    model, info = load_reid_model(out)
    assert info["synthetic"] is None and info["seed"] == 5 and info["height"] == 64
    assert info["dataset_fingerprint"] == load_market(demo_root).fingerprint()
    run = json.loads((out / "run.json").read_text())
    evaluation = run["end_of_training_eval"]
    assert evaluation["evaluator"].startswith("augreid.evaluation") and evaluation["mAP"] > 0
    assert evaluation["rank1"] <= evaluation["rank5"] <= evaluation["rank10"] and len(run["epoch_seconds"]) == 1
    assert run["runtime"]["threads"] == 1 and run["method"] == "bot"
    assert run["pretrained"]["name"] == "imagenet" and len(run["pretrained"]["sha256"]) == 64
    assert resolve_config(out / "config.toml").seed == 5  # the resolved settings repeat the run
    assert {"Train/loss", "Train/acc", "Train/lr", "Test/rank1", "Test/mAP"} <= _scalars(out)
    with torch.no_grad():
        assert model(torch.zeros(2, 3, 64, 32)).shape[0] == 2
    bad = CliRunner().invoke(app, ["train-reid", "--out", str(tmp_path / "x"), "--model", "nope"])
    assert bad.exit_code == 2 and "unknown model 'nope'" in bad.output


REAL_EPS, SYNTH_EPS = 0.1, 0.3  # label smoothing of real images, of "smoothed-id" synthetic ones


@pytest.mark.parametrize("method", ["softmax", "triplet", "bot"])
@pytest.mark.parametrize("scheme", ["same-id", "lsro", "smoothed-id"])
def test_train_with_synthetic_images(tmp_path, demo_root, synth_root, scheme, method, monkeypatch):
    """What each method x label scheme does with a batch: the losses it computes, each synthetic image's
    cross-entropy target, its part in the triplet loss, and how the real images are sampled."""
    from augreid.reid import losses

    seen_ce: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = []  # (targets, is_synthetic, q)
    seen_triplet: list[tuple[int, torch.Tensor | None]] = []  # (images, anchors)
    target_distribution = losses.SyntheticLabelCrossEntropy.target_distribution
    batch_hard_triplet = losses.batch_hard_triplet

    def spy_ce(self, targets, is_synthetic, like):
        q = target_distribution(self, targets, is_synthetic, like)
        seen_ce.append((targets.detach().clone(), is_synthetic.detach().bool().clone(), q.detach().clone()))
        return q

    def spy_triplet(features, targets, margin, anchors=None):
        seen_triplet.append((len(targets), None if anchors is None else anchors.detach().bool().clone()))
        return batch_hard_triplet(features, targets, margin, anchors)

    monkeypatch.setattr(losses.SyntheticLabelCrossEntropy, "target_distribution", spy_ce)
    monkeypatch.setattr(losses, "batch_hard_triplet", spy_triplet)
    config = resolve_config(
        overrides={
            **TINY,
            "data": str(demo_root),
            "synthetic": str(synth_root),
            "synthetic_per_batch": 4,
            "label_scheme": scheme,
            "method": method,
            "max_synthetic_per_id": 2,
            "real_label_smoothing": REAL_EPS,
            "label_smoothing": SYNTH_EPS,
        }
    )
    result = train_reid(config, tmp_path / "run", progress=False)
    model, info = load_reid_model(result.run_dir)
    assert info["label_scheme"] == scheme and info["method"] == method
    assert info["synthetic"]["num_images"] <= 2 * info["synthetic"]["num_ids"]

    # Every optimizer step: 16 real images and 4 synthetic ones on top, through the cross entropy.
    batch, real, extra = TINY["batch_size"] + 4, TINY["batch_size"], 4
    assert len(seen_ce) == TINY["iters_per_epoch"]
    num_classes = seen_ce[0][2].shape[1]
    real_top = 1 - REAL_EPS + REAL_EPS / num_classes
    synthetic_top = {
        "same-id": real_top,
        "smoothed-id": 1 - SYNTH_EPS + SYNTH_EPS / num_classes,
        "lsro": 1 / num_classes,
    }
    for targets, is_synthetic, q in seen_ce:
        assert len(targets) == batch and int(is_synthetic.sum()) == extra
        assert torch.allclose(q[~is_synthetic].max(dim=1).values, torch.tensor(real_top))
        assert torch.allclose(q[is_synthetic].max(dim=1).values, torch.tensor(synthetic_top[scheme]))
        if method != "softmax":  # P identities x K (num_instances = 4) real images
            assert set(Counter(targets[~is_synthetic].tolist()).values()) == {4}

    # The triplet loss: none for softmax; for the others synthetic images are members (same-id),
    # never anchors (smoothed-id) or left out (lsro).
    scalars = _scalars(result.run_dir)
    assert {"Train/loss", "Train/synthetic_share"} <= scalars
    if method == "softmax":
        assert seen_triplet == [] and "Train/loss_t" not in scalars
        return
    assert {"Train/loss_t", "Train/loss_x"} <= scalars
    assert len(seen_triplet) == TINY["iters_per_epoch"]
    for (images, anchors), (_, is_synthetic, _) in zip(seen_triplet, seen_ce):
        if scheme == "same-id":
            assert images == batch and anchors is None
        elif scheme == "smoothed-id":
            assert images == batch and anchors is not None and torch.equal(anchors, ~is_synthetic)
        else:
            assert images == real and anchors is None
    # bot's BNNeck: retrieval features come out of a batch norm; triplet's are the backbone's.
    assert hasattr(model, "bottleneck") == (method == "bot")


def test_interrupted_run_resumes_to_the_same_weights(tmp_path, demo_root, monkeypatch):
    settings = {**TINY, "epochs": 2, "iters_per_epoch": 1, "data": str(demo_root)}
    config = resolve_config(overrides=settings)
    straight = train_reid(config, tmp_path / "a", progress=False)

    from torchreid.reid.engine import Engine

    original = Engine.train

    def stop_in_second_epoch(self, *args, **kwargs):
        if self.epoch == 1:
            raise KeyboardInterrupt
        return original(self, *args, **kwargs)

    monkeypatch.setattr(Engine, "train", stop_in_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        train_reid(config, tmp_path / "b", progress=False)
    monkeypatch.setattr(Engine, "train", original)
    resumed = train_reid(config, tmp_path / "b", progress=False)
    assert resumed.resumed_from == 1
    a = torch.load(straight.checkpoint, weights_only=True)["state_dict"]
    b = torch.load(resumed.checkpoint, weights_only=True)["state_dict"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    with pytest.raises(ConfigError, match="other settings"):
        train_reid(resolve_config(overrides={**settings, "lr": 0.1}), tmp_path / "b")
