"""PG2's training preview: condition | target pose | G1 | refined | target, on fixed training pairs."""

from __future__ import annotations

import torch

from generators.common.data import PairDataset
from generators.common.preview import grid_rows, pose_image, preview_picks


@torch.no_grad()
def preview_grid(g1, g2, data, device: torch.device, *, with_g2: bool) -> torch.Tensor:
    """Run the generators on fixed training pairs (evenly spaced, unflipped)."""
    dataset = PairDataset(data.cache, data.pairs, warp=g1.warp_base != "off")
    items = [dataset[(i, False)] for i in preview_picks(len(dataset))]
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
