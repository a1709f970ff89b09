"""The MediaPipe estimator itself (the `pose` extra): landmark names, detections, the shipped cuhk03 keypoints, workers."""

from __future__ import annotations


import numpy as np
import pytest

from augreid.data.keypoints import KP, MISSING
from augreid.pose_estimation.base import EstimatorSpec, MissingExtraError
from augreid.pose_estimation.mapping import MEDIAPIPE_NUM_LANDMARKS, MEDIAPIPE_TO_OPENPOSE
from augreid.pose_estimation.report import compare_keypoints
from augreid.pose_estimation.run import estimate_dataset

H, W = 128, 64


@pytest.fixture(scope="module")
def mediapipe_estimator(extras):
    extras.module("mediapipe", "[pose]")
    with EstimatorSpec("mediapipe").build() as estimator:
        yield estimator


def test_index_map_matches_mediapipe_landmark_names(mediapipe_estimator):
    import mediapipe as mp

    lm = mp.solutions.pose.PoseLandmark
    assert len(lm) == MEDIAPIPE_NUM_LANDMARKS
    names = {
        "nose": lm.NOSE,
        "Rsho": lm.RIGHT_SHOULDER,
        "Relb": lm.RIGHT_ELBOW,
        "Rwri": lm.RIGHT_WRIST,
        "Lsho": lm.LEFT_SHOULDER,
        "Lelb": lm.LEFT_ELBOW,
        "Lwri": lm.LEFT_WRIST,
        "Rhip": lm.RIGHT_HIP,
        "Rkne": lm.RIGHT_KNEE,
        "Rank": lm.RIGHT_ANKLE,
        "Lhip": lm.LEFT_HIP,
        "Lkne": lm.LEFT_KNEE,
        "Lank": lm.LEFT_ANKLE,
        "Reye": lm.RIGHT_EYE,
        "Leye": lm.LEFT_EYE,
        "Rear": lm.RIGHT_EAR,
        "Lear": lm.LEFT_EAR,
    }
    for joint, landmark in names.items():
        assert MEDIAPIPE_TO_OPENPOSE[KP[joint]] == int(landmark), joint
    assert MEDIAPIPE_TO_OPENPOSE[KP["neck"]] is None


def test_mediapipe_finds_nobody_in_a_blank_image(mediapipe_estimator):
    result = mediapipe_estimator.estimate(np.full((H, W, 3), 128, np.uint8))
    assert result.detected is False and (result.pose == MISSING).all()


def test_mediapipe_lands_near_the_demo_joints(mediapipe_estimator, demo_root):
    from augreid.data import load_market, read_image, read_keypoints_csv

    dataset = load_market(demo_root)
    truth = read_keypoints_csv(next(demo_root.glob("*annotation-test.csv")))
    records = [r for r in dataset.query if r.pid > 0][:12]
    ours = {}
    for record in records:
        result = mediapipe_estimator.estimate(np.asarray(read_image(record.path)))
        assert ((result.pose == MISSING) | ((result.pose >= 0) & (result.pose < (H, W)))).all()
        ours[record.name] = result.pose
    assert (
        compare_keypoints(ours, truth)["rows_with_joints"]["ours"] >= 6
    )  # drawn people are people to MediaPipe, mostly

    # ... and the joints land near the ones they were drawn around. MediaPipe takes some back
    # views for front views (left and right exchanged, see bench/results/pose_demo.md), so each
    # row is compared as it is or mirrored, whichever is closer.
    from augreid.data.keypoints import FLIP_ORDER

    def distance(pose, name):
        return compare_keypoints({name: pose}, truth)["mean_joint_distance_px"] or 0.0

    closest = {n: min((p, p[list(FLIP_ORDER)]), key=lambda q: distance(q, n)) for n, p in ours.items()}
    assert compare_keypoints(closest, truth)["mean_joint_distance_px"] < 7


@pytest.mark.shared_data
def test_reproduces_the_shipped_cuhk03_keypoints(mediapipe_estimator, cuhk03_root):
    """cuhk03-market's CSVs were made with the same estimator and mapping: rows must be identical."""
    from augreid.data import read_image, read_keypoints_csv

    reference = read_keypoints_csv(cuhk03_root / "cuhk03-annotation-test.csv")
    query = cuhk03_root / "Market-1501-v15.09.15" / "query"
    names = sorted(p.name for p in query.glob("*.jpg"))[:16]
    for name in names:
        result = mediapipe_estimator.estimate(np.asarray(read_image(query / name)))
        np.testing.assert_array_equal(result.pose, reference[name], err_msg=name)


def test_mediapipe_version_is_checked(mediapipe_estimator, monkeypatch):
    import mediapipe

    from augreid.pose_estimation.mediapipe_estimator import MediaPipeEstimator

    monkeypatch.setattr(mediapipe, "__version__", "0.10.22")
    with pytest.raises(MissingExtraError, match="0.10.21"):
        MediaPipeEstimator.check_available()


@pytest.mark.slow
def test_worker_processes_give_the_same_csv(mediapipe_estimator, demo_root, tmp_path):
    import shutil

    small = tmp_path / "small" / "Market-1501-v15.09.15"
    for split, count in (("bounding_box_train", 6), ("query", 4), ("bounding_box_test", 4)):
        (small / split).mkdir(parents=True)
        for path in sorted((demo_root / "Market-1501-v15.09.15" / split).glob("0*.jpg"))[:count]:
            shutil.copy(path, small / split / path.name)
    one = estimate_dataset(small, tmp_path / "one", show_progress=False)
    two = estimate_dataset(small, tmp_path / "two", workers=2, show_progress=False)
    for kind in ("train", "test"):
        csv = f"pose-annotation-{kind}.csv"
        assert (tmp_path / "one" / csv).read_bytes() == (tmp_path / "two" / csv).read_bytes()
    assert one.detected == two.detected
