"""Pose rendering as in PG2: keypoint maps, the pose mask, horizontal flip.

All vectorised over pixels and joints; no per-pixel Python loops.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from augreid.data.keypoints import FLIP_ORDER, MISSING, NUM_KEYPOINTS, visible

# Limbs used for the pose mask in PG2's own code (_getPoseMask, 1-based there):
# the drawing skeleton with neck-ears instead of shoulder-ears, plus the torso
# edges Rhip-Lhip, Lhip-Lsho, Rhip-Rsho and Rear-Lear so that the torso fills.
# fmt: off
MASK_LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (1, 16), (1, 17),
    (8, 11), (11, 5), (8, 2), (16, 17),
)
# fmt: on


def _grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    h, w = shape
    return np.arange(h, dtype=np.float32)[:, None], np.arange(w, dtype=np.float32)[None, :]


def pose_maps(
    pose: np.ndarray, shape: tuple[int, int] = (128, 64), *, radius: float = 4.0, mode: str = "disk", sigma: float = 6.0
) -> np.ndarray:
    """18-channel keypoint maps, ``float32`` of shape ``(18, H, W)``.

    ``mode="disk"`` (PG2): 1 inside a solid disk of ``radius`` around each joint.
    ``mode="gaussian"``: ``exp(-d^2 / (2 sigma^2))``. Missing joints give all-zero maps.
    """
    pose = np.asarray(pose)
    if pose.shape != (NUM_KEYPOINTS, 2):
        raise ValueError(f"pose must have shape ({NUM_KEYPOINTS}, 2), got {pose.shape}")
    yy, xx = _grid(shape)
    ys = pose[:, 0].astype(np.float32)[:, None, None]
    xs = pose[:, 1].astype(np.float32)[:, None, None]
    d2 = (yy[None] - ys) ** 2 + (xx[None] - xs) ** 2
    if mode == "disk":
        maps = (d2 <= radius * radius).astype(np.float32)
    elif mode == "gaussian":
        maps = np.exp(-d2 / (2.0 * sigma * sigma)).astype(np.float32)
    else:
        raise ValueError(f"unknown pose map mode {mode!r} (use 'disk' or 'gaussian')")
    maps[~visible(pose)] = 0.0
    return maps


def _segment_distance2(yy: np.ndarray, xx: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Squared distance of every pixel to each segment a[i]-b[i]; shape (L, H, W)."""
    a = a.astype(np.float32)[:, :, None, None]
    b = b.astype(np.float32)[:, :, None, None]
    ab = b - a
    len2 = np.maximum((ab**2).sum(axis=1), 1e-6)
    py, px = yy[None], xx[None]
    t = ((py - a[:, 0]) * ab[:, 0] + (px - a[:, 1]) * ab[:, 1]) / len2
    t = np.clip(t, 0.0, 1.0)
    dy = py - (a[:, 0] + t * ab[:, 0])
    dx = px - (a[:, 1] + t * ab[:, 1])
    return dy**2 + dx**2


def pose_mask(
    pose: np.ndarray, shape: tuple[int, int] = (128, 64), *, radius: float = 4.0, close_size: int = 5
) -> np.ndarray:
    """PG2's pose mask ``M``: limbs drawn with ``radius``, then dilation + erosion (5x5 square).

    Returns ``float32`` of shape ``(H, W)`` with values in {0, 1}. Joints that
    are present but belong to no complete limb are drawn as disks.
    """
    pose = np.asarray(pose)
    vis = visible(pose)
    yy, xx = _grid(shape)
    limbs = np.array([limb for limb in MASK_LIMBS if vis[limb[0]] and vis[limb[1]]], dtype=np.int64)
    mask = np.zeros(shape, dtype=bool)
    if len(limbs):
        d2 = _segment_distance2(yy, xx, pose[limbs[:, 0]], pose[limbs[:, 1]])
        mask |= (d2 <= radius * radius).any(axis=0)
    if vis.any():
        mask |= pose_maps(pose, shape, radius=radius).max(axis=0) > 0
    if close_size > 1 and mask.any():
        footprint = np.ones((close_size, close_size), dtype=bool)
        # 'nearest' so that a mask touching the frame is not eroded at the frame edge.
        mask = ndimage.grey_dilation(mask, footprint=footprint, mode="nearest")
        mask = ndimage.grey_erosion(mask, footprint=footprint, mode="nearest")
    return mask.astype(np.float32)


def flip_pose(pose: np.ndarray, width: int) -> np.ndarray:
    """Mirror a pose horizontally in an image of ``width`` pixels; left/right joints swap."""
    pose = np.asarray(pose)
    flipped = pose.copy()
    vis = visible(pose)
    flipped[vis, 1] = (width - 1) - pose[vis, 1]
    flipped = flipped[list(FLIP_ORDER)]
    flipped[~visible(flipped)] = MISSING
    return flipped


def scale_pose(pose: np.ndarray, src_hw: tuple[int, int], dst_hw: tuple[int, int]) -> np.ndarray:
    """Map integer (y, x) joints from an image of ``src_hw`` to one of ``dst_hw``.

    Pixel centres map to pixel centres (``floor((p + 0.5) * dst / src)``), so that halving and doubling
    a size round-trip; every generator scales poses with this one function, as PG2's training did.
    """
    pose = np.asarray(pose, dtype=np.int32)
    if tuple(src_hw) == tuple(dst_hw):
        return pose.copy()
    vis = visible(pose)
    out = np.full_like(pose, MISSING)
    for axis in (0, 1):
        scaled = np.floor((pose[vis, axis] + 0.5) * dst_hw[axis] / src_hw[axis])
        out[vis, axis] = np.clip(scaled, 0, dst_hw[axis] - 1).astype(np.int32)
    return out


def clip_pose(pose: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Mark joints outside the frame as missing."""
    pose = np.asarray(pose).copy()
    h, w = shape
    outside = (pose[:, 0] >= h) | (pose[:, 1] >= w) | (pose[:, 0] < 0) | (pose[:, 1] < 0)
    pose[outside] = MISSING
    return pose
