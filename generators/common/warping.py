"""The training-free part warp as a building block: settings, the tensor-level warper, pose-map decoding.

Shared by the ``warp`` plug-in (which is this warp, nothing more), PG2's
``model.warp_base`` (which corrects it) and the ``deformable`` generator (which
sees it and may start from it), so that no plug-in imports another.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch

from augreid.data.keypoints import MISSING, NUM_KEYPOINTS
from augreid.pose_estimation.base import EstimatorSpec, PoseEstimator
from generators.base import to_tensor_image, to_uint8_image
from generators.common.parts import PartWidths, warp_person

MARKER_RADIUS = 2.0  # target joints are rendered as small disks; the warp reads back their centres


@dataclass
class WarpConfig:
    name: str = "default"
    image_size: tuple[int, int] = (128, 64)
    estimator: str = "mediapipe"  # finds the condition image's keypoints
    background: Literal["inpaint", "condition"] = "inpaint"  # what shows where the person used to stand
    widths: PartWidths = field(default_factory=PartWidths)

    def problems(self) -> list[str]:
        out = []
        if min(self.image_size) < 32:
            out.append(f"image_size: must be two sizes >= 32, got {list(self.image_size)}")
        w = self.widths
        for key in ("arm", "leg", "head"):
            if not 0.0 < getattr(w, key) <= 2.0:
                out.append(f"widths.{key}: must be in (0, 2] (a fraction of the torso length), got {getattr(w, key)}")
        for key in ("torso_margin", "feather", "extremity"):
            if getattr(w, key) < 0:
                out.append(f"widths.{key}: must be >= 0, got {getattr(w, key)}")
        return out

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(dataclasses.asdict(self)))

    def warp_image(self, image: np.ndarray, source: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, int]:
        """uint8 ``image`` whose person stands in ``source`` re-posed to ``target`` with these settings, and how many
        parts moved: what :class:`WarpGenerator` and PG2's ``model.warp_base`` training both call."""
        return warp_person(
            np.ascontiguousarray(image),
            np.asarray(source, np.int32),
            np.asarray(target, np.int32),
            self.widths,
            inpaint=self.background == "inpaint",
        )


class PartWarper:
    """Condition images (tensors in [-1, 1]) re-posed by :meth:`WarpConfig.warp_image`; the condition's own
    keypoints come from the caller or, where it has none, from the pose estimator ``config.estimator``."""

    def __init__(self, config: WarpConfig) -> None:
        self.config = config
        self.parts_moved: list[int] = []  # per warped image, for diagnostics
        self._estimator: PoseEstimator | None = None
        self._poses: dict[bytes, np.ndarray] = {}  # condition image digest -> its keypoints

    def warp(
        self, condition: torch.Tensor, target_poses: np.ndarray, condition_poses: np.ndarray | None = None
    ) -> torch.Tensor:
        """The condition images re-posed to ``(B, 18, 2)`` (y, x) ``target_poses``, in the images' coordinates."""
        images = to_uint8_image(condition)
        out = []
        for i, (image, target) in enumerate(zip(images, np.asarray(target_poses))):
            source = self._estimated_pose(image) if condition_poses is None else np.asarray(condition_poses[i])
            warped, moved = self.config.warp_image(image, source, target)
            self.parts_moved.append(moved)
            out.append(to_tensor_image(warped))
        return torch.stack(out).to(condition.device)

    def estimate_poses(self, condition: torch.Tensor) -> np.ndarray:
        """``(B, 18, 2)`` (y, x) keypoints of the condition images (tensors in [-1, 1]) from the pose estimator
        ``config.estimator``; each distinct image is estimated once."""
        return np.stack([self._estimated_pose(image) for image in to_uint8_image(condition)])

    def _estimated_pose(self, image: np.ndarray) -> np.ndarray:
        key = hashlib.sha1(image.tobytes()).digest()
        if key not in self._poses:
            if self._estimator is None:
                self._estimator = EstimatorSpec(self.config.estimator).build()
            self._poses[key] = self._estimator.estimate(image).pose
        return self._poses[key]

    def close(self) -> None:
        if self._estimator is not None:
            self._estimator.close()
            self._estimator = None


def decode_pose(maps: np.ndarray, radius: float = MARKER_RADIUS) -> np.ndarray:
    """The ``(18, 2)`` pose back from disk pose maps of ``radius`` (:meth:`WarpGenerator.render_pose`'s, or PG2's
    disks): their centres; empty maps = missing."""
    pose = np.full((NUM_KEYPOINTS, 2), MISSING, np.int32)
    for j, channel in enumerate(np.asarray(maps)):
        ys, xs = np.nonzero(channel > 0.5)
        if len(ys):
            pose[j] = (_disk_centre(ys, channel.shape[0], radius), _disk_centre(xs, channel.shape[1], radius))
    return pose


def _disk_centre(coords: np.ndarray, size: int, radius: float) -> int:
    """The centre of a disk of ``radius`` along one axis from the pixels it covers, read from the edge the
    image did not cut: a mean would pull a foot at the bottom row (a cut disk) towards the middle."""
    low, high, r = int(coords.min()), int(coords.max()), int(radius)
    if low > 0:
        return low + r
    if high < size - 1:
        return high - r
    return (low + high) // 2  # cut on both sides: the image is narrower than the disk
