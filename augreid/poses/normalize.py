"""Pose normalisation for comparing poses across images.

A pose is centred on the torso centre (the midpoint of the neck and the hip
centre) and divided by the torso length (neck to hip centre), so that where a
person stands in the crop and how big they are do not matter, only the shape.

Missing joints stay missing: they come back as NaN together with a boolean
mask, never as zeros, because a zero would be a real coordinate (the torso
centre) after normalisation and would pull clusters towards it.

The neck is the ``neck`` joint or, when it is absent, the midpoint of the two
shoulders; the hip centre is the midpoint of the visible hips (one hip is
accepted). A pose without a neck estimate, without any hip, or with a torso
shorter than ``min_torso`` pixels cannot be normalised (``valid`` is False).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augreid.data.keypoints import KP, NUM_KEYPOINTS

NECK, RSHO, LSHO, RHIP, LHIP = KP["neck"], KP["Rsho"], KP["Lsho"], KP["Rhip"], KP["Lhip"]


@dataclass
class NormalisedPoses:
    """Normalised coordinates of a stack of poses.

    ``coords``: ``(N, 18, 2)`` float64 ``(y, x)`` in torso lengths, NaN where missing;
    ``mask``: ``(N, 18)`` bool, joint present; ``valid``: ``(N,)`` bool, normalisable;
    ``centre``: ``(N, 2)`` and ``scale``: ``(N,)`` in pixels (NaN when not valid).
    """

    coords: np.ndarray
    mask: np.ndarray
    valid: np.ndarray
    centre: np.ndarray
    scale: np.ndarray

    def __len__(self) -> int:
        return len(self.valid)


def _as_stack(poses: np.ndarray) -> np.ndarray:
    poses = np.asarray(poses, dtype=np.float64)
    if poses.ndim == 2:
        poses = poses[None]
    if poses.ndim != 3 or poses.shape[1:] != (NUM_KEYPOINTS, 2):
        raise ValueError(f"poses must have shape (N, {NUM_KEYPOINTS}, 2), got {poses.shape}")
    return poses


def joint_mask(poses: np.ndarray) -> np.ndarray:
    """Present joints of float or int poses (missing = negative coordinate or NaN)."""
    poses = np.asarray(poses, dtype=np.float64)
    return np.isfinite(poses).all(axis=-1) & (poses >= 0).all(axis=-1)


def _mean_of_present(points: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Mean over axis 1 of ``points (N, J, 2)`` using only ``present (N, J)``; NaN if none."""
    count = present.sum(axis=1)
    total = np.where(present[..., None], points, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(count[:, None] > 0, total / np.maximum(count, 1)[:, None], np.nan)


def torso_anchors(poses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(neck, hip_centre)`` per pose, each ``(N, 2)``, NaN where not available."""
    poses = _as_stack(poses)
    present = joint_mask(poses)
    shoulders = _mean_of_present(poses[:, [RSHO, LSHO]], present[:, [RSHO, LSHO]])
    both_shoulders = present[:, RSHO] & present[:, LSHO]
    shoulders[~both_shoulders] = np.nan  # one shoulder is not a neck estimate
    neck = np.where(present[:, NECK, None], poses[:, NECK], shoulders)
    hips = _mean_of_present(poses[:, [RHIP, LHIP]], present[:, [RHIP, LHIP]])
    return neck, hips


def normalise_poses(poses: np.ndarray, *, min_torso: float = 2.0) -> NormalisedPoses:
    """Centre on the torso centre and scale by the torso length; see the module docstring."""
    poses = _as_stack(poses)
    mask = joint_mask(poses)
    neck, hips = torso_anchors(poses)
    centre = (neck + hips) / 2.0
    scale = np.linalg.norm(neck - hips, axis=1)
    valid = np.isfinite(scale) & (np.nan_to_num(scale, nan=0.0) >= min_torso)
    centre[~valid] = np.nan
    scale = np.where(valid, scale, np.nan)
    with np.errstate(invalid="ignore"):
        coords = (poses - centre[:, None, :]) / scale[:, None, None]
    coords[~mask] = np.nan
    mask = mask & valid[:, None]
    return NormalisedPoses(coords, mask, valid, centre, scale)


def denormalise(coords: np.ndarray, centre: np.ndarray, scale: float) -> np.ndarray:
    """Put normalised ``(18, 2)`` coordinates back into a frame with ``centre`` and ``scale`` (float, NaN kept)."""
    return np.asarray(coords, dtype=np.float64) * float(scale) + np.asarray(centre, dtype=np.float64)
