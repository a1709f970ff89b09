"""Image grids for TensorBoard and contact sheets: condition | target pose | G1 | refined | target."""

from __future__ import annotations

import colorsys
from pathlib import Path

import numpy as np
import torch
from torchvision.utils import make_grid

from augreid.data.imaging import encode_png, write_png
from generators.pg2.data import PairDataset

PREVIEW_PAIRS = 6


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


@torch.no_grad()
def preview_grid(g1, g2, data, device: torch.device, *, with_g2: bool) -> torch.Tensor:
    """Run the generators on fixed training pairs (evenly spaced, unflipped)."""
    dataset = PairDataset(data.cache, data.pairs, warp=g1.warp_base != "off")
    picks = np.unique(np.linspace(0, len(dataset) - 1, min(PREVIEW_PAIRS, len(dataset))).round().astype(int))
    items = [dataset[(int(i), False)] for i in picks]
    batch = {k: torch.stack([item[k] for item in items]).to(device) for k in items[0]}
    modes = [(m, m.training) for m in (g1, g2) if m is not None]
    for module, _ in modes:
        module.eval()
    try:
        coarse = g1(batch["condition"], batch["target_maps"], batch.get("warped"))
        refined = coarse + g2(coarse, batch["condition"]) if with_g2 and g2 is not None else torch.zeros_like(coarse)
    finally:
        for module, was_training in modes:
            module.train(was_training)
    return grid_rows([batch["condition"], pose_image(batch["target_maps"]), coarse, refined, batch["target"]])


def grid_array(grid: torch.Tensor) -> np.ndarray:
    """A (3, H, W) grid in [0, 1] as an (H, W, 3) uint8 array."""
    return (grid.clamp(0, 1) * 255).round().byte().permute(1, 2, 0).numpy()


def to_png_bytes(grid: torch.Tensor) -> bytes:
    return encode_png(grid_array(grid))


def save_png(grid: torch.Tensor, path: str | Path) -> Path:
    return write_png(path, grid_array(grid))
