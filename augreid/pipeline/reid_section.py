"""A recipe's ``[reid]`` section is ``augreid train-reid``'s ``ReidConfig``: the same keys, defaults and checks.

The stage runner owns the keys that differ per stage (``data``, ``synthetic``,
``seed``, ``evaluate``); every other field of ``ReidConfig`` can be set in a recipe.
"""

from __future__ import annotations

RUNNER_KEYS = ("data", "synthetic", "seed", "evaluate")
# Settings that only matter when synthetic images are in the batch: the real-only arm ignores them.
LABELLING_KEYS = ("label_scheme", "label_smoothing", "synthetic_ratio", "max_synthetic_per_id")
