"""Recipes: a whole experiment as one TOML file, validated before anything runs.

A recipe has the sections ``[dataset]``, ``[generator]``, ``[synth]``, ``[reid]``
and ``[eval]`` plus top-level ``name`` and ``seeds``. Every key has a type and a
default (``SCHEMA``); unknown keys, wrong types and missing files are reported
together, so a user fixes a recipe in one go.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from augreid.errors import ConfigError
from augreid.pipeline.reid_section import fill_reid_section
from augreid.reid.config import PRETRAINED_NAMES
from augreid.tomlfile import parse_override, read_toml  # noqa: F401  (parse_override: for the CLI)

DEMO = "demo"  # dataset.root value meaning the embedded demo dataset

# section -> key -> (types, default). ``None`` default = optional.
SCHEMA: dict[str, dict[str, tuple[tuple[type, ...], Any]]] = {
    "": {
        "name": ((str,), None),
        "description": ((str,), ""),
        "seeds": ((list,), [0]),
        "output": ((str,), "runs"),
    },
    "dataset": {
        "root": ((str,), DEMO),
        "train_keypoints": ((str,), None),
        "test_keypoints": ((str,), None),
    },
    "generator": {
        "name": ((str,), "pg2"),  # a generators.base registry name
        "preset": ((str,), "cpu-small"),
        "stage1_iterations": ((int,), None),
        "stage2_iterations": ((int,), None),
        "batch_size": ((int,), None),
        "max_pairs": ((int,), None),
        "different_cameras": ((bool,), False),
        "seed": ((int,), 0),
        "eval_pairs": ((int,), 200),
        "realism": ((bool,), True),  # FID-MNv2 / KID in eval-gen (offline ImageNet MobileNetV2)
    },
    "synth": {
        "poses": ((str,), "clustered"),
        "pose_file": ((str,), None),
        "num_poses": ((int,), 8),
        "per_id": ((int,), 1),
        "min_quality": ((float, int), 0.0),
        "min_pckh": ((float, int), None),  # PCKh (MediaPipe) filter; None = synth's default (0.2), 0 = off
        "batch_size": ((int,), 32),
        "seed": ((int,), 0),
    },
    "reid": {},  # augreid.reid.config.ReidConfig's keys: see augreid/pipeline/reid_section.py
    "eval": {
        "metric": ((str,), "euclidean"),
        "flip": ((bool,), True),
        "rerank": ((bool,), False),
        "ap": ((str,), "torchreid"),
        "bootstrap": ((int,), 1000),
        "bootstrap_seed": ((int,), 0),
    },
    "protocol": {  # the fractional-real protocol (augreid.pipeline.fractions); no fractions = one full-data run
        "fractions": ((list,), None),
        "subset_seed": ((int,), 0),
    },
}

CHOICES: dict[tuple[str, str], tuple[str, ...]] = {
    ("synth", "poses"): ("clustered", "random", "file"),
    ("eval", "metric"): ("euclidean", "cosine"),
    ("eval", "ap"): ("torchreid", "trapezoid"),
}


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


def _check_type(where: str, value: Any, types: tuple[type, ...], problems: list[str]) -> None:
    # bool is an int subclass; a recipe saying `epochs = true` is a mistake.
    if isinstance(value, bool) and bool not in types:
        problems.append(f"{where}: expected {'/'.join(t.__name__ for t in types)}, got a boolean")
    elif not isinstance(value, types):
        problems.append(f"{where}: expected {'/'.join(t.__name__ for t in types)}, got {type(value).__name__} {value!r}")


def validate(raw: dict[str, Any], base_dir: Path | None = None, source: str = "recipe") -> Recipe:
    """Fill defaults and check every key; raise one ``ConfigError`` listing all problems."""
    problems: list[str] = []
    settings: dict[str, Any] = {}
    for section, keys in SCHEMA.items():
        given = raw if section == "" else raw.get(section, {})
        if section and not isinstance(given, dict):
            problems.append(f"[{section}] must be a table")
            given = {}
        filled: dict[str, Any] = {}
        if section == "reid":
            settings[section] = fill_reid_section(given, problems)
            continue
        for key, (types, default) in keys.items():
            where = f"{section}.{key}" if section else key
            if key in given:
                _check_type(where, given[key], types, problems)
                filled[key] = given[key]
            else:
                filled[key] = copy.deepcopy(default)
            if (section, key) in CHOICES and filled[key] is not None and filled[key] not in CHOICES[(section, key)]:
                problems.append(f"{where}: {filled[key]!r} is not one of {', '.join(CHOICES[(section, key)])}")
        unknown = [k for k in given if k not in keys and not (section == "" and k in SCHEMA)]
        for key in unknown:
            where = f"{section}.{key}" if section else key
            problems.append(f"{where}: unknown key (known: {', '.join(sorted(keys))})")
        if section == "":
            settings.update(filled)
        else:
            settings[section] = filled
    if not settings.get("name"):
        problems.append("name: a recipe needs a name (it names the run folder)")
    seeds = settings.get("seeds")
    if isinstance(seeds, list) and (not seeds or not all(isinstance(s, int) and not isinstance(s, bool) for s in seeds)):
        problems.append("seeds: expected a non-empty list of integers")
    _resolve_paths(settings, base_dir, problems)
    if settings["synth"]["poses"] == "file" and not settings["synth"]["pose_file"]:
        problems.append("synth.pose_file: required when synth.poses = 'file'")
    from generators.base import generator_names

    if settings["generator"]["name"] not in generator_names():
        problems.append(f"generator.name: {settings['generator']['name']!r} is not one of {', '.join(generator_names())}")
    from augreid.pipeline.recipe_checks import value_problems

    problems += value_problems(settings, base_dir)
    from augreid.pipeline.fractions import protocol_problems

    problems += protocol_problems(settings["protocol"])
    if problems:
        raise ConfigError(f"{source} is invalid:\n  - " + "\n  - ".join(problems))
    return Recipe(None, settings)


def _resolve_paths(settings: dict[str, Any], base_dir: Path | None, problems: list[str]) -> None:
    """Relative paths are relative to the recipe file; every named file must exist."""
    for section, key in (("dataset", "root"), ("dataset", "train_keypoints"), ("dataset", "test_keypoints"),
                         ("synth", "pose_file"), ("reid", "pretrained")):
        value = settings[section][key]
        if value is None or (section, key) == ("dataset", "root") and value == DEMO or value in PRETRAINED_NAMES:
            continue
        path = Path(value).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = (base_dir / path).resolve()
        if not path.exists():
            problems.append(f"{section}.{key}: {path} does not exist")
        settings[section][key] = str(path)


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a recipe file; ``overrides`` maps ``section.key`` to a value."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"recipe {path} does not exist")
    raw = read_toml(path)
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.rpartition(".")
        (raw.setdefault(section, {}) if section else raw)[key] = value
    recipe = validate(raw, base_dir=path.parent.resolve(), source=str(path))
    recipe.path = path.resolve()
    return recipe

