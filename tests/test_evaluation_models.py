"""``augreid eval`` end to end: a tiny trained torchreid model on the demo dataset."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from augreid.cli import app
from augreid.data import load_market
from augreid.errors import AugreidError
from augreid.evaluation.compare import compare_runs, parse_run_specs
from augreid.evaluation.features import ImageList, extract_features, eval_transform
from augreid.evaluation.options import EvalOptions
from augreid.evaluation.report import write_comparison_report
from augreid.reid.checkpoint import build_reid_model, save_reid_checkpoint

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Cython evaluation")
    from torchreid.reid.metrics import compute_distance_matrix
    from torchreid.reid.metrics.rank import evaluate_rank as torchreid_evaluate_rank

# Small inputs keep the CPU tests fast; the input size travels in the checkpoint info.
HEIGHT, WIDTH = 64, 32


def save_run(run_dir: Path, model, dataset, seed: int, num_classes: int | None = None) -> Path:
    info = {
        "model_name": "osnet_x0_25",
        "num_classes": num_classes or dataset.num_train_pids,
        "height": HEIGHT,
        "width": WIDTH,
        "seed": seed,
        "dataset_fingerprint": dataset.fingerprint(),
    }
    save_reid_checkpoint(run_dir, model, info, epoch=1)
    return run_dir


def train_tiny(dataset, seed: int, steps: int = 6, batch_size: int = 32):
    """A few Adam steps of osnet_x0_25 on the demo training images (enough to move off random weights)."""
    torch.manual_seed(seed)
    model = build_reid_model("osnet_x0_25", dataset.num_train_pids)
    images = ImageList(
        [r.path for r in dataset.train], eval_transform(HEIGHT, WIDTH, (0.485, 0.456, 0.406), (0.229, 0.224, 0.225))
    )
    labels = torch.tensor([dataset.pid2label[r.pid] for r in dataset.train])
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    rng = np.random.default_rng(seed)
    model.train()
    for _ in range(steps):
        idx = rng.choice(len(images), size=batch_size, replace=False)
        batch = torch.stack([images[int(i)] for i in idx])
        loss = torch.nn.functional.cross_entropy(model(batch), labels[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    model.eval()
    return model


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def demo(demo_root):
    return load_market(demo_root)


@pytest.fixture(scope="module")
def runs(demo, tmp_path_factory):
    base = tmp_path_factory.mktemp("eval-runs")
    return {
        "trained": save_run(base / "trained-seed0", train_tiny(demo, seed=0), demo, seed=0),
        "random": save_run(base / "random-seed1", build_reid_model("osnet_x0_25", demo.num_train_pids), demo, seed=1),
    }


@pytest.fixture()
def options(tmp_path):
    return EvalOptions(resamples=200, batch_size=128, cache_dir=str(tmp_path / "cache"), strip_queries=3)


@pytest.mark.slow
def test_eval_of_tiny_model_matches_torchreid_and_writes_reports(demo, runs, options, tmp_path):
    result = compare_runs({"trained": [runs["trained"]], "random": [runs["random"]]}, demo, options, progress=False)
    trained = result.groups[0].runs[0]
    assert not trained.from_cache
    # Cross-check with torchreid on independently extracted features (torchreid's distance + evaluate_rank).
    from augreid.reid.checkpoint import load_reid_model

    model, _ = load_reid_model(runs["trained"])
    qf = extract_features(model, [r.path for r in demo.query], HEIGHT, WIDTH, progress=False)
    gf = extract_features(model, [r.path for r in demo.gallery], HEIGHT, WIDTH, progress=False)
    dist = compute_distance_matrix(torch.from_numpy(qf), torch.from_numpy(gf)).numpy()
    cmc, mean_ap = torchreid_evaluate_rank(
        dist,
        np.array([r.pid for r in demo.query]),
        np.array([r.pid for r in demo.gallery]),
        np.array([r.camid for r in demo.query]),
        np.array([r.camid for r in demo.gallery]),
    )
    assert trained.metrics.mAP == pytest.approx(mean_ap, abs=1e-6)
    np.testing.assert_allclose(trained.metrics.cmc, cmc, atol=1e-6)

    written = write_comparison_report(result, tmp_path / "report")
    data = json.loads(written["json"].read_text())
    assert data["dataset"]["fingerprint"] == demo.fingerprint()
    assert data["protocol"]["ap"] == "torchreid" and data["protocol"]["rerank"] == "off"
    assert data["protocol"]["bootstrap"]["resamples"] == 200
    assert {"torch", "torchreid", "numpy"} <= set(data["versions"])
    assert data["runs"][0]["mAP"] == pytest.approx(mean_ap, abs=1e-6)
    assert [d["metric"] for d in data["differences"]] == ["rank1", "rank5", "rank10", "rank20", "mAP", "mINP"]
    diff = data["differences"][-2]
    assert diff["estimate"] == pytest.approx(data["runs"][1]["mAP"] - data["runs"][0]["mAP"])
    assert diff["low"] <= diff["estimate"] <= diff["high"]
    report = written["markdown"].read_text()
    assert "non-interpolated AP" in report and "re-ranking: **off**" in report and "200 resamples, seed 0" in report
    from PIL import Image

    for key in ("cmc", "strip:trained", "strip:random"):
        with Image.open(written[key]) as img:
            assert img.size[0] > 100 and img.size[1] > 50
    strip = data["strips"][0]
    assert len(strip["queries"]) == 3 and all(len(row) == 10 for row in strip["top"])

    # Second time round the features come from the cache and the numbers do not move.
    again = compare_runs({"trained": [runs["trained"]]}, demo, options, progress=False)
    assert again.groups[0].runs[0].from_cache
    assert again.groups[0].runs[0].metrics.mAP == trained.metrics.mAP


@pytest.mark.slow
def test_seeds_grouped_by_name_and_options_labelled(demo, runs, options, tmp_path):
    options.flip, options.normalize, options.metric, options.ap, options.plots = (
        True,
        True,
        "cosine",
        "trapezoid",
        False,
    )
    specs = [f"base={runs['trained']}", f"base={runs['random']}", f"other={runs['trained']}"]
    result = compare_runs(parse_run_specs(specs), demo, options, progress=False)
    base, other = result.groups
    assert [r.label for r in base.runs] == ["base#1", "base#2"]
    values = [r.metrics.mAP for r in base.runs]
    assert base.mean["mAP"] == pytest.approx(np.mean(values))
    assert base.std["mAP"] == pytest.approx(np.std(values, ddof=1))
    assert other.std["mAP"] is None
    written = write_comparison_report(result, tmp_path / "report")
    assert set(written) == {"json", "markdown"}
    report = written["markdown"].read_text()
    assert "trapezoidal AP" in report and "cosine" in report and "flip averaging on" in report
    assert " ± " in report


@pytest.mark.slow
def test_cli_eval(demo_root, runs, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app,
        [
            "eval",
            "--run",
            f"baseline={runs['random']}",
            "--run",
            f"trained={runs['trained']}",
            "--data",
            str(demo_root),
            "--out",
            str(out),
            "--resamples",
            "100",
            "--no-cache",
            "--quiet",
            "--rerank",
        ],
    )
    assert result.exit_code == 0, result.output
    assert "k-reciprocal re-ranking" in result.output and "100 resamples" in result.output
    assert "| trained | 1 |" in result.output
    assert (out / "comparison.json").is_file() and (out / "report.md").is_file() and (out / "cmc.png").is_file()
    assert "k-reciprocal re-ranking (k1=20" in (out / "report.md").read_text()


def test_checkpoint_for_another_number_of_classes(demo, tmp_path, options):
    model = build_reid_model("osnet_x0_25", demo.num_train_pids + 3)
    run = save_run(tmp_path / "wrong", model, demo, seed=0, num_classes=demo.num_train_pids)
    with pytest.raises(AugreidError, match=f"num_classes={demo.num_train_pids}"):
        compare_runs({"wrong": [run]}, demo, options, progress=False)


def test_missing_run_and_bad_specs(tmp_path):
    with pytest.raises(AugreidError, match="not found"):
        parse_run_specs([f"a={tmp_path / 'nope'}"])
    with pytest.raises(AugreidError, match="matches"):
        parse_run_specs([f"a={tmp_path / 'nope-*'}"])
    with pytest.raises(AugreidError, match="NAME=PATH"):
        parse_run_specs(["a="])
    result = CliRunner().invoke(app, ["eval", "--run", f"a={tmp_path / 'missing'}"])
    assert result.exit_code == 2 and "missing" in result.output and "not found" in result.output


def test_run_specs_globs_and_default_names(runs):
    base = runs["trained"].parent
    assert parse_run_specs([str(runs["trained"])]) == {"trained-seed0": [runs["trained"]]}
    specs = parse_run_specs([f"all={base}/*-seed*", f"again={runs['random']}", f"all={runs['trained']}"])
    assert list(specs) == ["all", "again"]
    assert specs["all"] == [runs["random"], runs["trained"]]  # sorted glob, no duplicate


def test_runs_of_different_configurations_under_one_name(demo, runs, tmp_path, options):
    other = build_reid_model("osnet_x0_25", demo.num_train_pids + 1)
    odd = save_run(tmp_path / "odd", other, demo, seed=2, num_classes=demo.num_train_pids + 1)
    options.plots = False
    with pytest.raises(AugreidError, match="differ in num_classes"):
        compare_runs({"base": [runs["random"], odd]}, demo, options, progress=False)


def test_missing_gpu_is_an_error(demo, runs, options):
    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU")
    options.device = "cuda"
    with pytest.raises(AugreidError, match="no CUDA GPU"):
        compare_runs({"a": [runs["random"]]}, demo, options, progress=False)


def test_empty_gallery_is_an_error(demo, runs, options):
    import dataclasses

    empty = dataclasses.replace(demo, gallery=[])
    with pytest.raises(AugreidError, match="gallery .* is empty"):
        compare_runs({"a": [runs["random"]]}, empty, options, progress=False)


def test_bot_and_triplet_runs_under_one_name_are_refused():
    from types import SimpleNamespace

    from augreid.evaluation.compare import check_group_configs

    base = {"model_name": "mobilenetv2_x1_0", "num_classes": 5, "height": 64, "width": 32, "label_scheme": "same-id"}
    # Both record loss "triplet"; only the method tells them apart.
    bot = SimpleNamespace(path=Path("bot"), info={**base, "loss": "triplet", "method": "bot"})
    triplet = SimpleNamespace(path=Path("tri"), info={**base, "loss": "triplet", "method": "triplet"})
    old_triplet = SimpleNamespace(path=Path("old"), info={**base, "loss": "triplet"})  # from before methods existed
    with pytest.raises(AugreidError, match="differ in method"):
        check_group_configs("base", [bot, triplet])
    check_group_configs("base", [triplet, old_triplet])  # an old file's loss maps to its method
