"""PG2 (Ma et al., NIPS 2017): pose-guided person image generation.

Registered as the generator ``pg2`` (``generators.pg2.plugin``); synth, eval-gen
and the pipeline reach it only through ``generators.base``. PG2's own API:

* ``load_generator(path, device="cpu") -> PG2Generator``
* ``find_latest_checkpoint(dataset_fingerprint, search_root="runs") -> Path | None``
* ``load_preset(name_or_path, overrides=None) -> PG2Config``
* ``train_generator(cfg, data_root=None, ...)`` and ``evaluate_generator(...)``
  (imported lazily from ``generators.pg2.train`` / ``generators.pg2.quality``).
"""

from generators.pg2.checkpoint import PG2Generator, find_latest_checkpoint, load_generator
from generators.pg2.config import PG2Config, load_preset, preset_names

__all__ = ["PG2Config", "PG2Generator", "find_latest_checkpoint", "load_generator", "load_preset", "preset_names"]
