"""The stages of ``augreid run``: thin adapters from a recipe to the same library
functions the single commands (``train-gen``, ``synth``, ``train-reid``, ``eval``) call.

Data flows one way: check -> train-gen -> synth -> synth-copy -> train-reid
(three arms per seed) -> eval -> report, with eval-gen beside them (it reads the
generator and the first seed's real-only re-ID model, which judges whether the
generated images keep their identity).

The arms differ only in the extra images in each batch (``ARMS``): none
(``baseline``), byte copies of the synthetic set's own condition images
(``copy``, the control: same identities, labels and number of extra images, but
no new pose) and the generated images (``augmented``). They share every other
setting, so they take the same optimizer steps with the same real images per
batch. The baseline arm does not depend on the generator, so changing generator
or synth settings retrains only the other two.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from augreid import settings
from augreid.data.check import check_dataset
from augreid.data.market import load_market
from augreid.data.sources import resolve_source
from augreid.errors import AugreidError
from augreid.evaluation import evaluate_rank
from augreid.evaluation.compare import compare_runs
from augreid.evaluation.generator_eval import evaluate_generator
from augreid.evaluation.options import EvalOptions
from augreid.evaluation.report import result_to_dict, write_comparison_report
from augreid.pipeline.fractions import fraction_stages
from augreid.pipeline.recipe import DEMO, Recipe
from augreid.pipeline.reid_section import ARMS, LABELLING_KEYS
from augreid.pipeline.report import run_report
from augreid.pipeline.runner import Stage, StageContext
from augreid.reid.config import resolve_config
from augreid.reid.train import train_reid
from augreid.synth import SynthConfig, copy_control, synthesize
from generators.base import GeneratorPlugin, generator_plugin

STAGE_KINDS = ("check", "train-gen", "eval-gen", "synth", "train-reid", "eval", "report")


def _data_root(recipe: Recipe) -> str | None:
    root = recipe.section("dataset")["root"]
    return None if root == DEMO else root


def dataset_identity(recipe: Recipe) -> dict[str, Any]:
    """What identifies the data: its fingerprint (file list + sizes) and keypoint files."""
    ds = recipe.section("dataset")
    source = resolve_source(_data_root(recipe), ds["train_keypoints"], ds["test_keypoints"])
    return {
        "root": str(source.root),
        "fingerprint": source.load().fingerprint(),
        "train_keypoints": str(source.train_keypoints) if source.train_keypoints else None,
        "test_keypoints": str(source.test_keypoints) if source.test_keypoints else None,
    }


# ---------------------------------------------------------------- stage bodies


def run_check(ctx: StageContext) -> dict[str, Any]:
    s = ctx.stage.settings["data"]
    report = check_dataset(s["root"], train_keypoints=s["train_keypoints"], test_keypoints=s["test_keypoints"])
    report.write_json(ctx.folder / "check.json")
    (ctx.folder / "check.txt").write_text(report.format() + "\n")
    if report.errors:
        raise AugreidError(
            f"dataset check failed ({len(report.errors)} errors), see {ctx.folder / 'check.txt'}:\n"
            + "\n".join(report.errors[:5])
        )
    return {
        "splits": {k: vars(v) for k, v in report.splits.items()},
        "warnings": report.warnings,
        "fingerprint": s["fingerprint"],
        "root": s["root"],
    }


def run_train_gen(ctx: StageContext) -> dict[str, Any]:
    s = ctx.stage.settings
    plugin = generator_plugin(s["generator"])
    if plugin.train is None:
        raise AugreidError(f"generator {s['generator']!r} cannot be trained by the pipeline")
    result = plugin.train(
        s["preset"],
        s["overrides"],
        s["data"]["root"],
        out=ctx.folder / "gen",
        train_keypoints=s["data"]["train_keypoints"],
        resume=True,
        progress=True,
    )
    if not result.finished or result.checkpoint is None:
        raise AugreidError(f"generator training stopped at step {result.step}; run again to resume")
    return {"checkpoint": ctx.record(result.checkpoint), "step": result.step, "run_dir": ctx.record(result.run_dir)}


def run_eval_gen(ctx: StageContext) -> dict[str, Any]:
    """The generator's scores, with identity retention judged by the first seed's real-only re-ID model."""
    s = ctx.stage.settings
    checkpoint = ctx.inputs["train-gen"].path("checkpoint")
    judge = next(r for r in ctx.inputs.values() if r.summary.get("arm") == "baseline")
    report = evaluate_generator(
        checkpoint,
        s["data"]["root"],
        out=ctx.folder,
        test_keypoints=s["data"]["test_keypoints"],
        train_keypoints=s["data"]["train_keypoints"],
        reid_model=judge.path("run_dir"),
        progress=True,
        **s["options"],
    )
    return {
        "pairs": report["pairs"],
        "methods": report["methods"],
        "metrics_md": ctx.record(ctx.folder / "metrics.md"),
        "contact_sheet": ctx.record(ctx.folder / "contact_sheet.png"),
        "generator": report["generator"],
        "outputs": report["outputs"],
        "realism": report.get("realism"),
        "pose_fidelity": report.get("pose_fidelity"),
        "identity": report.get("identity"),
    }


def run_synth(ctx: StageContext) -> dict[str, Any]:
    s = ctx.stage.settings
    checkpoint = ctx.inputs["train-gen"].path("checkpoint")
    result = synthesize(
        ctx.folder / "synth",
        SynthConfig(**s["options"]),
        data=s["data"]["root"],
        train_keypoints=s["data"]["train_keypoints"],
        generator=checkpoint,
        progress=True,
    )
    return {
        "folder": ctx.record(result.out),
        "counts": result.counts,
        "pictures": {p.stem: ctx.record(p) for p in sorted(result.out.glob("*.png"))},
        "pckh": (result.summary.get("quality") or {}).get("pckh"),
    }


def run_synth_copy(ctx: StageContext) -> dict[str, Any]:
    """The copy control's set: byte copies of the synthetic set's condition images, under its file names."""
    s = ctx.stage.settings
    result = copy_control(
        ctx.inputs["synth"].path("folder"),
        ctx.folder / "synth",
        data=s["data"]["root"],
        train_keypoints=s["data"]["train_keypoints"],
    )
    return {"folder": ctx.record(result.out), "counts": result.counts}


def run_train_reid(ctx: StageContext) -> dict[str, Any]:
    s = ctx.stage.settings
    overrides = {**s["options"], "data": s["data"]["root"], "seed": s["seed"], "evaluate": False}
    source = ARMS[s["arm"]]
    if source is not None:
        overrides["synthetic"] = str(ctx.inputs[source].path("folder"))
    config = resolve_config(None, overrides)
    # The learning-curve run scores itself as it trains (augreid eval's evaluator, euclidean, no flip).
    curve = evaluate_rank if config.eval_every else None
    result = train_reid(config, ctx.folder / "run", resume=True, evaluate_rank=curve)
    return {
        "run_dir": ctx.record(result.run_dir),
        "epoch_seconds": result.epoch_seconds,
        "arm": s["arm"],
        "seed": s["seed"],
    }


def run_eval(ctx: StageContext) -> dict[str, Any]:
    s = ctx.stage.settings
    groups: dict[str, list[Path]] = {}
    for result in ctx.inputs.values():
        groups.setdefault(result.summary["arm"], []).append(result.path("run_dir"))
    ordered: dict[str, list[Path]] = {arm: groups[arm] for arm in ARMS if arm in groups}
    options = EvalOptions(**s["options"], cache_dir=str(ctx.folder / "features"))
    comparison = compare_runs(ordered, load_market(s["data"]["root"]), options)
    written = write_comparison_report(comparison, ctx.folder)
    return {"comparison": result_to_dict(comparison), "files": {k: ctx.record(v) for k, v in written.items()}}


# ---------------------------------------------------------------- the plan


def build_stages(recipe: Recipe) -> list[Stage]:
    """Turn a recipe into stage instances with the settings that affect each.

    Each stage's settings are its section of the recipe, that is its command's
    resolved dataclass (train-gen: the plug-in's preset and the recipe's tables
    as ``section.key`` overrides), plus the dataset's identity.
    """
    if recipe.section("protocol")["fractions"]:  # one such plan per fraction, on its subset
        return fraction_stages(recipe, build_stages)

    data = dataset_identity(recipe)
    gen = recipe.section("generator")
    plugin = generator_plugin(gen["name"])
    overrides = settings.flatten({k: v for k, v in gen.items() if isinstance(v, dict)})
    preset = gen["preset"] or plugin.default_preset
    stages = [
        Stage("check", "check", {"data": data}, run_check),
        Stage(
            "train-gen",
            "train-gen",
            {
                "data": data,
                "generator": gen["name"],
                "preset": preset,
                "overrides": overrides,
                "resolved": _generator_settings(plugin, preset, overrides),
            },
            run_train_gen,
            depends=("check",),
        ),
        Stage("synth", "synth", {"data": data, "options": recipe.section("synth")}, run_synth, depends=("train-gen",)),
        Stage("synth-copy", "synth", {"data": data}, run_synth_copy, depends=("synth",)),
    ]
    trained = _train_reid_stages(recipe, data, stages)
    # After the re-ID runs, whose first real-only model judges identity retention; a process running the
    # generator's stages reaches it last, having made the synthetic set and trained the augmented arm first.
    stages.append(
        Stage(
            "eval-gen",
            "eval-gen",
            {"data": data, "options": recipe.section("eval_gen")},
            run_eval_gen,
            depends=("train-gen", f"train-reid-baseline-s{recipe.seeds[0]}"),
        )
    )
    stages.append(
        Stage("eval", "eval", {"data": data, "options": recipe.section("eval")}, run_eval, depends=tuple(trained))
    )
    stages.append(
        Stage(
            "report",
            "report",
            {"recipe": recipe.settings},
            run_report,
            depends=("check", "train-gen", "eval-gen", "synth", "eval"),
        )
    )
    return stages


def _generator_settings(plugin: GeneratorPlugin, preset: str | None, overrides: dict[str, Any]) -> Any:
    """The plug-in's settings as the preset and the recipe resolve them: the stage's key then covers what a
    preset file says, not only its name, so that editing a preset in place retrains the generator."""
    if plugin.load_config is None or preset is None:
        return None
    config = plugin.load_config(preset, overrides)
    return dataclasses.asdict(config) if dataclasses.is_dataclass(config) and not isinstance(config, type) else config


def _train_reid_stages(recipe: Recipe, data: dict[str, Any], stages: list[Stage]) -> list[str]:
    """Append one train-reid stage per seed and arm; return their names.

    Every arm gets the same ``[reid]`` settings (the real-only arm without the labelling keys, which only act
    on synthetic images). ``[protocol] curve_every`` makes the first seed's baseline a learning curve."""
    reid_options = {k: v for k, v in recipe.section("reid").items() if v is not None}
    curve_every = recipe.section("protocol")["curve_every"]
    trained = []
    for seed in recipe.seeds:
        for arm, source in ARMS.items():
            options = dict(reid_options)
            if source is None:
                for key in LABELLING_KEYS:
                    options.pop(key, None)
                if curve_every and seed == recipe.seeds[0]:
                    options["eval_every"] = curve_every
            name = f"train-reid-{arm}-s{seed}"
            stages.append(
                Stage(
                    name,
                    "train-reid",
                    {"data": data, "arm": arm, "seed": seed, "options": options},
                    run_train_reid,
                    depends=("check",) if source is None else ("check", source),
                )
            )
            trained.append(name)
    return trained
