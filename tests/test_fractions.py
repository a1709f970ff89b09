"""The fractional-real protocol: seeded subsets, their views, and that nothing outside is read."""

from __future__ import annotations

import builtins
import json
import os
from pathlib import Path

import pytest

from augreid.data.market import GALLERY, QUERY, TRAIN, load_market
from augreid.data.sources import resolve_source
from augreid.data.subset import SubsetRecipe, make_subset, read_subset, rebuild_subset, select_subset, subset_view
from augreid.errors import ConfigError, DatasetError


@pytest.fixture(scope="module")
def demo(demo_root):
    source = resolve_source(demo_root)
    return source, source.load()


def test_subset_keeps_every_identity_and_the_requested_share(demo) -> None:
    _, dataset = demo
    pids = {r.pid for r in dataset.train}
    for fraction in (0.2, 0.5, 1.0):
        subset = make_subset(dataset, fraction, seed=0)
        chosen = {r.pid for r in dataset.train if r.name in set(subset.names)}
        assert chosen == pids
        assert len(subset.names) == max(len(pids), round(fraction * len(dataset.train)))
    assert set(make_subset(dataset, 1.0, 0).names) == {r.name for r in dataset.train}


def test_a_tiny_fraction_still_keeps_one_image_per_identity(demo) -> None:
    _, dataset = demo
    subset = make_subset(dataset, 0.01, seed=3)
    assert len(subset.names) == len({r.pid for r in dataset.train}) == subset.identities


def test_subset_is_deterministic_seeded_and_nested(demo) -> None:
    _, dataset = demo
    a, b = make_subset(dataset, 0.4, seed=1), make_subset(dataset, 0.4, seed=1)
    assert a.names == b.names and a.digest == b.digest
    assert make_subset(dataset, 0.4, seed=2).names != a.names
    assert set(make_subset(dataset, 0.2, seed=1).names) <= set(a.names) <= set(make_subset(dataset, 0.6, seed=1).names)
    # Another fingerprint (another dataset, or a changed one) draws another subset.
    other = select_subset(dataset.train, SubsetRecipe("0" * 16, 0.4, 1))
    assert other.names != a.names


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5, True])
def test_bad_fractions_are_refused(fraction) -> None:
    with pytest.raises(ConfigError, match="fraction"):
        SubsetRecipe("abc", fraction, 0)


def test_view_is_a_dataset_of_the_subset_only(demo, tmp_path) -> None:
    source, dataset = demo
    view = subset_view(source, 0.2, 0, tmp_path / "cache")
    sub = load_market(view.root)
    assert sorted(r.name for r in sub.train) == list(view.subset.names)
    assert {r.name for r in sub.query} == {r.name for r in dataset.query}
    assert {r.name for r in sub.gallery} == {r.name for r in dataset.gallery}
    kp = resolve_source(view.root, view.train_keypoints, view.test_keypoints)
    assert set(kp.train_poses()) <= set(view.subset.names)
    full_poses = source.train_poses()
    assert set(kp.train_poses()) == {n for n in view.subset.names if n in full_poses}
    assert kp.test_poses().keys() == source.test_poses().keys()
    # Built once, then reused: the marker is not rewritten.
    stamp = (view.root / "subset.json").stat().st_mtime_ns
    again = subset_view(source, 0.2, 0, tmp_path / "cache")
    assert again.root == view.root and (view.root / "subset.json").stat().st_mtime_ns == stamp


def test_subset_file_round_trips_and_rebuilds_from_its_recipe(demo, tmp_path) -> None:
    source, dataset = demo
    view = subset_view(source, 0.4, 2, tmp_path / "cache")
    recorded = read_subset(view.root)
    assert recorded == view.subset
    assert rebuild_subset(view.root / "subset.json", dataset).names == recorded.names
    # A damaged view is rebuilt, not trusted.
    os.unlink(next((view.root / "Market-1501-v15.09.15" / TRAIN).iterdir()))
    assert subset_view(source, 0.4, 2, tmp_path / "cache").subset == recorded
    assert len(os.listdir(view.root / "Market-1501-v15.09.15" / TRAIN)) == len(recorded.names)
    data = json.loads((view.root / "subset.json").read_text())
    data["names"] = data["names"][1:]
    (tmp_path / "edited.json").write_text(json.dumps(data))
    with pytest.raises(DatasetError, match="digest"):
        read_subset(tmp_path / "edited.json")


def test_generator_and_synth_on_a_subset_read_no_other_training_image(demo, tmp_path, monkeypatch) -> None:
    from synth_double import PasteGenerator

    from augreid.synth import SynthConfig, synthesize
    from generators.pg2 import load_preset
    from generators.pg2.train import train_generator

    source, dataset = demo
    view = subset_view(source, 0.2, 0, tmp_path / "cache")
    original_train = os.path.realpath(dataset.root / TRAIN)
    cfg = load_preset(
        "cpu-small",
        {
            "model.image_size": [32, 16],
            "model.blocks": 3,
            "model.hidden": 4,
            "model.g2_hidden": 4,
            "model.d_hidden": 4,
            "model.d_layers": 2,
            "pose.radius": 1.5,
            "pose.mask_radius": 1.5,
            "train.batch_size": 2,
            "train.stage1_steps": 2,
            "train.stage2_steps": 0,
            "train.joint_steps": 0,
            "log.checkpoint_every": 2,
            "log.image_every": 100,
        },
    )
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(os.path.realpath(file) if isinstance(file, (str, Path)) else str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)  # PIL and the CSV readers open files through it
    train_generator(
        cfg, view.root, out=tmp_path / "gen", train_keypoints=view.train_keypoints, device="cpu", progress=False
    )
    synthesize(
        tmp_path / "synth",
        SynthConfig(num_poses=2, max_ids=4, batch_size=4, num_workers=0, min_quality={}),
        data=view.root,
        train_keypoints=view.train_keypoints,
        generator=PasteGenerator(),
        progress=False,
        echo=lambda _m: None,
    )
    monkeypatch.undo()
    train_reads = {Path(p).name for p in opened if p.startswith(original_train + os.sep)}
    assert len(train_reads) >= len({r.pid for r in dataset.train})  # the spy saw the subset's images being read
    assert train_reads <= set(view.subset.names)
    test_dirs = tuple(os.path.realpath(dataset.root / split) + os.sep for split in (QUERY, GALLERY))
    assert not [p for p in opened if p.startswith(test_dirs)]


# ---------------------------------------------------------------- the recipe protocol


FRACTIONS_RECIPE = """
name = "tiny-fractions"
seeds = [0, 1]

[dataset]
root = "demo"

[generator]
preset = "cpu-small"

[generator.train]
stage1_steps = 12
stage2_steps = 0

[eval_gen]
max_pairs = 16

[synth]
num_poses = 2
batch_size = 16
min_quality = {}

[reid]
model = "osnet_x0_25"
epochs = 2
batch_size = 32
height = 64
width = 32
lr = 0.001
synthetic_per_batch = 4

[eval]
flip = false
resamples = 50

[protocol]
fractions = [0.5, 0.25]
subset_seed = 1
"""


@pytest.fixture()
def fractions_recipe(tmp_path):
    path = tmp_path / "fractions.toml"
    path.write_text(FRACTIONS_RECIPE)
    return path


def test_protocol_values_are_checked(fractions_recipe) -> None:
    from augreid.pipeline.recipe import load_recipe

    for bad in ([], [0.0, 0.5], [0.5, 1.2], [0.2, 0.2001]):
        with pytest.raises(ConfigError, match="protocol.fractions"):
            load_recipe(fractions_recipe, {"protocol.fractions": bad})
    assert load_recipe(fractions_recipe).section("protocol")["fractions"] == [0.5, 0.25]


def test_every_fraction_runs_the_whole_plan_on_its_own_subset(fractions_recipe, demo) -> None:
    from augreid.pipeline.recipe import load_recipe
    from augreid.pipeline.stages import build_stages

    _, dataset = demo
    stages = {s.name: s for s in build_stages(load_recipe(fractions_recipe))}
    for label, fraction in (("p025", 0.25), ("p050", 0.5)):
        expected = (
            {f"{k}-{label}" for k in ("check", "train-gen", "eval-gen", "synth", "eval")}
            | {f"train-reid-{arm}-s{seed}-{label}" for arm in ("baseline", "copy", "augmented") for seed in (0, 1)}
            | {f"synth-copy-{label}"}
        )
        assert expected <= set(stages)
        roots = {stages[n].settings["data"]["root"] for n in expected if "data" in stages[n].settings}
        assert len(roots) == 1  # generator, synth and both arms share one subset
        view = load_market(roots.pop())
        assert len(view.train) == round(fraction * len(dataset.train))
        assert stages[f"train-reid-augmented-s0-{label}"].depends == (f"check-{label}", f"synth-{label}")
        assert stages[f"train-reid-copy-s0-{label}"].depends == (f"check-{label}", f"synth-copy-{label}")
        assert stages[f"synth-copy-{label}"].depends == (f"synth-{label}",)
        # Every arm trains with the same settings but for its extra images.
        options = {arm: stages[f"train-reid-{arm}-s1-{label}"].settings["options"] for arm in ("copy", "augmented")}
        assert options["copy"] == options["augmented"]
        assert stages[f"synth-{label}"].depends == (f"train-gen-{label}",)
    report = stages["report"]
    assert [p["fraction"] for p in report.settings["fractions"]] == [0.25, 0.5]
    assert set(report.depends) >= {"eval-p025", "eval-p050", "synth-p025", "eval-gen-p050"}
    assert not any(s.kind == "report" for n, s in stages.items() if n != "report")


def _comparison(base: float, gain: float) -> dict:
    def ci(v):
        return {"estimate": v, "low": v - 0.02, "high": v + 0.02, "level": 0.95, "resamples": 50, "seed": 0}

    groups = [
        {
            "name": arm,
            "num_seeds": 2,
            "runs": ["a", "b"],
            "mean": {"rank1": v, "mAP": v / 2},
            "std": {"rank1": 0.01, "mAP": 0.005},
            "ci": {"rank1": ci(v), "mAP": ci(v / 2)},
        }
        for arm, v in (("baseline", base), ("copy", base + gain / 2), ("augmented", base + gain))
    ]
    diffs = [
        {"group": group, "baseline": ref, "metric": m, **ci(g * k), "low": g * k - 0.01, "high": g * k + 0.03}
        for group, ref, k in (("copy", "baseline", 0.5), ("augmented", "baseline", 1), ("augmented", "copy", 0.5))
        for m, g in (("rank1", gain), ("mAP", gain / 2))
    ]
    return {"groups": groups, "differences": diffs}


def test_fractions_report_has_the_table_the_plot_and_the_subsets(fractions_recipe, tmp_path) -> None:
    from augreid.pipeline.fractions import run_fractions_report
    from augreid.pipeline.recipe import load_recipe
    from augreid.pipeline.runner import StageContext, StageResult
    from augreid.pipeline.stages import build_stages

    report = next(s for s in build_stages(load_recipe(fractions_recipe)) if s.name == "report")
    history = {}
    for part, (base, gain) in zip(report.settings["fractions"], ((0.10, 0.05), (0.30, -0.02))):
        names = part["stages"]
        history[names["eval"]] = StageResult(names["eval"], tmp_path, {"comparison": _comparison(base, gain)})
        history[names["synth"]] = StageResult(
            names["synth"], tmp_path, {"counts": {"planned": 40, "kept": 30, "removed_by_filter": {"pckh": 10}}}
        )
    # One re-ID run that says what decided its numbers: the report carries it (threads, kernels, CPU).
    trained = tmp_path / "reid-run"
    trained.mkdir()
    runtime = {"threads": 1, "workers": 0, "cpu_capability": "AVX512", "cpu": "Some CPU 9000"}
    (trained / "run.json").write_text(json.dumps({"runtime": runtime}))
    name = report.settings["fractions"][0]["stages"]["eval"].replace("eval-", "train-reid-baseline-s0-")
    history[name] = StageResult(name, tmp_path, {"arm": "baseline", "seed": 0, "run_dir": str(trained)})
    folder = tmp_path / "run" / "report-x"
    folder.mkdir(parents=True)
    summary = run_fractions_report(StageContext(report, folder, {}, history))
    data = json.loads((folder.parent / summary["fractions_json"]).read_text())
    assert [r["fraction"] for r in data["fractions"]] == [0.25, 0.5]
    assert data["fractions"][0]["differences"]["augmented − baseline"]["rank1"]["estimate"] == pytest.approx(0.05)
    assert data["fractions"][0]["differences"]["augmented − copy"]["rank1"]["estimate"] == pytest.approx(0.025)
    md = (tmp_path / "run" / "report.md").read_text()
    assert "| 25 % |" in md and "15.0 ± 1.0" in md and "+5.00 [+4.00, +8.00]" in md  # augmented at 25 %
    assert (
        "| augmented | 2 | 15.0 ± 1.0 | 7.5 ± 0.5 | - ± - | +5.00 [+4.00, +8.00] | +2.50 [+1.50, +5.50] | +2.50" in md
    )
    assert "-2.00 [-3.00, +1.00] vs baseline (not distinguishable" in md and "(better)" in md
    runs = json.loads((folder / "runs.json").read_text())
    assert [(r["arm"], r["seed"]) for r in runs] == [("baseline", 0)]
    assert f"| {name} | 1 | 0 | AVX512 | Some CPU 9000 |" in md[md.index("## Reproducibility") :]
    assert (folder.parent / summary["plot"]).stat().st_size > 1000
    assert (folder / "subset-p025.json").is_file() and (folder / "subset-p050.json").is_file()


def test_records_of_separate_runs_merge_by_fraction_and_foreign_ones_are_refused() -> None:
    from augreid.pipeline.fractions import fractions_record, merge_fraction_records

    recipe = {"protocol": {"subset_seed": 0}, "seeds": [0, 1, 2]}
    row = lambda f, r1: {"fraction": f, "arms": {"baseline": {"mean": {"rank1": r1}}}}  # noqa: E731
    first = fractions_record(recipe, [row(0.2, 0.05)])
    second = fractions_record(recipe, [row(1.0, 0.25), row(0.2, 0.05)])  # 0.2 again, identical: fine
    merged = merge_fraction_records(recipe, {"step1": first, "step2": second})
    assert [r["fraction"] for r in merged] == [0.2, 1.0]

    other_seeds = {**fractions_record(recipe, [row(0.4, 0.1)]), "seeds": [0]}
    other_subset = fractions_record({**recipe, "protocol": {"subset_seed": 7}}, [row(0.6, 0.1)])
    changed = fractions_record(recipe, [row(0.2, 0.06)])
    with pytest.raises(ConfigError) as err:
        merge_fraction_records(recipe, {"a": first, "b": other_seeds, "c": other_subset, "d": changed, "e": {}})
    text = str(err.value)  # every problem at once
    assert "b: seeds [0]" in text and "c: subset_seed 7" in text and "d: fraction 0.2 differs" in text
    assert "e: format None" in text


@pytest.mark.slow
def test_fractions_recipe_runs_end_to_end(fractions_recipe, tmp_path) -> None:
    import re

    import torch
    from typer.testing import CliRunner

    from augreid.cli import app

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = CliRunner().invoke(
            app, ["run", str(fractions_recipe), "--output", str(tmp_path / "runs"), "--set", "seeds=[0]"]
        )
    finally:
        torch.set_num_threads(threads)
    assert result.exit_code == 0, result.output + repr(result.exception)
    run_dir = tmp_path / "runs" / "tiny-fractions"
    stages = {
        json.loads((p / "stage.json").read_text())["stage"]: p
        for p in run_dir.iterdir()
        if (p / "stage.json").is_file()
    }
    assert {"report", "eval-p025", "eval-p050", "train-gen-p025", "train-reid-augmented-s0-p050"} <= set(stages)
    fractions = json.loads((stages["report"] / "fractions.json").read_text())["fractions"]
    md = (run_dir / "report.md").read_text()
    for row, label in zip(fractions, ("p025", "p050")):
        comparison = json.loads((stages[f"eval-{label}"] / "comparison.json").read_text())
        diff = next(d for d in comparison["differences"] if d["metric"] == "rank1" and d["group"] == "augmented")
        assert row["differences"][f"augmented − {diff['baseline']}"]["rank1"]["estimate"] == diff["estimate"]
        assert f"{100 * diff['estimate']:+.2f} [{100 * diff['low']:+.2f}, {100 * diff['high']:+.2f}]" in md
        # Identity retention is judged on the subset only: its gallery is the subset's images, its judge the
        # fraction's own real-only model.
        assert row["identity"]["gallery_images"] == row["images"]
        judge = json.loads((stages[f"eval-gen-{label}"] / "stage.json").read_text())["depends"]
        assert judge == [f"train-gen-{label}", f"train-reid-baseline-s0-{label}"]
    for rel in re.findall(r"!\[[^\]]*\]\(([^)]+)\)", md):
        assert (run_dir / rel).is_file(), rel
