"""A recipe's ``[reid]`` section is ``augreid train-reid``'s settings: the same keys, defaults and checks.

The stage runner owns the keys that differ per stage (``data``, ``synthetic``,
``seed``, ``evaluate``); everything else in ``augreid/reid/defaults.toml`` can be
set in a recipe.
"""

from __future__ import annotations

from typing import Any

from augreid.errors import ConfigError
from augreid.reid.config import FIELDS, PRETRAINED_NAMES, default_settings, resolve_config

RUNNER_KEYS = ("data", "synthetic", "seed", "evaluate")
# Settings that only matter when synthetic images are in the batch: the real-only arm ignores them.
LABELLING_KEYS = ("label_scheme", "label_smoothing", "synthetic_ratio", "max_synthetic_per_id")


def reid_keys() -> list[str]:
    return [name for name in FIELDS if name not in RUNNER_KEYS]


def fill_reid_section(given: dict[str, Any], problems: list[str]) -> dict[str, Any]:
    """Defaults from ``ReidConfig`` overlaid by ``given``; problems are appended as ``reid.KEY: ...``."""
    defaults = default_settings()
    filled = {key: given.get(key, defaults.get(key)) for key in reid_keys()}
    for key in given:
        if key not in filled:
            hint = " (set per stage by the runner)" if key in RUNNER_KEYS else ""
            renamed = "; `loss` became `method` (softmax, triplet or bot)" if key == "loss" else ""
            problems.append(f"reid.{key}: unknown key{hint} (known: {', '.join(sorted(filled))}){renamed}")
    overrides = {k: v for k, v in filled.items() if k != "pretrained" or v in PRETRAINED_NAMES or v is None}
    found = _problems(overrides)
    # Range checks run only on well-typed values: check again with the mistyped keys at their defaults,
    # so that every problem is reported at once.
    mistyped = {line.split(":")[0] for line in found}
    if mistyped:
        found += [p for p in _problems({k: defaults.get(k) if k in mistyped else v for k, v in overrides.items()})
                  if p not in found]
    problems += [f"reid.{line}" for line in found]
    return filled


def _problems(overrides: dict[str, Any]) -> list[str]:
    try:
        resolve_config(None, {**overrides, "synthetic": "recipe-check" if overrides.get("synthetic_ratio") else None})
    except ConfigError as err:
        return [line.strip().removeprefix("- ") for line in str(err).splitlines()[1:]]
    return []
