"""Re-ID checkpoints: weights_only loading, run.json, clear errors."""

from __future__ import annotations

import json
from collections import Counter

import numpy as np
import pytest
import torch

from augreid.errors import AugreidError, ConfigError
from augreid.reid import load_reid_model, save_reid_checkpoint
from augreid.reid.checkpoint import build_reid_model, read_checkpoint, restore_training_state

pytestmark = pytest.mark.usefixtures("one_torch_thread")


INFO = {"model_name": "osnet_x0_25", "num_classes": 4, "height": 64, "width": 32, "seed": 3}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    torch.manual_seed(0)
    model = build_reid_model("osnet_x0_25", 4)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    # MultiStepLR keeps its milestones in a Counter, which weights_only refuses.
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1, 3])
    model.train()
    model(torch.randn(2, 3, 64, 32)).sum().backward()
    optimizer.step()
    scheduler.step()
    run_dir = tmp_path_factory.mktemp("run")
    # numpy scalars in the info (a rank-1 from torchreid's evaluator) must be stored as floats.
    info = {**INFO, "rank1": np.float64(0.25)}
    save_reid_checkpoint(run_dir, model, info, epoch=1, optimizer=optimizer, scheduler=scheduler)
    return run_dir, model, optimizer, scheduler


def test_checkpoint_loads_with_weights_only_and_holds_optimizer_and_scheduler(trained):
    run_dir, *_ = trained
    payload = torch.load(run_dir / "checkpoint.pth", map_location="cpu", weights_only=True)
    assert payload["epoch"] == 1
    assert payload["info"]["rank1"] == 0.25 and type(payload["info"]["rank1"]) is float
    assert payload["info"]["model_name"] == "osnet_x0_25"
    assert payload["scheduler"]["milestones"] == {1: 1, 3: 1}
    assert "state" in payload["optimizer"]


def test_load_reid_model_from_folder_and_file_gives_same_features(trained):
    run_dir, model, *_ = trained
    x = torch.randn(3, 3, 64, 32)
    model.eval()
    with torch.no_grad():
        expected = model(x)
    for path in (run_dir, run_dir / "checkpoint.pth", str(run_dir)):
        loaded, info = load_reid_model(path)
        assert not loaded.training
        with torch.no_grad():
            assert torch.allclose(loaded(x), expected, atol=1e-6)
    for key in (
        "model_name",
        "num_classes",
        "height",
        "width",
        "norm_mean",
        "norm_std",
        "dataset_fingerprint",
        "seed",
        "label_scheme",
        "synthetic",
    ):
        assert key in info
    assert (info["height"], info["width"], info["seed"], info["label_scheme"]) == (64, 32, 3, "same-id")


def test_run_json_merges_info(trained):
    run_dir, *_ = trained
    run = json.loads((run_dir / "run.json").read_text())
    assert run["num_classes"] == 4 and run["epoch"] == 1 and run["checkpoint"] == "checkpoint.pth"


def test_restore_training_state_brings_back_counter_milestones(trained):
    run_dir, model, *_ = trained
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    scheduler = torch.optim.lr_scheduler.MultiStepLR(optimizer, milestones=[1, 3])
    start = restore_training_state(read_checkpoint(run_dir), optimizer, scheduler)
    assert start == 1
    assert isinstance(scheduler.milestones, Counter) and scheduler.last_epoch == 1
    assert optimizer.state  # Adam moments came back


def test_missing_checkpoint_is_a_clear_error(tmp_path):
    with pytest.raises(AugreidError, match="checkpoint not found"):
        load_reid_model(tmp_path)
    with pytest.raises(AugreidError, match="checkpoint not found"):
        load_reid_model(tmp_path / "nope.pth")


def test_classifier_size_disagreeing_with_num_classes(tmp_path, trained):
    _, model, *_ = trained
    save_reid_checkpoint(tmp_path, model, {**INFO, "num_classes": 7}, epoch=1)
    with pytest.raises(AugreidError, match="classifier.weight has 4 outputs.*num_classes=7"):
        load_reid_model(tmp_path)


def test_unknown_model_name(tmp_path, trained):
    _, model, *_ = trained
    save_reid_checkpoint(tmp_path, model, {**INFO, "model_name": "osnet_x9"}, epoch=1)
    with pytest.raises(AugreidError, match="unknown model 'osnet_x9'"):
        load_reid_model(tmp_path)
    with pytest.raises(ConfigError, match="unknown model"):
        build_reid_model("not_a_net", 3)


def test_torchreid_style_pickle_is_refused_with_a_clear_error(tmp_path):
    # What torchreid's Engine.save_model writes: rank1 as a numpy scalar, refused by weights_only.
    torch.save({"state_dict": {}, "epoch": 1, "rank1": np.float64(0.5)}, tmp_path / "checkpoint.pth")
    with pytest.raises(AugreidError, match="not a loadable re-ID checkpoint"):
        read_checkpoint(tmp_path)
