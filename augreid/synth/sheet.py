"""Contact sheet of a synth run: a header row of target skeletons, then one row per
identity: the real condition image followed by the generated images, one per target pose."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from augreid.data.imaging import skeleton_tile, write_png

PAD = 2
REJECTED_GREY = (128, 128, 128)


def _open(path: Path | None, shape: tuple[int, int]) -> Image.Image:
    h, w = shape
    if path is None or not path.is_file():
        return Image.new("RGB", (w, h), REJECTED_GREY)  # removed by --min-quality
    with Image.open(path) as img:
        return img.convert("RGB").resize((w, h))


def contact_sheet(
    path: Path, rows: list[tuple[Path, list[Path | None]]], target_poses: np.ndarray, shape: tuple[int, int]
) -> Path:
    """``rows``: (condition image, generated image per target or None) per identity."""
    h, w = shape
    cols = 1 + len(target_poses)
    sheet = Image.new("RGB", (cols * (w + PAD) + PAD, (len(rows) + 1) * (h + PAD) + PAD), (255, 255, 255))
    for k, pose in enumerate(target_poses):
        sheet.paste(skeleton_tile(pose, shape), (PAD + (k + 1) * (w + PAD), PAD))
    for r, (condition, generated) in enumerate(rows, start=1):
        y = PAD + r * (h + PAD)
        sheet.paste(_open(condition, shape), (PAD, y))
        for k, image in enumerate(generated, start=1):
            sheet.paste(_open(image, shape), (PAD + k * (w + PAD), y))
    return write_png(path, sheet)
