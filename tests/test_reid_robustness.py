"""train-reid on bad input: one-line errors before the first batch, nothing lost, no silent wrong results."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from augreid.cli import app
from augreid.data import load_market
from augreid.reid.config import resolve_config
from augreid.reid.losses import SyntheticLabelCrossEntropy
from augreid.reid.train import TrainingDiverged, train_reid

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TINY = [
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
    "--set",
    "iters_per_epoch=2",
]


def _copy(demo_root: Path, tmp_path: Path) -> Path:
    root = tmp_path / "data"
    shutil.copytree(demo_root, root)
    return root


def _invoke(*args: str):
    return CliRunner().invoke(app, ["train-reid", *args])


def _one_line(output: str) -> str:
    lines = [line for line in output.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1, output
    return lines[0]


@pytest.mark.parametrize("damage", ["empty", "truncated"])
def test_unreadable_training_image_stops_before_the_first_batch(demo_root, tmp_path, damage):
    root = _copy(demo_root, tmp_path)
    victim = (
        sorted((root / "Market-1501-v15.09.15" / "bounding_box_train").glob("*.jpg"))[3]
        if (root / "Market-1501-v15.09.15").is_dir()
        else sorted((root / "bounding_box_train").glob("*.jpg"))[3]
    )
    data = victim.read_bytes()
    victim.write_bytes(b"" if damage == "empty" else data[:600])
    result = _invoke("--out", str(tmp_path / "run"), "--data", str(root), *TINY)
    assert result.exit_code == 2
    line = _one_line(result.output)
    assert victim.name in line and "cannot be read" in line
    assert not (tmp_path / "run" / "checkpoint.pth").exists()


def test_non_finite_loss_stops_and_keeps_the_last_finished_epoch(demo_root, tmp_path, monkeypatch):
    settings = {
        "data": str(demo_root),
        "height": 64,
        "width": 32,
        "epochs": 2,
        "batch_size": 16,
        "iters_per_epoch": 2,
        "workers": 0,
        "threads": 1,
        "evaluate": False,
        "method": "softmax",
    }
    config = resolve_config(overrides=settings)
    train_reid(config, tmp_path / "run", progress=False)
    before = (tmp_path / "run" / "checkpoint.pth").read_bytes()
    longer = resolve_config(overrides={**settings, "epochs": 3})
    shutil.rmtree(tmp_path / "run2", ignore_errors=True)
    shutil.copytree(tmp_path / "run", tmp_path / "run2")
    (tmp_path / "run2" / "config.toml").write_text(longer.to_toml())
    monkeypatch.setattr(
        SyntheticLabelCrossEntropy, "forward", lambda self, x, y, is_synthetic=None: x.sum() * float("nan")
    )
    with pytest.raises(TrainingDiverged, match="loss became nan in epoch 3, batch 1"):
        train_reid(longer, tmp_path / "run2", progress=False)
    assert (tmp_path / "run2" / "checkpoint.pth").read_bytes() == before
    assert json.loads((tmp_path / "run2" / "run.json").read_text())["epoch"] == 2


def test_overwrite_never_deletes_a_folder_augreid_did_not_write(tmp_path):
    out = tmp_path / "mine"
    (out / "tensorboard").mkdir(parents=True)
    (out / "tensorboard" / "events.keep").write_text("user data")
    (out / "checkpoint.pth").write_text("not ours")
    result = _invoke("--out", str(out), "--overwrite", *TINY)
    assert result.exit_code == 2 and "holds no augreid re-ID run" in _one_line(result.output)
    assert (out / "tensorboard" / "events.keep").read_text() == "user data"
    assert (out / "checkpoint.pth").read_text() == "not ours"


def test_out_that_is_a_file(tmp_path):
    (tmp_path / "f").write_text("x")
    result = _invoke("--out", str(tmp_path / "f"), *TINY)
    assert result.exit_code == 2 and "is a file" in _one_line(result.output)


@pytest.mark.parametrize(
    "args,message",
    [
        (["--lr", "nan"], "lr: nan must be a finite number"),
        (["--lr", "inf"], "lr: inf must be a finite number"),
        (["--height", "7"], "too small"),
        (["--threads", "-2"], "threads: -2 must be at least 0"),
        (["--device", "banana"], "device: 'banana' is not one of"),
        (["--method", "arcface"], "method: 'arcface' is not one of"),
    ],
)
def test_bad_option_values_are_one_line_errors(tmp_path, args, message):
    result = _invoke("--out", str(tmp_path / "run"), *args)
    assert result.exit_code == 2 and message in result.output
    assert not (tmp_path / "run").exists()


def test_a_text_file_as_pretrained_weights(tmp_path):
    weights = tmp_path / "weights.pth"
    weights.write_text("hello, I am not a checkpoint\n")
    result = _invoke("--out", str(tmp_path / "run"), "--pretrained", str(weights), *TINY)
    assert result.exit_code == 2 and "cannot be read" in _one_line(result.output)


def test_small_gallery_end_of_training_evaluation_works(demo_root, tmp_path):
    root = _copy(demo_root, tmp_path)
    market = load_market(root)
    for record in market.gallery[50:]:
        record.path.unlink()
    result = _invoke("--out", str(tmp_path / "run"), "--data", str(root), "--evaluate", *TINY)
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    evaluation = run["end_of_training_eval"]
    # augreid's evaluator ran (torchreid's crashes on a small gallery) and found matches for the queries.
    assert evaluation["evaluator"].startswith("augreid.evaluation") and evaluation["mAP"] > 0
    assert evaluation["rank1"] <= evaluation["rank5"] <= evaluation["rank10"]


def test_no_query_split_says_the_evaluation_was_skipped(demo_root, tmp_path):
    root = _copy(demo_root, tmp_path)
    market = load_market(root)
    for record in market.query:
        record.path.unlink()
    result = _invoke("--out", str(tmp_path / "run"), "--data", str(root), "--evaluate", *TINY)
    assert result.exit_code == 0, result.output
    run = json.loads((tmp_path / "run" / "run.json").read_text())
    assert "skipped" in run["end_of_training_eval"]
