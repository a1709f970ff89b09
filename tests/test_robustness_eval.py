"""Issue 15, items 7b and 8 and the path hygiene: unfinished runs, recipe values, portable results."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from robustness_util import assert_one_line_error, invoke

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def fake_run(folder: Path, demo_root: Path, done: int, planned: int) -> Path:
    """A re-ID run folder stopped after ``done`` of ``planned`` epochs (random weights: only bookkeeping matters)."""
    from augreid.data.market import load_market
    from augreid.reid.checkpoint import build_reid_model, save_reid_checkpoint, update_run_json

    market = load_market(demo_root)
    model = build_reid_model("osnet_x0_25", market.num_train_pids)
    info = {
        "model_name": "osnet_x0_25",
        "num_classes": market.num_train_pids,
        "height": 64,
        "width": 32,
        "seed": 0,
        "dataset_fingerprint": market.fingerprint(),
    }
    save_reid_checkpoint(folder, model, info, epoch=done)
    update_run_json(folder, {"config": {"epochs": planned}})
    return folder


@pytest.fixture(scope="module")
def killed_run(tmp_path_factory, demo_root) -> Path:
    return fake_run(tmp_path_factory.mktemp("reid") / "killed", demo_root, done=1, planned=3)


# ---------------------------------------------------------------- item 7b: unfinished runs


def test_eval_refuses_an_unfinished_run(killed_run, demo_root, tmp_path):
    out = tmp_path / "eval"
    result = invoke("eval", "--run", f"base={killed_run}", "--data", demo_root, "--out", out, "--quiet", "--no-cache")
    assert_one_line_error(result, str(killed_run), "unfinished: 1 of 3 epochs", "--allow-unfinished")
    assert not out.exists()


def test_eval_marks_an_unfinished_run_when_allowed(killed_run, demo_root, tmp_path, monkeypatch):
    monkeypatch.chdir(demo_root.parent)  # paths below the working folder are recorded relative to it
    out = tmp_path / "eval"
    result = invoke(
        "eval",
        "--run",
        f"base={killed_run}",
        "--data",
        demo_root,
        "--out",
        out,
        "--quiet",
        "--no-cache",
        "--no-plots",
        "--resamples",
        "20",
        "--allow-unfinished",
    )
    assert result.exit_code == 0, result.output
    assert "note: base: unfinished: 1 of 3 epochs" in result.output
    comparison = json.loads((out / "comparison.json").read_text())
    assert comparison["runs"][0]["info"]["unfinished"] == "unfinished: 1 of 3 epochs"
    assert "1 (unfinished: 1 of 3 epochs)" in (out / "report.md").read_text()
    assert not Path(comparison["dataset"]["root"]).is_absolute()


def test_finished_run_is_scored_without_a_mark(demo_root, tmp_path):
    run = fake_run(tmp_path / "done", demo_root, done=2, planned=2)
    out = tmp_path / "eval"
    result = invoke(
        "eval",
        "--run",
        f"base={run}",
        "--data",
        demo_root,
        "--out",
        out,
        "--quiet",
        "--no-cache",
        "--no-plots",
        "--resamples",
        "20",
    )
    assert result.exit_code == 0, result.output
    assert "unfinished" not in result.output
    assert "unfinished" not in json.loads((out / "comparison.json").read_text())["runs"][0]["info"]


# ---------------------------------------------------------------- item 8: recipe values up front


BAD_RECIPE = """
name = "bad"
output = "{output}"
[generator]
preset = "cpu-smal"
[eval_gen]
max_pairs = -1
[synth]
num_poses = 0
[reid]
model = "osnet_x0_2"
epochs = -1
batch_size = 0
lr = -1
"""


def test_dry_run_reports_every_bad_value_before_any_stage(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text(BAD_RECIPE.format(output=tmp_path / "runs"))
    result = invoke("run", recipe, "--dry-run")
    assert result.exit_code == 2 and "Traceback" not in result.output
    for expected in (
        "eval_gen.max_pairs: must be 0 or more, got -1",
        "synth.num_poses: must be at least 1, got 0",
        "reid.epochs: -1",
        "reid.batch_size: 0",
        "reid.lr: -1.0 must be a finite number > 0",
        "unknown preset 'cpu-smal'",
        "unknown model 'osnet_x0_2'",
    ):
        assert expected in result.stderr, expected
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "override, message",
    [
        ("reid.lr=nan", "reid.lr: nan must be a finite number"),
        ("reid.lr=inf", "reid.lr: inf must be a finite number"),
        ("synth.min_quality={pose=1.5}", "synth.min_quality: pose=1.5 must be a number in [-1, 1]"),
        ("generator.train.batch_size=0", "generator.train.batch_size: must be >= 1"),
        ("reid.height=7", "reid.height/width: 7x64"),
    ],
)
def test_overrides_are_range_checked_too(tmp_path, override, message):
    recipe = tmp_path / "ok.toml"
    recipe.write_text(f'name = "ok"\noutput = "{tmp_path / "runs"}"\n')
    result = invoke("run", recipe, "--dry-run", "--set", override)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_default_recipe_values_pass_the_range_checks():
    from augreid.pipeline.recipe import validate

    recipe = validate({"name": "defaults"})  # raises if a default were out of range
    assert recipe.section("reid")["epochs"] >= 1


# ---------------------------------------------------------------- committed results hold no machine paths


def test_committed_results_hold_no_absolute_paths():
    repo = Path(__file__).resolve().parents[1]
    offenders = []
    for path in sorted((repo / "bench" / "results").rglob("*")):
        if path.suffix in (".json", ".md"):
            text = path.read_text(encoding="utf-8")
            for prefix in ("/work/", "/tmp/", "/root/", "/home/"):
                if f'"{prefix}' in text or f"`{prefix}" in text or f" {prefix}" in text or f"'{prefix}" in text:
                    offenders.append(f"{path.relative_to(repo)} ({prefix})")
    assert not offenders, offenders


def test_portable_path(monkeypatch):
    import os

    from augreid.io import portable_path

    here = Path.cwd()
    monkeypatch.setenv("AUGREID_HOME", str(here.parent / "some-home"))  # beside the checkout, as on a workstation
    assert portable_path(here / "runs" / "x") == os.path.join("runs", "x")
    assert portable_path(here.parent / "shared" / "data") == os.path.join("..", "shared", "data")
    assert portable_path("relative/as/given") == "relative/as/given"
    # Not "../some-home/subsets/...": that names a folder of this machine only.
    assert portable_path(here.parent / "some-home" / "subsets" / "p020") == "$AUGREID_HOME/subsets/p020"
    monkeypatch.setenv("AUGREID_HOME", str(here / "home"))  # a home inside the working folder stays relative
    assert portable_path(here / "home" / "x") == os.path.join("home", "x")
