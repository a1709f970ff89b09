"""Landmarks of any estimator -> OpenPose-18 pixel keypoints, with the -1 rules.

MediaPipe Pose gives 33 landmarks in normalised image coordinates (x right,
y down, both in [0, 1] inside the frame) with a visibility score. OpenPose-18 is
the order every pose-transfer CSV uses. MediaPipe's LEFT/RIGHT are the person's
own sides, as OpenPose's L/R are, so no swap is needed.

The rule (the one that made ``cuhk03-market``'s keypoints):

* a landmark whose visibility is below ``visibility_threshold`` is missing;
* one whose normalised x or y lies outside [0, 1] is missing
  (``drop_outside=False`` clips it to the border instead);
* a kept one becomes ``floor(x * W), floor(y * H)``, clipped to the image;
* the neck is the midpoint of the two shoulders (in normalised coordinates,
  before flooring) when both shoulders are kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from augreid.data.keypoints import KP, MISSING, NUM_KEYPOINTS

# MediaPipe Pose landmark indices (mp.solutions.pose.PoseLandmark).
MP_NOSE, MP_LEFT_EYE, MP_RIGHT_EYE, MP_LEFT_EAR, MP_RIGHT_EAR = 0, 2, 5, 7, 8
MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER, MP_LEFT_ELBOW, MP_RIGHT_ELBOW = 11, 12, 13, 14
MP_LEFT_WRIST, MP_RIGHT_WRIST, MP_LEFT_HIP, MP_RIGHT_HIP = 15, 16, 23, 24
MP_LEFT_KNEE, MP_RIGHT_KNEE, MP_LEFT_ANKLE, MP_RIGHT_ANKLE = 25, 26, 27, 28
MEDIAPIPE_NUM_LANDMARKS = 33

# For each OpenPose-18 joint, the MediaPipe landmark it is read from; None = derived (the neck).
# fmt: off
MEDIAPIPE_TO_OPENPOSE: tuple[int | None, ...] = (
    MP_NOSE, None, MP_RIGHT_SHOULDER, MP_RIGHT_ELBOW, MP_RIGHT_WRIST, MP_LEFT_SHOULDER, MP_LEFT_ELBOW,
    MP_LEFT_WRIST, MP_RIGHT_HIP, MP_RIGHT_KNEE, MP_RIGHT_ANKLE, MP_LEFT_HIP, MP_LEFT_KNEE, MP_LEFT_ANKLE,
    MP_RIGHT_EYE, MP_LEFT_EYE, MP_RIGHT_EAR, MP_LEFT_EAR,
)
# fmt: on

NECK = KP["neck"]
SHOULDERS = (KP["Rsho"], KP["Lsho"])


def landmarks_to_pose(
    xy: np.ndarray,
    score: np.ndarray,
    shape: tuple[int, int],
    index_map: Sequence[int | None] = MEDIAPIPE_TO_OPENPOSE,
    *,
    visibility_threshold: float = 0.5,
    drop_outside: bool = True,
) -> np.ndarray:
    """OpenPose-18 ``(18, 2)`` int32 ``(y, x)`` pose from normalised landmarks.

    ``xy``: ``(N, 2)`` normalised ``(x, y)``; ``score``: ``(N,)`` visibility or
    confidence; ``shape``: ``(H, W)`` of the image; ``index_map``: landmark index
    per OpenPose-18 joint (None = the neck, derived from the shoulders).
    """
    xy = np.asarray(xy, dtype=np.float64)
    score = np.asarray(score, dtype=np.float64)
    if xy.ndim != 2 or xy.shape[1] != 2 or score.shape != (xy.shape[0],):
        raise ValueError(f"landmarks must be (N, 2) with (N,) scores, got {xy.shape} and {score.shape}")
    if len(index_map) != NUM_KEYPOINTS:
        raise ValueError(f"index_map must have {NUM_KEYPOINTS} entries, got {len(index_map)}")
    norm = np.full((NUM_KEYPOINTS, 2), np.nan)  # (x, y) per OpenPose joint, nan = missing
    for joint, index in enumerate(index_map):
        if index is None:
            continue
        x, y = xy[index]
        if not score[index] >= visibility_threshold:  # also drops a nan score
            continue
        inside = 0.0 <= x <= 1.0 and 0.0 <= y <= 1.0
        if not inside and drop_outside:
            continue
        norm[joint] = np.clip((x, y), 0.0, 1.0)
    if index_map[NECK] is None and not np.isnan(norm[list(SHOULDERS)]).any():
        norm[NECK] = norm[list(SHOULDERS)].mean(axis=0)
    return normalised_to_pixels(norm, shape)


def normalised_to_pixels(norm: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``(18, 2)`` normalised ``(x, y)`` (nan = missing) -> int32 ``(y, x)`` pixel indices."""
    h, w = shape
    pose = np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.int32)
    kept = ~np.isnan(norm).any(axis=1)
    pose[kept, 0] = np.clip(np.floor(norm[kept, 1] * h), 0, h - 1)
    pose[kept, 1] = np.clip(np.floor(norm[kept, 0] * w), 0, w - 1)
    return pose
