"""Contact sheet of a synth run: a header row of target skeletons, then one row per
identity: the real condition image followed by the generated images, one per target pose."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np

from augreid.data.keypoints import LIMBS, visible
from augreid.io import atomic_write_bytes

PAD = 2
REJECTED_GREY = (128, 128, 128)


def skeleton_image(pose: np.ndarray, shape: tuple[int, int]):
    """A white tile with the pose drawn on it."""
    from PIL import Image, ImageDraw

    h, w = shape
    tile = Image.new("RGB", (w, h), (255, 255, 255))
    draw = ImageDraw.Draw(tile)
    present = visible(pose)
    for a, b in LIMBS:
        if present[a] and present[b]:
            draw.line([(int(pose[a, 1]), int(pose[a, 0])), (int(pose[b, 1]), int(pose[b, 0]))], fill=(0, 0, 0), width=2)
    for y, x in pose[present]:
        draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=(200, 30, 30))
    return tile


def _open(path: Path, shape: tuple[int, int]):
    from PIL import Image

    h, w = shape
    if path is None or not path.is_file():
        return Image.new("RGB", (w, h), REJECTED_GREY)  # removed by --min-quality
    with Image.open(path) as img:
        return img.convert("RGB").resize((w, h))


def contact_sheet(
    path: Path,
    rows: list[tuple[Path, list[Path | None]]],
    target_poses: np.ndarray,
    shape: tuple[int, int],
) -> Path:
    """``rows``: (condition image, generated image per target or None) per identity."""
    from PIL import Image

    h, w = shape
    cols = 1 + len(target_poses)
    sheet = Image.new("RGB", (cols * (w + PAD) + PAD, (len(rows) + 1) * (h + PAD) + PAD), (255, 255, 255))
    for k, pose in enumerate(target_poses):
        sheet.paste(skeleton_image(pose, shape), (PAD + (k + 1) * (w + PAD), PAD))
    for r, (condition, generated) in enumerate(rows, start=1):
        y = PAD + r * (h + PAD)
        sheet.paste(_open(condition, shape), (PAD, y))
        for k, image in enumerate(generated, start=1):
            sheet.paste(_open(image, shape), (PAD + k * (w + PAD), y))
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG")
    return atomic_write_bytes(path, buffer.getvalue())
