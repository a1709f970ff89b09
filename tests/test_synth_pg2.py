"""augreid synth with a real (freshly initialised) PG2 checkpoint: the CLI, torchrun sharding, the identity scorer."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from augreid.data.market import load_market
from augreid.data.sources import resolve_source
from augreid.synth import SynthConfig, synthesize

from synth_helpers import IDS, K, image_bytes, read_manifest, run, small_config


@pytest.fixture(scope="module")
def pg2_runs(demo_root, tmp_path_factory) -> Path:
    """A folder holding ``runs/``: a tiny PG2 trained for 2 steps by the real train-gen code."""
    from generators import pg2  # first-party: an import error must fail, not skip
    from generators.pg2.train import default_run_dir, train_generator

    import torch

    torch.set_num_threads(2)
    cfg = pg2.load_preset(
        "cpu-small",
        {
            "model.hidden": 8,
            "model.z_dim": 16,
            "model.g2_hidden": 8,
            "model.d_hidden": 8,
            "train.stage1_steps": 1,
            "train.stage2_steps": 1,
            "train.batch_size": 2,
            "data.max_pairs": 40,
            "log.checkpoint_every": 1,
        },
    )
    home = tmp_path_factory.mktemp("pg2")
    fingerprint = load_market(resolve_source(demo_root).root).fingerprint()
    train_generator(cfg, demo_root, out=default_run_dir(fingerprint, cfg.name, home / "runs"), progress=False)
    return home


@pytest.mark.slow
def test_cli_synth_with_real_pg2_checkpoint(pg2_runs, demo_root, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from augreid.cli import app

    monkeypatch.chdir(pg2_runs)  # --generator defaults to the latest checkpoint under ./runs
    out = tmp_path / "synth"
    args = [
        "synth",
        "--data",
        str(demo_root),
        "--out",
        str(out),
        "-k",
        "2",
        "--max-ids",
        "3",
        "--batch-size",
        "4",
        "--workers",
        "1",
        "--min-quality",
        "none",
        "--no-progress",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "cluster sizes" in result.output
    summary = json.loads((out / "synth.json").read_text())
    from generators.pg2 import find_latest_checkpoint
    from augreid.io import sha256_file

    checkpoint = find_latest_checkpoint(summary["data"]["dataset_fingerprint"])
    assert summary["generator"]["hash"] == sha256_file(checkpoint) and summary["generator"]["name"] == "pg2"
    assert summary["generator"]["outputs"] == ["G1", "refined"]
    assert summary["counts"]["kept"] == 3 * 2
    rows = read_manifest(out)
    assert {r["generator"] for r in rows} == {sha256_file(checkpoint)}
    from PIL import Image

    with Image.open(out / rows[0]["file"]) as img:
        assert img.size == (64, 128)
    # The same command again finds the finished run and changes nothing.
    before = image_bytes(out)
    again = CliRunner().invoke(app, args)
    assert again.exit_code == 0 and "already done" in again.output and image_bytes(out) == before
    # With a different setting the folder is refused with a one-line error.
    refused = CliRunner().invoke(app, args[:-1] + ["--seed", "3", "--no-progress"])
    assert refused.exit_code == 2 and "different synth run" in refused.output


def test_cli_without_any_checkpoint_says_to_train_one(demo_root, tmp_path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from augreid.cli import app

    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["synth", "--data", str(demo_root), "--out", str(tmp_path / "o"), "--no-progress"])
    assert result.exit_code == 2 and "augreid train-gen" in result.output
    assert not (tmp_path / "o").exists()


@pytest.mark.slow
def test_torchrun_two_ranks_gloo_match_a_single_process(pg2_runs, demo_root, tmp_path) -> None:
    """2 CPU processes with gloo: disjoint shards, one merged manifest equal to a 1-process run."""
    import os
    import subprocess
    import sys

    checkpoint = next((pg2_runs / "runs").rglob("*.safetensors"))
    common = [
        "--data",
        str(demo_root),
        "--generator",
        str(checkpoint),
        "-k",
        "3",
        "--max-ids",
        "4",
        "--batch-size",
        "4",
        "--workers",
        "0",
        "--device",
        "cpu",
        "--threads",
        "1",
        "--no-progress",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch(*args: str) -> subprocess.CompletedProcess:
        # Own process group, so that a hang cannot leave worker processes behind.
        proc = subprocess.Popen(
            [sys.executable, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            start_new_session=True,
        )
        try:
            stdout, stderr = proc.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, 9)
            stdout, stderr = proc.communicate()
        return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr)

    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in the launched ranks, so that bytes can be compared
    try:
        synthesize(
            tmp_path / "one",
            SynthConfig(num_poses=3, max_ids=4, batch_size=4, num_workers=0, device="cpu"),
            data=demo_root,
            generator=checkpoint,
            progress=False,
            echo=lambda _m: None,
        )
    finally:
        torch.set_num_threads(threads)
    multi = launch(
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "augreid.cli",
        "synth",
        "--out",
        str(tmp_path / "two"),
        *common,
    )
    assert multi.returncode == 0, multi.stderr[-3000:]
    summary = json.loads((tmp_path / "two" / "synth.json").read_text())
    assert summary["runtime"]["world_size"] == 2
    journals = {
        p.name: {json.loads(x)["file"] for x in p.read_text().splitlines()}
        for p in (tmp_path / "two" / ".progress").glob("*.jsonl")
    }
    assert sorted(journals) == ["rank0.jsonl", "rank1.jsonl"]
    assert journals["rank0.jsonl"] and journals["rank1.jsonl"] and not journals["rank0.jsonl"] & journals["rank1.jsonl"]
    assert read_manifest(tmp_path / "two") == read_manifest(tmp_path / "one")
    assert image_bytes(tmp_path / "two") == image_bytes(tmp_path / "one")


# ---------------------------------------------------------------- identity agreement


def test_identity_scorer_compares_with_the_source_centroid() -> None:
    import torch

    from augreid.synth.quality import IdentityScorer

    class MeanColour(torch.nn.Module):  # a "re-ID model" whose feature is the mean colour
        def forward(self, x):
            return x.mean(dim=(2, 3))

    info = {"height": 16, "width": 8, "norm_mean": [0.5, 0.5, 0.5], "norm_std": [0.5, 0.5, 0.5]}
    scorer = IdentityScorer(MeanColour(), info, "cpu")
    colours = {"red": (1.0, -1.0, -1.0), "blue": (-1.0, -1.0, 1.0), "reddish": (0.8, -0.9, -1.0)}
    images = {name: torch.tensor(c).view(3, 1, 1).expand(3, 32, 16).clone() for name, c in colours.items()}
    scorer.add_centroids({1: ["red", "reddish"], 2: ["blue"]}, images.__getitem__)
    same, other = scorer.score(torch.stack([images["red"], images["red"]]), [1, 2])
    assert same > 0.99 and other < 0.1


@pytest.mark.slow
def test_identity_agreement_with_a_reid_checkpoint(demo_root, tmp_path) -> None:
    from augreid.reid import save_reid_checkpoint
    from augreid.reid.checkpoint import build_reid_model

    model = build_reid_model("osnet_x0_25", num_classes=IDS)
    save_reid_checkpoint(
        tmp_path / "reid", model, {"model_name": "osnet_x0_25", "num_classes": IDS, "height": 64, "width": 32}, epoch=1
    )
    from augreid.reid import load_reid_model

    first = run(tmp_path / "a", demo_root, reid_model=tmp_path / "reid", load_reid=load_reid_model)
    scores = sorted(r["quality"]["identity"] for r in read_manifest(tmp_path / "a"))
    assert len(scores) == IDS * K and all(-1.0 <= s <= 1.0 for s in scores)
    assert first.summary["reid_model"]["sha256"]
    threshold = scores[len(scores) // 3]
    second = run(
        tmp_path / "b",
        demo_root,
        reid_model=tmp_path / "reid",
        load_reid=load_reid_model,
        config=small_config(min_quality={"identity": threshold}),
    )
    assert second.counts["removed_by_filter"] == {"identity": sum(s < threshold for s in scores)}
