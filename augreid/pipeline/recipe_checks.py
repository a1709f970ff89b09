"""Value checks of a recipe, run by ``validate`` before any stage (and by ``--dry-run``).

The type checks in ``recipe.py`` say whether a value is a number; these say
whether it is a usable one, and whether named presets and models exist, so
that a mistake costs seconds instead of the stages that run before it.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

# (section, key) -> (lowest allowed, highest allowed or None, exclusive lower bound?)
RANGES: dict[tuple[str, str], tuple[float, float | None, bool]] = {
    ("generator", "stage1_iterations"): (1, None, False),
    ("generator", "stage2_iterations"): (0, None, False),
    ("generator", "batch_size"): (1, None, False),
    ("generator", "max_pairs"): (1, None, False),
    ("generator", "eval_pairs"): (0, None, False),  # 0 = every pair
    ("synth", "num_poses"): (1, None, False),
    ("synth", "per_id"): (1, None, False),
    ("synth", "batch_size"): (1, None, False),
    ("synth", "min_quality"): (0, 1, False),
    ("reid", "epochs"): (1, None, False),
    ("reid", "batch_size"): (1, None, False),
    ("reid", "height"): (32, None, False),  # the smallest input torchreid backbones take
    ("reid", "width"): (16, None, False),
    ("reid", "lr"): (0, None, True),
    ("reid", "label_smoothing"): (0, 1, False),
    ("reid", "synthetic_ratio"): (0, 1, False),
    ("reid", "max_synthetic_per_id"): (1, None, False),
    ("eval", "bootstrap"): (1, None, False),
}


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def range_problems(settings: dict[str, Any]) -> list[str]:
    """One line per value outside its range (values of a wrong type are reported elsewhere)."""
    problems = []
    for (section, key), (low, high, exclusive) in RANGES.items():
        value = (settings.get(section) or {}).get(key)
        if value is None or not _is_number(value):
            continue
        where = f"{section}.{key}"
        if not math.isfinite(value):
            problems.append(f"{where}: {value} is not a finite number")
        elif value < low or (exclusive and value == low) or (high is not None and value > high):
            bound = f"> {low}" if exclusive else f">= {low}"
            problems.append(f"{where}: {value} must be {bound}" + (f" and <= {high}" if high is not None else ""))
    seeds = settings.get("seeds")
    if isinstance(seeds, list) and len(set(map(repr, seeds))) != len(seeds):
        problems.append(f"seeds: {seeds} repeats a seed (each seed is one run)")
    return problems


def preset_problems(generator: dict[str, Any], base_dir: Path | None) -> list[str]:
    """A preset must be one the generator ships or an existing ``.toml`` file."""
    from augreid.errors import AugreidError
    from generators.base import generator_plugin

    preset = generator.get("preset")
    if not isinstance(preset, str):
        return []
    if preset.endswith(".toml") or "/" in preset:
        path = Path(preset).expanduser()
        candidates = [path] if path.is_absolute() or base_dir is None else [base_dir / path, path]
        return [] if any(p.is_file() for p in candidates) else [f"generator.preset: preset file {preset} does not exist"]
    try:
        plugin = generator_plugin(generator.get("name") or "pg2")
    except AugreidError:
        return []  # an unknown generator name is reported on its own
    known = plugin.presets() if plugin.presets else []
    if known and preset not in known:
        return [f"generator.preset: unknown preset {preset!r} (known: {', '.join(known)}, or a path to a .toml file)"]
    return []


def model_problems(reid: dict[str, Any]) -> list[str]:
    """The re-ID model must be one torchreid builds (imports torchreid: about a second)."""
    model = reid.get("model")
    if not isinstance(model, str):
        return []
    from augreid.reid.checkpoint import model_names

    names = model_names()
    if model in names:
        return []
    close = [n for n in names if n.startswith(model[:4])][:6]
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (torchreid knows {len(names)} models)"
    return [f"reid.model: unknown model {model!r}{hint}"]


def value_problems(settings: dict[str, Any], base_dir: Path | None) -> list[str]:
    """Every range, preset and model problem of a type-checked recipe."""
    return (range_problems(settings) + preset_problems(settings.get("generator") or {}, base_dir)
            + model_problems(settings.get("reid") or {}))
