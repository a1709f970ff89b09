"""PCKh (MediaPipe): does an image show a person in the target pose?

The offline pose estimator of ``augreid pose`` (MediaPipe Pose, the ``[pose]``
extra) is run on each image; its OpenPose-18 joints are compared with the
target keypoints, as PATN and Deformable GAN score pose transfer with PCKh.
The figure is labelled "PCKh (MediaPipe)" everywhere: a different estimator
(OpenPose) finds different joints, so it must not be compared blindly with
OpenPose-based PCKh from papers.

Head size. OpenPose-18 has no head top, so MPII's head segment (head top to
upper neck, the length PCKh is defined on) cannot be read off a pose. It is
estimated from the target keypoints:

* ``HEAD_PER_NECK_NOSE x |neck - nose|`` (neck = midpoint of the shoulders)
  when both are present. ``HEAD_PER_NECK_NOSE = 1.4``: in adult anthropometry
  the head (vertex to chin, about 23 cm) is 1.4 times the height of the nose
  above the shoulder line (about 16 cm);
* otherwise ``HEAD_PER_NECK_NOSE x TORSO_TO_NECK_NOSE x |neck - hip centre|``
  (hip centre = midpoint of the present hips), for back views without a nose.
  ``TORSO_TO_NECK_NOSE = 1/3`` is the measured median of
  ``|neck - nose| / |neck - hip centre|``: 0.34 on the demo's training
  keypoints, 0.38 on cuhk03-market's;
* otherwise the pose has no head size and is left out (counted as
  ``images_without_head_size``).

A joint is correct when the estimate lies within ``alpha x h`` pixels
(``alpha = 0.5``, Euclidean distance) of the target joint.

Which joints count. Joints missing in the target (-1) are excluded: they enter
neither numerator nor denominator. A target joint that the estimator does not
report in the image (not detected, or no person found at all) counts as a
miss. PCKh is pooled over joints: correct joints / counted joints, over all
images. The detection rate is the share of images in which the estimator
found a person.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from augreid.data.keypoints import KP, NUM_KEYPOINTS, visible
from augreid.pose_estimation.base import EstimatorSpec

LABEL = "PCKh (MediaPipe)"
ALPHA = 0.5
HEAD_PER_NECK_NOSE = 1.4
TORSO_TO_NECK_NOSE = 1.0 / 3.0
HEAD_SIZE_DEFINITION = (
    f"head size h = {HEAD_PER_NECK_NOSE} x |neck - nose| of the target pose (neck = shoulder midpoint; a head-segment "
    f"proxy, OpenPose-18 has no head top); without nose or neck, {HEAD_PER_NECK_NOSE} x {TORSO_TO_NECK_NOSE:.3f} x "
    "|neck - hip centre|; correct when the estimated joint is within alpha*h px; "
    "joints missing in the target are excluded; undetected joints and images without a detected person are misses"
)
NOSE, NECK, RHIP, LHIP = KP["nose"], KP["neck"], KP["Rhip"], KP["Lhip"]

ImageLike = np.ndarray | str | Path


def head_sizes(targets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Head size per target pose ``(N,)`` float px (nan = none; see the module docstring) and its source ``(N,)``:
    0 = neck-nose, 1 = torso fraction, -1 = none; ``targets``: ``(N, 18, 2)`` (y, x)."""
    targets = np.asarray(targets, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 2)
    vis = visible(targets)
    size = np.full(len(targets), np.nan)
    source = np.full(len(targets), -1, dtype=np.int64)
    neck_nose = vis[:, NECK] & vis[:, NOSE]
    size[neck_nose] = HEAD_PER_NECK_NOSE * np.linalg.norm(targets[neck_nose, NECK] - targets[neck_nose, NOSE], axis=1)
    source[neck_nose] = 0
    hips = vis[:, [RHIP, LHIP]]
    torso = ~neck_nose & vis[:, NECK] & hips.any(axis=1)
    if torso.any():
        weights = hips[torso].astype(np.float64)[..., None]
        centre = (targets[torso][:, [RHIP, LHIP]] * weights).sum(1) / weights.sum(1)
        size[torso] = HEAD_PER_NECK_NOSE * TORSO_TO_NECK_NOSE * np.linalg.norm(targets[torso, NECK] - centre, axis=1)
        source[torso] = 1
    # A head of zero pixels would make every joint a miss; one pixel is the grid's resolution.
    size[source >= 0] = np.maximum(size[source >= 0], 1.0)
    return size, source


@dataclass
class PCKhResult:
    """Scores of a set of images; ``per_image`` is nan where an image has no head size or no target joint."""

    pckh: float
    detection_rate: float
    images: int
    detected: int
    joints_counted: int
    joints_correct: int
    images_without_head_size: int
    head_size_source: dict[str, int]
    per_image: np.ndarray = field(repr=False)
    alpha: float = ALPHA
    # Over the images in which a person was found: tells "takes the pose when readable" apart from
    # "not readable at all", which the plain figure mixes.
    pckh_detected: float = float("nan")

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures, labelled."""
        return {
            "label": LABEL,
            "pckh": round(self.pckh, 4) if np.isfinite(self.pckh) else None,
            "detection_rate": round(self.detection_rate, 4),
            "pckh_detected": round(self.pckh_detected, 4) if np.isfinite(self.pckh_detected) else None,
            "images": self.images,
            "detected": self.detected,
            "joints_counted": self.joints_counted,
            "joints_correct": self.joints_correct,
            "images_without_head_size": self.images_without_head_size,
            "head_size_source": self.head_size_source,
            "alpha": self.alpha,
            "head_size": HEAD_SIZE_DEFINITION,
        }


MISSING = "-"


def summary_columns(label: str = LABEL) -> list[str]:
    """Headers of :func:`summary_cells`, in the same order."""
    return [f"{label} ↑", "person detected ↑", f"{label} where detected ↑"]


def summary_cells(summary: Mapping[str, Any] | None) -> list[str]:
    """A :meth:`PCKhResult.summary` as table cells: PCKh, detection rate, PCKh where detected.

    Every report that shows pose fidelity (eval-gen's metrics.md, the run and
    fractions reports, the benchmark) goes through here, so a figure that is
    absent (no joint counted, no person found, a record older than the column)
    reads the same everywhere.
    """
    s = summary or {}
    rate = s.get("detection_rate")
    return [_score(s.get("pckh")), MISSING if rate is None else f"{100 * rate:.0f} %", _score(s.get("pckh_detected"))]


def _score(value: float | None) -> str:
    return MISSING if value is None else f"{value:.3f}"


def score_pckh(
    estimates: np.ndarray, detected: np.ndarray | Sequence[bool], targets: np.ndarray, alpha: float = ALPHA
) -> PCKhResult:
    """PCKh of estimated poses ``(N, 18, 2)`` against targets ``(N, 18, 2)``, both (y, x), -1 = missing.

    ``detected[i]``: the estimator found a person in image ``i`` (when not,
    its estimate is ignored and every target joint of it is a miss).
    """
    est = np.asarray(estimates, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 2)
    tgt = np.asarray(targets, dtype=np.float64).reshape(-1, NUM_KEYPOINTS, 2)
    found = np.asarray(detected, dtype=bool).reshape(-1)
    if not (len(est) == len(tgt) == len(found)):
        raise ValueError(f"estimates, detected and targets differ in length: {len(est)}, {len(found)}, {len(tgt)}")
    size, source = head_sizes(tgt)
    counted = visible(tgt) & (source >= 0)[:, None]
    present = visible(est) & found[:, None]
    distance = np.linalg.norm(est - tgt, axis=2)
    correct = counted & present & (distance <= alpha * np.nan_to_num(size, nan=0.0)[:, None])
    n_counted = counted.sum(axis=1)
    per_image = np.where(n_counted > 0, correct.sum(axis=1) / np.maximum(n_counted, 1), np.nan)
    total = int(n_counted.sum())
    total_found = int(n_counted[found].sum())
    return PCKhResult(
        pckh=float(correct.sum() / total) if total else float("nan"),
        detection_rate=float(found.mean()) if len(found) else 0.0,
        images=len(found),
        detected=int(found.sum()),
        joints_counted=total,
        joints_correct=int(correct.sum()),
        images_without_head_size=int((source < 0).sum()),
        head_size_source={"neck_nose": int((source == 0).sum()), "torso": int((source == 1).sum())},
        per_image=per_image,
        alpha=float(alpha),
        pckh_detected=float(correct[found].sum() / total_found) if total_found else float("nan"),
    )


def load_rgb(image: ImageLike) -> np.ndarray:
    """An ``(H, W, 3)`` uint8 RGB array from an array or an image file."""
    if isinstance(image, np.ndarray):
        return np.ascontiguousarray(image, dtype=np.uint8)
    with Image.open(image) as img:
        return np.asarray(img.convert("RGB"))


def default_estimator():
    """MediaPipe with ``augreid pose``'s defaults (the estimator that made cuhk03-market's keypoints)."""
    return EstimatorSpec("mediapipe").build()


def estimate_poses(images: Sequence[ImageLike], estimator=None) -> tuple[np.ndarray, np.ndarray]:
    """Estimated poses ``(N, 18, 2)`` int32 and person-found flags ``(N,)`` of images.

    ``estimator``: a :class:`~augreid.pose_estimation.base.PoseEstimator`
    (kept open) or None for MediaPipe (built and closed here).
    """
    own = estimator is None
    estimator = default_estimator() if own else estimator
    try:
        results = [estimator.estimate(load_rgb(image)) for image in images]
    finally:
        if own:
            estimator.close()
    poses = np.stack([r.pose for r in results]) if results else np.zeros((0, NUM_KEYPOINTS, 2), np.int32)
    return poses.astype(np.int32), np.array([r.detected for r in results], dtype=bool)


def pckh_of_images(
    images: Sequence[ImageLike], targets: np.ndarray, estimator=None, alpha: float = ALPHA
) -> PCKhResult:
    """Run the estimator on ``images`` and score them against ``targets`` (pixels of those images)."""
    targets = np.asarray(targets).reshape(-1, NUM_KEYPOINTS, 2)
    if len(images) != len(targets):
        raise ValueError(f"{len(images)} images but {len(targets)} target poses")
    poses, found = estimate_poses(images, estimator)
    return score_pckh(poses, found, targets, alpha)


def real_target_note(keypoints_from_estimator: bool | None) -> str:
    """What the real target images' score means: a ceiling only where the target keypoints are exact.

    ``None``: the keypoints were estimated, by this estimator or another one (not known here).
    """
    if keypoints_from_estimator is None:
        return (
            "keypoints from a pose estimator: about 1.0 by construction when it was MediaPipe "
            "(cuhk03-market), so not a ceiling; compare with the copy-condition baseline"
        )
    if keypoints_from_estimator:
        return (
            "target keypoints were made by this estimator: about 1.0 by construction, not a ceiling; "
            "compare with the copy-condition baseline"
        )
    return "exact keypoints: the estimator's ceiling on real images"


def pose_fidelity(
    images: Sequence[ImageLike],
    target_poses: np.ndarray,
    *,
    condition_images: Sequence[ImageLike] | None = None,
    real_target_images: Sequence[ImageLike] | None = None,
    keypoints_from_estimator: bool = False,
    estimator=None,
    alpha: float = ALPHA,
) -> dict[str, Any]:
    """PCKh (MediaPipe) of generated ``images`` against ``target_poses``, with the baselines.

    ``condition_images``: the condition image of each pair; scored against the
    same targets, it is the copy-condition baseline (a generator that ignores
    the pose). ``real_target_images``: the real image each target pose was
    taken from: the ceiling, meaningful where the keypoints are exact (the
    demo). ``keypoints_from_estimator``: the target keypoints were made by this
    very estimator (cuhk03-market), so the real-image figure is about 1.0 by
    construction; it is then reported with that note and the copy-condition
    baseline is the one to compare with.
    """
    own = estimator is None
    estimator = default_estimator() if own else estimator
    try:
        out: dict[str, Any] = {
            "label": LABEL,
            "alpha": alpha,
            "head_size": HEAD_SIZE_DEFINITION,
            "generated": pckh_of_images(images, target_poses, estimator, alpha).summary(),
        }
        if condition_images is not None:
            out["copy_condition"] = pckh_of_images(condition_images, target_poses, estimator, alpha).summary()
        if real_target_images is not None:
            real = pckh_of_images(real_target_images, target_poses, estimator, alpha).summary()
            real["note"] = real_target_note(keypoints_from_estimator)
            out["real_target"] = real
    finally:
        if own:
            estimator.close()
    return out
