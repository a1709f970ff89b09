"""Recipes: a whole experiment as one TOML file, validated before anything runs.

A recipe is :class:`RecipeConfig`: top-level ``name``, ``description``,
``seeds`` and ``output``, ``[dataset]`` and ``[protocol]``, and one section per
stage whose keys are exactly that command's settings dataclass:
``[generator]`` (``name``, ``preset`` and the plug-in's own sections, e.g.
``[generator.train] stage1_steps``), ``[eval_gen]`` (``GeneratorEvalOptions``),
``[synth]`` (``SynthConfig``), ``[reid]`` (``ReidConfig`` without the keys the
runner sets per stage) and ``[eval]`` (``EvalOptions``). Defaults come from
those dataclasses only. Unknown keys, wrong types, bad values and missing files
are reported together (``augreid.settings``), so a user fixes a recipe in one go.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augreid import settings
from augreid.errors import ConfigError
from augreid.evaluation.options import EvalOptions, GeneratorEvalOptions
from augreid.pipeline.recipe_checks import generator_problems, model_problems, preset_problems, resolved_preset
from augreid.pipeline.reid_section import RUNNER_KEYS as REID_RUNNER_KEYS
from augreid.reid.config import PRETRAINED_NAMES, ReidConfig
from augreid.reid.config import RENAMED as REID_RENAMED
from augreid.synth.config import SynthConfig
from augreid.tomlfile import read_toml
from generators.base import generator_names

DEMO = "demo"  # dataset.root value meaning the embedded demo dataset

# Keys of a stage's dataclass that the runner sets for each stage instance.
RUNNER_KEYS = {"reid": REID_RUNNER_KEYS, "eval": ("cache_dir",)}

# Keys recipes used before every section became its command's dataclass -> what to write now.
RENAMED = {
    "eval.bootstrap": "write eval.resamples (augreid eval's name)",
    "eval.bootstrap_seed": "write eval.seed (augreid eval's name)",
    "generator.stage1_iterations": "write [generator.train] stage1_steps (the generator's own setting)",
    "generator.stage2_iterations": "write [generator.train] stage2_steps (the generator's own setting)",
    "generator.batch_size": "write [generator.train] batch_size (the generator's own setting)",
    "generator.max_pairs": "write [generator.data] max_pairs (the generator's own setting)",
    "generator.different_cameras": "write [generator.data] different_cameras (the generator's own setting)",
    "generator.seed": "write [generator.train] seed (training) and eval_gen.seed (eval-gen's pairs)",
    "generator.eval_pairs": "write eval_gen.max_pairs (augreid eval-gen's name)",
    "generator.realism": "write eval_gen.realism (augreid eval-gen's name)",
    "synth.min_pckh": "write synth.min_quality = { pckh = 0.2 } (augreid synth's filters; {} = no filter)",
    "reid.loss": "`loss` became `method` (softmax, triplet or bot)",
    **{f"reid.{key}": hint for key, hint in REID_RENAMED.items()},
}


@dataclass
class DatasetSection:
    root: str = DEMO  # a Market-layout root, or "demo" (the embedded dataset)
    train_keypoints: str | None = None  # default: found beside the data
    test_keypoints: str | None = None


@dataclass
class ProtocolSection:
    """The fractional-real protocol (``augreid.pipeline.fractions``); no fractions = one full-data run."""

    fractions: list[float] | None = None
    subset_seed: int = 0
    curve_every: int = 0  # the first seed's baseline scores query/gallery every N epochs (a learning curve); 0 = off

    def problems(self) -> list[str]:
        """Value problems (types are checked by the settings loader, which prefixes ``protocol.``)."""
        problems = []
        if self.curve_every < 0:
            problems.append(f"curve_every: {self.curve_every} must be at least 0 (0 = no learning curve)")
        fractions = self.fractions
        if fractions is None:
            return problems
        if not fractions or any(not 0 < f <= 1 for f in fractions):
            problems.append(f"fractions: expected a non-empty list of numbers in (0, 1], got {fractions!r}")
        elif len({fraction_label(f) for f in fractions}) != len(fractions):
            problems.append(f"fractions: {fractions!r} repeats a fraction (to the percent)")
        return problems


def fraction_label(fraction: float) -> str:
    """``p020`` for 0.2: the suffix of a fraction's stage names."""
    return f"p{round(100 * fraction):03d}"


@dataclass
class GeneratorSection:
    """Which generator and preset; the plug-in's own settings are the section's tables (``[generator.train]``)."""

    name: str = "pg2"  # a generators.base registry name
    preset: str | None = None  # a preset name or .toml file; None = the plug-in's default preset


@dataclass
class RecipeConfig:
    name: str = ""  # names the run folder
    description: str = ""
    seeds: list[int] = field(default_factory=lambda: [0])  # one re-ID run per seed and arm
    output: str = "runs"  # folder holding run folders
    dataset: DatasetSection = field(default_factory=DatasetSection)
    protocol: ProtocolSection = field(default_factory=ProtocolSection)
    generator: GeneratorSection = field(default_factory=GeneratorSection)
    eval_gen: GeneratorEvalOptions = field(default_factory=GeneratorEvalOptions)
    synth: SynthConfig = field(default_factory=SynthConfig)
    reid: ReidConfig = field(default_factory=ReidConfig)
    eval: EvalOptions = field(default_factory=EvalOptions)

    def problems(self) -> list[str]:
        problems = []
        if not self.name:
            problems.append("name: a recipe needs a name (it names the run folder)")
        if not self.seeds:
            problems.append("seeds: expected a non-empty list of integers")
        elif len(set(self.seeds)) != len(self.seeds):
            problems.append(f"seeds: {self.seeds} repeats a seed (each seed is one run)")
        return problems


@dataclass
class Recipe:
    """A validated recipe: every section filled with defaults, paths resolved."""

    path: Path | None
    settings: dict[str, Any]

    @property
    def name(self) -> str:
        return self.settings["name"]

    @property
    def seeds(self) -> list[int]:
        return self.settings["seeds"]

    def section(self, name: str) -> dict[str, Any]:
        return self.settings[name]

    @property
    def uses_demo(self) -> bool:
        return self.settings["dataset"]["root"] == DEMO


def _take_runner_keys(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Any]:
    """``raw`` without the per-stage keys, each one given reported."""
    out = dict(raw)
    for section, keys in RUNNER_KEYS.items():
        table = out.get(section)
        if isinstance(table, dict) and any(k in table for k in keys):
            problems += [f"{section}.{k}: set per stage by the runner, not in a recipe" for k in keys if k in table]
            out[section] = {k: v for k, v in table.items() if k not in keys}
    return out


def _take_plugin_tables(raw: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split ``[generator]``'s tables (the plug-in's settings) from its own keys."""
    generator = raw.get("generator")
    if not isinstance(generator, dict):
        return raw, {}
    tables = {k: v for k, v in generator.items() if isinstance(v, dict)}
    return {**raw, "generator": {k: v for k, v in generator.items() if k not in tables}}, tables


def validate(
    raw: Mapping[str, Any],
    base_dir: Path | None = None,
    source: str = "recipe",
    overrides: Mapping[str, Any] | None = None,
) -> Recipe:
    """Fill defaults, apply ``overrides`` (nested, like ``raw``) and check every key; one ``ConfigError`` lists all problems."""
    problems: list[str] = []
    layers: list[settings.Layer] = []
    plugin_tables: dict[str, Any] = {}
    for where, values in ((source, raw), ("the overrides", overrides or {})):
        values, tables = _take_plugin_tables(_take_runner_keys(values, problems))
        layers.append(settings.Layer(where, values))
        plugin_tables = settings.merge(plugin_tables, tables)
    config = settings.build(RecipeConfig, layers, problems, hints=RENAMED)
    recipe = _settings_dict(config, plugin_tables)
    _resolve_paths(recipe, base_dir, problems)
    if config.generator.name not in generator_names():
        problems.append(f"generator.name: {config.generator.name!r} is not one of {', '.join(generator_names())}")
    else:
        found = preset_problems(recipe["generator"], base_dir)
        problems += found or generator_problems(recipe["generator"], plugin_tables, base_dir)
        if not found:
            recipe["generator"]["preset"] = resolved_preset(recipe["generator"]["preset"], base_dir)
    problems += model_problems(recipe["reid"])
    if problems:
        raise settings.invalid(f"{source} is invalid", problems)
    return Recipe(None, recipe)


def _settings_dict(config: RecipeConfig, plugin_tables: dict[str, Any]) -> dict[str, Any]:
    """The resolved recipe as plain dicts (what stages, reports and the fractions protocol read)."""
    out = dataclasses.asdict(config)
    for section, keys in RUNNER_KEYS.items():
        out[section] = {k: v for k, v in out[section].items() if k not in keys}
    out["generator"].update(plugin_tables)
    return out


def _resolve_paths(settings_: dict[str, Any], base_dir: Path | None, problems: list[str]) -> None:
    """Relative paths are relative to the recipe file; every named file must exist."""
    for section, key in (
        ("dataset", "root"),
        ("dataset", "train_keypoints"),
        ("dataset", "test_keypoints"),
        ("synth", "pose_file"),
        ("reid", "pretrained"),
    ):
        value = settings_[section][key]
        if value is None or (section, key) == ("dataset", "root") and value == DEMO or value in PRETRAINED_NAMES:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = (base_dir / path).resolve()
        if not path.exists():
            problems.append(f"{section}.{key}: {path} does not exist")
        settings_[section][key] = str(path)


def load_recipe(path: str | Path, overrides: Mapping[str, Any] | None = None) -> Recipe:
    """Read and validate a recipe file; ``overrides`` maps ``section.key`` (or a whole section) to a value."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist")
    recipe = validate(
        read_toml(path), base_dir=path.parent.resolve(), source=str(path), overrides=settings.nest(overrides or {})
    )
    recipe.path = path.resolve()
    return recipe
