"""Image grids for TensorBoard, training previews and contact sheets: one row per sample, one column per image."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid

from augreid.data.imaging import encode_png, write_png

PREVIEW_PAIRS = 6  # training previews show this many fixed pairs


def _palette() -> torch.Tensor:
    """18 distinct joint colours (HSV wheel), RGB in [0, 1]."""
    return torch.tensor([colorsys.hsv_to_rgb(i / 18.0, 0.9, 1.0) for i in range(18)], dtype=torch.float32)


def pose_image(maps: torch.Tensor) -> torch.Tensor:
    """(B, 18, H, W) pose maps -> (B, 3, H, W) coloured joints in [-1, 1] on black."""
    palette = _palette().to(maps.device)
    coloured = maps.float()[:, :, None] * palette[None, :, :, None, None]
    return coloured.amax(dim=1) * 2.0 - 1.0


def grid_rows(columns: list[torch.Tensor]) -> torch.Tensor:
    """Lay out one row per sample, one column per tensor; returns (3, H', W') in [0, 1]."""
    stacked = torch.stack([c.detach().float().cpu().clamp(-1, 1) for c in columns], dim=1)  # (B, C, 3, H, W)
    flat = stacked.flatten(0, 1)
    return make_grid((flat + 1) / 2, nrow=len(columns), padding=2, pad_value=1.0)


def preview_picks(count: int) -> list[int]:
    """The fixed pairs a training preview shows: up to ``PREVIEW_PAIRS`` evenly spaced indices of ``count``."""
    return [int(i) for i in np.unique(np.linspace(0, count - 1, min(PREVIEW_PAIRS, count)).round().astype(int))]


def grid_array(grid: torch.Tensor) -> np.ndarray:
    """A (3, H, W) grid in [0, 1] as an (H, W, 3) uint8 array."""
    return (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def to_png_bytes(grid: torch.Tensor) -> bytes:
    return encode_png(grid_array(grid))


def save_png(grid: torch.Tensor, path: str | Path) -> Path:
    return write_png(path, grid_array(grid))
