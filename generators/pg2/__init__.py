"""PG2 (Ma et al., NIPS 2017): pose-guided person image generation.

Registered as the generator ``pg2`` (``generators.pg2.plugin``); synth, eval-gen
and the pipeline reach it only through ``generators.base``. PG2's own API:

* ``load_generator(path, device="cpu") -> PG2Generator``
* ``find_latest_checkpoint(dataset_fingerprint, search_root="runs") -> Path | None``
* ``load_preset(name_or_path, overrides=None) -> PG2Config``
* ``train_generator(cfg, data_root=None, ...)`` and ``evaluate_generator(...)``
  (``generators.pg2.train``; eval-gen is ``generators.common.quality.evaluate_generator``).
"""

from augreid.lazy import lazy_exports

_EXPORTS = {
    "PG2Config": "generators.pg2.config",
    "PG2Generator": "generators.pg2.checkpoint",
    "find_latest_checkpoint": "generators.pg2.checkpoint",
    "load_generator": "generators.pg2.checkpoint",
    "load_preset": "generators.pg2.config",
    "preset_names": "generators.pg2.config",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["PG2Config", "PG2Generator", "find_latest_checkpoint", "load_generator", "load_preset", "preset_names"]
