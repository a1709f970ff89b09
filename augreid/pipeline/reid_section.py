"""A recipe's ``[reid]`` section is ``augreid train-reid``'s ``ReidConfig``: the same keys, defaults and checks.

The stage runner owns the keys that differ per stage (``data``, ``synthetic``,
``seed``, ``evaluate``); every other field of ``ReidConfig`` can be set in a recipe.
"""

from __future__ import annotations

RUNNER_KEYS = ("data", "synthetic", "seed", "evaluate")
# Settings that only matter when synthetic images are in the batch: the real-only arm ignores them.
LABELLING_KEYS = ("label_scheme", "label_smoothing", "synthetic_per_batch", "max_synthetic_per_id")

# The arms of a comparison, in report order: arm -> the stage whose synthetic folder it adds to every batch
# (None: real images only). They share every other setting (augreid.pipeline.stages).
ARMS: dict[str, str | None] = {"baseline": None, "copy": "synth-copy", "augmented": "synth"}
