"""Same settings, seed and thread count -> the same weights and numbers.

Each run is a tiny but complete ``train-reid`` (ImageNet MobileNetV2 + bot, the
demo recipe's method) through the CLI, so everything a user's run does is in
the loop: sampler, augmentation, loader workers, warmup, evaluation.
"""

from __future__ import annotations

import json

import pytest
import torch
from typer.testing import CliRunner

from augreid.cli import app
from augreid.reid.checkpoint import load_reid_model


def _train(tmp_path, demo_root, name: str, *, seed: int = 0, workers: int = 0) -> tuple[dict, dict]:
    out = tmp_path / name
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
        "2",
        "--batch-size",
        "16",
        "--workers",
        str(workers),
        "--threads",
        "1",
        "--seed",
        str(seed),
        "--set",
        "iters_per_epoch=3",
        "--set",
        "warmup_epochs=0",
        "--set",
        "stepsize=[1]",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    model, _ = load_reid_model(out)
    return model.state_dict(), json.loads((out / "run.json").read_text())


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.fixture(scope="module")
def trained(demo_root, tmp_path_factory):
    """``trained(copy, seed, workers)``: one training per argument tuple in this module, shared by its tests."""
    runs: dict[tuple, tuple[dict, dict]] = {}
    root = tmp_path_factory.mktemp("repro")

    def get(copy: str, *, seed: int = 0, workers: int = 0) -> tuple[dict, dict]:
        key = (copy, seed, workers)
        if key not in runs:
            runs[key] = _train(root, demo_root, f"{copy}-s{seed}-w{workers}", seed=seed, workers=workers)
        return runs[key]

    return get


@pytest.mark.parametrize("workers", [0, 1])
def test_same_seed_and_threads_give_identical_weights_and_metrics(trained, workers):
    first, run1 = trained("a", workers=workers)
    second, run2 = trained("b", workers=workers)
    assert _same(first, second)
    assert run1["end_of_training_eval"] == run2["end_of_training_eval"]
    assert run1["runtime"]["threads"] == 1 and run1["runtime"]["workers"] == workers and run1["method"] == "bot"


def test_another_seed_gives_other_weights(trained):
    first, _ = trained("a", seed=0)
    other, _ = trained("a", seed=1)
    assert not _same(first, other)
