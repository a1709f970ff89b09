"""PCKh (MediaPipe): the scoring on arrays, and the estimator path on demo images."""

from __future__ import annotations

import numpy as np
import pytest

from augreid.data.keypoints import KP, MISSING, NUM_KEYPOINTS
from augreid.pose_estimation.pckh import (
    HEAD_PER_NECK_NOSE,
    LABEL,
    TORSO_TO_NECK_NOSE,
    head_sizes,
    pckh_of_images,
    pose_fidelity,
    score_pckh,
    summary_cells,
    summary_columns,
)


def standing_pose(dy: int = 0, dx: int = 0) -> np.ndarray:
    """A complete upright pose in a 128x64 crop; neck-nose = 12 px: head 16.8 px, threshold 8.4 px."""
    pts = {
        "nose": (18, 32),
        "neck": (30, 32),
        "Rsho": (30, 24),
        "Relb": (46, 22),
        "Rwri": (60, 22),
        "Lsho": (30, 40),
        "Lelb": (46, 42),
        "Lwri": (60, 42),
        "Rhip": (66, 27),
        "Rkne": (88, 27),
        "Rank": (110, 27),
        "Lhip": (66, 37),
        "Lkne": (88, 37),
        "Lank": (110, 37),
        "Reye": (16, 30),
        "Leye": (16, 34),
        "Rear": (17, 28),
        "Lear": (17, 36),
    }
    pose = np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.int32)
    for name, (y, x) in pts.items():
        pose[KP[name]] = (y + dy, x + dx)
    return pose


def test_perfect_agreement_scores_one() -> None:
    target = np.stack([standing_pose(), standing_pose(dx=3)])
    result = score_pckh(target.copy(), [True, True], target)
    assert result.pckh == 1.0 and result.detection_rate == 1.0
    assert result.joints_counted == 2 * NUM_KEYPOINTS
    assert np.all(result.per_image == 1.0)


def test_head_size_is_neck_to_nose_with_a_torso_fallback() -> None:
    back_view = standing_pose()
    back_view[KP["nose"]] = MISSING
    headless = standing_pose()
    headless[[KP["neck"], KP["nose"]]] = MISSING
    size, source = head_sizes(np.stack([standing_pose(), back_view, headless]))
    assert size[0] == pytest.approx(HEAD_PER_NECK_NOSE * 12.0) and source[0] == 0
    assert (
        size[1] == pytest.approx(HEAD_PER_NECK_NOSE * TORSO_TO_NECK_NOSE * 36.0) and source[1] == 1
    )  # neck (30) to hip centre (66)
    assert np.isnan(size[2]) and source[2] == -1


def test_threshold_is_half_the_head_size() -> None:
    target = standing_pose()[None]
    inside = score_pckh(standing_pose(dy=-6, dx=5)[None], [True], target)  # 7.8 px <= 0.5 * 16.8
    outside = score_pckh(standing_pose(dx=9)[None], [True], target)  # 9 px > 8.4
    assert inside.pckh == 1.0
    assert outside.pckh == 0.0 and outside.joints_correct == 0
    assert score_pckh(standing_pose(dx=9)[None], [True], target, alpha=1.0).pckh == 1.0


def test_shifting_some_joints_beyond_threshold_counts_exactly_those() -> None:
    target = standing_pose()
    estimate = target.copy()
    estimate[[KP["Rwri"], KP["Lank"], KP["Lkne"]]] += np.array([0, 20], dtype=np.int32)
    result = score_pckh(estimate[None], [True], target[None])
    assert result.joints_correct == NUM_KEYPOINTS - 3
    assert result.pckh == pytest.approx((NUM_KEYPOINTS - 3) / NUM_KEYPOINTS)


def test_joints_missing_in_the_target_are_excluded() -> None:
    target = standing_pose()
    target[[KP["Rear"], KP["Lear"], KP["Rwri"]]] = MISSING
    estimate = standing_pose()
    estimate[[KP["Rear"], KP["Lear"], KP["Rwri"]]] = (0, 0)  # anything there is ignored
    result = score_pckh(estimate[None], [True], target[None])
    assert result.joints_counted == NUM_KEYPOINTS - 3
    assert result.pckh == 1.0


def test_undetected_joints_and_undetected_people_are_misses() -> None:
    target = np.stack([standing_pose(), standing_pose()])
    estimate = target.copy()
    estimate[0, [KP["Lwri"], KP["Lelb"]]] = MISSING  # the estimator dropped two joints
    result = score_pckh(estimate, [True, False], target)  # no person found in the second image
    assert result.joints_counted == 2 * NUM_KEYPOINTS
    assert result.joints_correct == NUM_KEYPOINTS - 2
    assert result.detection_rate == 0.5 and result.detected == 1
    assert result.per_image[1] == 0.0
    # Where a person was found: the first image only, 16 of its 18 joints.
    assert result.pckh_detected == (NUM_KEYPOINTS - 2) / NUM_KEYPOINTS
    assert result.summary()["pckh_detected"] == round((NUM_KEYPOINTS - 2) / NUM_KEYPOINTS, 4)
    assert score_pckh(estimate, [False, False], target).summary()["pckh_detected"] is None


def test_summary_cells_show_absent_figures_alike() -> None:
    target = np.stack([standing_pose(), standing_pose()])
    found = score_pckh(target.copy(), [True, False], target).summary()
    assert summary_cells(found) == ["0.500", "50 %", "1.000"]
    nobody = score_pckh(target.copy(), [False, False], target).summary()
    assert summary_cells(nobody) == ["0.000", "0 %", "-"]  # no person found: nothing "where detected"
    assert summary_cells({"pckh": 0.3}) == ["0.300", "-", "-"]  # a record older than the columns
    assert summary_cells(None) == ["-", "-", "-"]
    assert len(summary_columns()) == 3 and LABEL in summary_columns()[0]


def test_images_without_head_size_are_left_out_and_counted() -> None:
    headless = standing_pose()
    headless[[KP["neck"], KP["nose"]]] = MISSING
    result = score_pckh(np.stack([standing_pose(), headless]), [True, True], np.stack([standing_pose(), headless]))
    assert result.images_without_head_size == 1
    assert result.joints_counted == NUM_KEYPOINTS
    assert np.isnan(result.per_image[1])
    summary = result.summary()
    assert summary["label"] == LABEL and "head size" in summary["head_size"]


def test_length_mismatch_is_refused() -> None:
    with pytest.raises(ValueError):
        score_pckh(np.stack([standing_pose()] * 2), [True], np.stack([standing_pose()] * 2))


# ---------------------------------------------------------------- with MediaPipe on demo images


@pytest.fixture(scope="module")
def estimator(extras):
    extras.module("mediapipe", "[pose]")
    from augreid.pose_estimation.base import EstimatorSpec

    with EstimatorSpec("mediapipe").build() as est:
        yield est


@pytest.fixture(scope="module")
def demo_samples(demo_root):
    """Eight demo training images with complete exact keypoints, and those keypoints."""
    from PIL import Image

    from augreid.data.sources import resolve_source

    source = resolve_source(demo_root)
    poses = source.train_poses()
    names = sorted(n for n, p in poses.items() if (p[:, 0] >= 0).sum() == NUM_KEYPOINTS)[:8]
    images = [np.asarray(Image.open(source.root / "bounding_box_train" / n).convert("RGB")) for n in names]
    return images, np.stack([poses[n] for n in names])


def test_real_images_beat_blank_and_displaced_images(estimator, demo_samples) -> None:
    images, targets = demo_samples
    real = pckh_of_images(images, targets, estimator)
    blank = pckh_of_images([np.full_like(images[0], 128)] * len(images), targets, estimator)
    # The person moved 24 px down: far beyond half a head (about 8 px here).
    moved = pckh_of_images([np.roll(im, 24, axis=0) for im in images], targets, estimator)
    assert real.detected >= 4 and real.pckh > 0.3
    assert blank.detected == 0 and blank.pckh == 0.0
    assert moved.pckh < real.pckh - 0.2


def test_pose_fidelity_reports_generated_copy_and_ceiling(estimator, demo_samples) -> None:
    images, targets = demo_samples
    # "Generated" = the real images; "condition" = another identity's image in another pose.
    conditions = images[1:] + images[:1]
    out = pose_fidelity(images, targets, condition_images=conditions, real_target_images=images, estimator=estimator)
    assert out["label"] == LABEL
    assert out["generated"]["pckh"] == out["real_target"]["pckh"]
    assert "exact keypoints" in out["real_target"]["note"]
    assert out["copy_condition"]["pckh"] < out["generated"]["pckh"]
