"""Writing images and drawing skeletons: JPEG/PNG encoding, atomic PNG files, figures, skeleton colours.

Every picture augreid writes goes through here, so that one setting (JPEG chroma
subsampling, PNG optimisation) means the same bytes wherever it is used.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from augreid.data.keypoints import LIMBS, visible
from augreid.io import atomic_write_bytes

# OpenPose's drawing colours, one per limb of LIMBS (right side warm, left side cool);
# a joint drawn in colour takes the colour of the limb with its index.
# fmt: off
LIMB_COLOURS: tuple[tuple[int, int, int], ...] = (
    (255, 0, 0), (255, 85, 0), (255, 170, 0), (255, 255, 0), (170, 255, 0), (85, 255, 0), (0, 255, 0),
    (0, 255, 85), (0, 255, 170), (0, 255, 255), (0, 170, 255), (0, 85, 255), (0, 0, 255), (85, 0, 255),
    (170, 0, 255), (255, 0, 255), (255, 0, 170), (255, 0, 85), (255, 0, 0),
)
# fmt: on
WHITE, BLACK = (255, 255, 255), (0, 0, 0)


# ---------------------------------------------------------------- encoding and files


def encode_jpeg(image: np.ndarray, quality: int, *, subsampling: int = -1) -> bytes:
    """JPEG bytes of an ``(H, W, 3)`` uint8 array; the same pixels and settings always give the same bytes.

    ``subsampling``: Pillow's chroma subsampling, -1 = its default (4:2:0), 0 = none (4:4:4).
    """
    buffer = io.BytesIO()
    Image.fromarray(image).save(buffer, format="JPEG", quality=quality, optimize=False, subsampling=subsampling)
    return buffer.getvalue()


def encode_png(image: Image.Image | np.ndarray, *, optimize: bool = False) -> bytes:
    """PNG bytes of a PIL image or an ``(H, W[, 3])`` uint8 array."""
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", optimize=optimize)
    return buffer.getvalue()


def write_png(path: str | Path, image: Image.Image | np.ndarray, *, optimize: bool = False) -> Path:
    """Write ``image`` as a PNG file atomically (readers never see half a file)."""
    return atomic_write_bytes(path, encode_png(image, optimize=optimize))


def write_figure(path: str | Path, fig: Figure, *, dpi: float | None = None) -> Path:
    """Write a matplotlib figure as a PNG file atomically (``dpi=None``: the figure's own)."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=dpi)
    return atomic_write_bytes(path, buffer.getvalue())


# ---------------------------------------------------------------- skeletons


def draw_skeleton(
    draw: ImageDraw.ImageDraw,
    pose: np.ndarray,
    scale: float = 1,
    *,
    joint_radius: float | None = None,
    coloured_joints: bool = False,
) -> None:
    """Draw ``pose`` (``(18, 2)`` y, x in original pixels, -1 = missing) at ``scale`` onto ``draw``.

    Limbs take LIMB_COLOURS; joints are white with a black outline, or with
    ``coloured_joints`` filled in their own colour. Points sit at pixel centres.
    """
    present = visible(pose)
    points = (pose[:, ::-1].astype(float) + 0.5) * scale
    for (a, b), colour in zip(LIMBS, LIMB_COLOURS):
        if present[a] and present[b]:
            draw.line([tuple(points[a]), tuple(points[b])], fill=colour, width=max(1, int(scale)))
    r = joint_radius if joint_radius is not None else max(1.5, scale * 0.9)
    for j in np.flatnonzero(present):
        x, y = points[j]
        if coloured_joints:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=LIMB_COLOURS[j])
        else:
            draw.ellipse([x - r, y - r, x + r, y + r], fill=WHITE, outline=BLACK)


def skeleton_tile(pose: np.ndarray, shape: tuple[int, int]) -> Image.Image:
    """A white ``(H, W)`` tile with ``pose`` drawn in black limbs and red joints (a target pose on its own)."""
    h, w = shape
    tile = Image.new("RGB", (w, h), WHITE)
    draw = ImageDraw.Draw(tile)
    present = visible(pose)
    for a, b in LIMBS:
        if present[a] and present[b]:
            draw.line([(int(pose[a, 1]), int(pose[a, 0])), (int(pose[b, 1]), int(pose[b, 0]))], fill=BLACK, width=2)
    for y, x in pose[present]:
        draw.ellipse([x - 1, y - 1, x + 1, y + 1], fill=(200, 30, 30))
    return tile
