"""Re-ID training on real and synthetic images, wrapping torchreid.

``train_reid``, ``resolve_config`` and ``ReidConfig`` are loaded on first use.
"""

import warnings

# torchreid warns on import, from any of its modules, that its Cython evaluator is
# missing; augreid scores with its own evaluator, so the warning only misleads.
warnings.filterwarnings("ignore", message="Cython evaluation")

from augreid.reid.checkpoint import load_reid_model, save_reid_checkpoint  # noqa: E402

__all__ = ["ReidConfig", "load_reid_model", "resolve_config", "save_reid_checkpoint", "train_reid"]


def __getattr__(name: str):
    if name in ("ReidConfig", "resolve_config"):
        from augreid.reid import config

        return getattr(config, name)
    if name == "train_reid":
        from augreid.reid.train import train_reid

        return train_reid
    raise AttributeError(f"module 'augreid.reid' has no attribute {name!r}")
