"""`augreid run` end to end on the demo dataset, reduced to seconds per stage.

This is the README's first command with tiny settings: every stage runs for real
(PG2 training, synth, two torchreid arms over two seeds, evaluation, report).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from typer.testing import CliRunner

from augreid.cli import app

TINY = """
name = "tiny"
seeds = [0, 1]

[dataset]
root = "demo"

[generator]
preset = "cpu-small"

[generator.train]
stage1_steps = 12
stage2_steps = 6

[eval_gen]
max_pairs = 16

[synth]
poses = "clustered"
num_poses = 2
batch_size = 16
min_quality = {}  # a 12-iteration generator draws no person: the default PCKh filter would drop every image

[reid]
model = "osnet_x0_25"
epochs = 1
batch_size = 32
height = 64
width = 32
lr = 0.001

[eval]
flip = false
resamples = 50
"""


def _run(args: list[str]) -> str:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # small convolutions on a shared 2-core machine
    try:
        result = CliRunner().invoke(app, args)
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output + repr(result.exception)
    return result.output


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, demo_root) -> tuple[Path, Path, str]:
    base = tmp_path_factory.mktemp("pipeline")
    recipe = base / "tiny.toml"
    recipe.write_text(TINY)
    output = _run(["run", str(recipe), "--output", str(base / "runs")])
    return recipe, base / "runs" / "tiny", output


def _stage_dirs(run_dir: Path) -> dict[str, Path]:
    return {
        json.loads((p / "stage.json").read_text())["stage"]: p
        for p in run_dir.iterdir()
        if (p / "stage.json").is_file()
    }


@pytest.mark.slow
def test_every_stage_runs_and_the_report_has_the_answer(tiny_run):
    _, run_dir, output = tiny_run
    stages = _stage_dirs(run_dir)
    expected = {"check", "train-gen", "eval-gen", "synth", "synth-copy", "eval", "report"} | {
        f"train-reid-{arm}-s{seed}" for arm in ("baseline", "copy", "augmented") for seed in (0, 1)
    }
    assert set(stages) == expected
    report = (run_dir / "report.md").read_text()
    assert "**Answer:** augmented minus baseline rank-1" in report
    assert "**Answer:** augmented minus copy rank-1" in report  # the control a generator has to beat
    for section in (
        "## Dataset",
        "## Generator (pg2)",
        "## Synthetic set",
        "## Re-identification",
        "## Timings",
        "## Reproducibility",
        "## Software",
    ):
        assert section in report
    # Every re-ID run says what decides its exact numbers: threads, workers and CPU kernels.
    reproducibility = report[report.index("## Reproducibility") :]
    for seed in (0, 1):
        row = next(r for r in reproducibility.splitlines() if r.startswith(f"| train-reid-baseline-s{seed} |"))
        runtime = json.loads((stages[f"train-reid-baseline-s{seed}"] / "run" / "run.json").read_text())["runtime"]
        assert (
            f"| {runtime['threads']} | {runtime['workers']} | {runtime['cpu_capability']} | {runtime['cpu']} |" in row
        )
    # The numbers in the report are the evaluation stage's numbers.
    comparison = json.loads((stages["eval"] / "comparison.json").read_text())
    for diff in (d for d in comparison["differences"] if d["metric"] == "rank1" and d["group"] == "augmented"):
        assert f"augmented minus {diff['baseline']} rank-1 = {100 * diff['estimate']:+.2f} points" in report
    # Every picture the Markdown names exists.
    for rel in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", report):
        assert (run_dir / rel).is_file(), rel
    # eval-gen asks the first seed's real-only model whether generated people keep their identity.
    quality = json.loads((stages["eval-gen"] / "stage.json").read_text())
    assert quality["depends"] == ["train-gen", "train-reid-baseline-s0"]
    identity = quality["summary"]["identity"]
    assert identity["gallery_identities"] == 60 and set(identity["methods"]) >= {"G1", "copy condition"}
    for method, scores in identity["methods"].items():
        assert f"| {method} | {100 * scores['rank1']:.1f} | {100 * scores['mAP']:.1f} | {scores['queries']} |" in report
    synth = json.loads((stages["synth"] / "stage.json").read_text())["summary"]
    assert synth["counts"]["kept"] == 60 * 2  # 60 training identities x K = 2 poses


@pytest.mark.slow
def test_rerun_reuses_and_a_change_redoes_only_downstream(tiny_run):
    recipe, run_dir, _ = tiny_run
    before = _stage_dirs(run_dir)
    again = _run(["run", str(recipe), "--output", str(run_dir.parent)])
    assert "running" not in again and again.count("reusing") == len(before)
    dry = _run(["run", str(recipe), "--output", str(run_dir.parent), "--dry-run", "--set", "synth.num_poses=3"])
    actions = dict(re.findall(r"^(\S+)\s+(reuse|run|resume|skip)\s", dry, flags=re.M))
    assert actions["train-gen"] == "reuse" and actions["eval-gen"] == "reuse"
    assert actions["train-reid-baseline-s0"] == "reuse" and actions["train-reid-baseline-s1"] == "reuse"
    assert actions["synth"] == "run" and actions["train-reid-augmented-s0"] == "run"
    assert actions["eval"] == "run" and actions["report"] == "run"


def test_bad_recipe_fails_before_anything_runs(tmp_path):
    recipe = tmp_path / "bad.toml"
    recipe.write_text('name = "bad"\n[reid]\nepochs = "many"\nmodle = "x"\n')
    result = CliRunner().invoke(app, ["run", str(recipe), "--output", str(tmp_path / "runs")])
    assert result.exit_code == 2
    assert "reid.epochs: expected int" in result.output and "reid.modle: unknown key" in result.output
    assert not (tmp_path / "runs").exists()


def _chromium() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


@pytest.mark.slow
def test_report_html_images_load_in_headless_chromium(tiny_run, tmp_path):
    browser = _chromium()
    if browser is None:
        if os.environ.get("AUGREID_REQUIRE_BROWSER"):  # set by .ci/run, which installs Chromium
            pytest.fail("AUGREID_REQUIRE_BROWSER is set but no Chromium was found")
        pytest.skip("no Chromium on this machine (apt-get install chromium)")
    _, run_dir, _ = tiny_run
    html = run_dir / "report.html"
    dom = subprocess.run(
        [
            browser,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            f"--user-data-dir={tmp_path}",
            "--virtual-time-budget=10000",
            "--dump-dom",
            html.as_uri(),
        ],
        capture_output=True,
        text=True,
        timeout=120,
    ).stdout
    images = re.findall(r"<img[^>]*>", dom)
    assert len(images) >= 4, dom[:500]
    sizes = [re.search(r'data-natural="(\d+)x(\d+)"', img) for img in images]
    assert all(s is not None and int(s.group(1)) > 0 and int(s.group(2)) > 0 for s in sizes), sizes
