"""Re-ID training on real and synthetic images, wrapping torchreid.

Importing this package is cheap: torch and torchreid are imported inside the
functions that need them.
"""

from augreid.reid.checkpoint import load_reid_model, save_reid_checkpoint

__all__ = ["load_reid_model", "save_reid_checkpoint"]
