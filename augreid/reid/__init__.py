"""Re-ID training on real and synthetic images, wrapping torchreid."""

import warnings

# torchreid warns on import, from any of its modules, that its Cython evaluator is
# missing; augreid scores with its own evaluator, so the warning only misleads.
# This runs before any augreid.reid module (or augreid.evaluation.distance) imports torchreid.
warnings.filterwarnings("ignore", message="Cython evaluation")

from augreid.lazy import lazy_exports  # noqa: E402

_EXPORTS = {
    "ReidConfig": "augreid.reid.config",
    "load_reid_model": "augreid.reid.checkpoint",
    "resolve_config": "augreid.reid.config",
    "save_reid_checkpoint": "augreid.reid.checkpoint",
    "train_reid": "augreid.reid.train",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = ["ReidConfig", "load_reid_model", "resolve_config", "save_reid_checkpoint", "train_reid"]
