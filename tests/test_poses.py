"""Target poses: normalisation, masked k-means, medoids, random and file modes."""

from __future__ import annotations

import numpy as np
import pytest

from augreid.data.keypoints import KP, read_keypoints_csv, write_keypoints_csv
from augreid.errors import ConfigError, KeypointError
from augreid.poses import clustered_targets, cluster_poses, file_targets, normalise_poses, random_targets
from augreid.poses.plot import plot_targets

SHAPE = (128, 64)

# A standing person in a 128x64 frame, (y, x) per OpenPose-18 joint.
STANDING = np.array(
    [
        [14, 32],
        [26, 32],
        [27, 24],
        [42, 21],
        [56, 20],
        [27, 40],
        [42, 43],
        [56, 44],
        [62, 27],
        [84, 27],
        [106, 27],
        [62, 37],
        [84, 37],
        [106, 37],
        [12, 29],
        [12, 35],
        [13, 26],
        [13, 38],
    ],
    dtype=np.int32,
)


def walking(step: float) -> np.ndarray:
    """STANDING with the legs and arms swung by ``step`` pixels (a second pose family)."""
    pose = STANDING.copy()
    for joint, dx in (("Rkne", 1), ("Rank", 2), ("Lkne", -1), ("Lank", -2), ("Rwri", -1), ("Lwri", 1)):
        pose[KP[joint], 1] += int(round(dx * step))
    return pose


def jittered(rng: np.random.Generator, base: np.ndarray, n: int, drop: float = 0.0) -> list[np.ndarray]:
    out = []
    for _ in range(n):
        pose = base + rng.integers(-1, 2, size=base.shape)
        pose = np.clip(pose, 0, [SHAPE[0] - 1, SHAPE[1] - 1]).astype(np.int32)
        for joint in (KP["Rwri"], KP["Lwri"], KP["Rank"], KP["Lank"], KP["nose"]):
            if rng.random() < drop:
                pose[joint] = -1
        out.append(pose)
    return out


@pytest.fixture(scope="module")
def train_poses() -> dict[str, np.ndarray]:
    """Two clear pose families (standing, wide stride), some joints missing, plus junk rows."""
    rng = np.random.default_rng(0)
    poses = {}
    for i, pose in enumerate(jittered(rng, STANDING, 30, drop=0.2)):
        poses[f"{1 + i % 5:04d}_c1s1_{i:06d}_00.jpg"] = pose
    for i, pose in enumerate(jittered(rng, walking(8), 20, drop=0.2)):
        poses[f"{6 + i % 5:04d}_c2s1_{100 + i:06d}_00.jpg"] = pose
    poses["0011_c1s1_000999_00.jpg"] = np.full((18, 2), -1, dtype=np.int32)  # no detection
    headless = STANDING.copy()
    headless[[KP["neck"], KP["Rsho"], KP["Lsho"]]] = -1
    poses["0011_c1s1_000998_00.jpg"] = headless  # cannot be normalised
    return poses


# ---------------------------------------------------------------- normalisation


def test_normalisation_is_invariant_to_translation_and_scale() -> None:
    rng = np.random.default_rng(1)
    poses = np.stack(jittered(rng, STANDING // 2, 10, drop=0.3))  # half size: room to scale and shift
    moved = np.where(poses >= 0, poses * 2 + np.array([7, 3]), -1)
    a, b = normalise_poses(poses), normalise_poses(moved)
    assert a.valid.all() and b.valid.all()
    np.testing.assert_array_equal(a.mask, b.mask)
    np.testing.assert_allclose(a.coords[a.mask], b.coords[b.mask], atol=1e-9)
    np.testing.assert_allclose(b.scale, 2 * a.scale)
    # ...and not invariant to a change of shape.
    bent = poses.copy()
    bent[:, KP["Rank"], 1] += 6
    assert not np.allclose(normalise_poses(bent).coords[:, KP["Rank"]], a.coords[:, KP["Rank"]], equal_nan=True)


def test_normalisation_centres_torso_and_masks_missing_joints() -> None:
    pose = STANDING.copy()
    pose[KP["Rwri"]] = -1
    norm = normalise_poses(pose)
    neck, hips = STANDING[KP["neck"]], (STANDING[KP["Rhip"]] + STANDING[KP["Lhip"]]) / 2
    np.testing.assert_allclose(norm.centre[0], (neck + hips) / 2)
    assert norm.scale[0] == pytest.approx(np.linalg.norm(neck - hips))
    # torso length is 1 after normalisation
    assert np.linalg.norm(
        norm.coords[0, KP["neck"]] - (norm.coords[0, KP["Rhip"]] + norm.coords[0, KP["Lhip"]]) / 2
    ) == pytest.approx(1.0)
    assert not norm.mask[0, KP["Rwri"]] and np.isnan(norm.coords[0, KP["Rwri"]]).all()  # missing is NaN, not 0


def test_neck_falls_back_to_shoulders_and_no_hips_is_invalid() -> None:
    no_neck = STANDING.copy()
    no_neck[KP["neck"]] = -1
    assert normalise_poses(no_neck).valid[0]
    no_hips = STANDING.copy()
    no_hips[[KP["Rhip"], KP["Lhip"]]] = -1
    assert not normalise_poses(no_hips).valid[0]
    assert not normalise_poses(np.full((18, 2), -1)).valid[0]
    assert not normalise_poses(STANDING, min_torso=500).valid[0]


# ---------------------------------------------------------------- clustering


def test_masked_kmeans_separates_families_despite_missing_joints() -> None:
    rng = np.random.default_rng(2)
    stand = jittered(rng, STANDING, 15, drop=0.5)
    walk = jittered(rng, walking(10), 15, drop=0.5)
    norm = normalise_poses(np.stack(stand + walk))
    clusters = cluster_poses(norm.coords, norm.mask, 2, seed=0)
    assert len(set(clusters.labels[:15])) == 1 and len(set(clusters.labels[15:])) == 1
    assert clusters.labels[0] != clusters.labels[15]
    assert sorted(clusters.sizes.tolist()) == [15, 15]
    assert np.isfinite(clusters.completed).all()  # missing joints imputed from centres


def test_clustering_is_deterministic_for_a_seed(train_poses) -> None:
    a = clustered_targets(train_poses, 3, SHAPE, seed=5, min_target_joints=12)
    b = clustered_targets(train_poses, 3, SHAPE, seed=5, min_target_joints=12)
    np.testing.assert_array_equal(a.poses, b.poses)
    assert a.sources == b.sources and a.sizes == b.sizes


def test_medoids_are_real_training_poses(train_poses) -> None:
    targets = clustered_targets(train_poses, 2, SHAPE, seed=0, min_target_joints=12)
    assert len(targets) == 2 and targets.skipped == 0
    for pose, source in zip(targets.poses, targets.sources):
        assert source in train_poses
        np.testing.assert_array_equal(pose, train_poses[source])
    # one medoid per family, the biggest cluster first
    assert targets.sizes == [30, 20]
    assert targets.sources[0].split("_")[1].startswith("c1") and targets.sources[1].split("_")[1].startswith("c2")
    assert targets.unusable == 2  # the empty row and the headless pose
    assert [len(e) for e in targets.examples] == [5, 5]


def test_clusters_without_renderable_member_are_skipped_and_counted(train_poses) -> None:
    # Asking for every joint: poses with any joint dropped cannot be targets.
    incomplete = {n: p for n, p in train_poses.items() if (p < 0).any()}
    targets = clustered_targets(incomplete, 2, SHAPE, seed=0, min_cluster_joints=8, min_target_joints=18)
    assert len(targets) == 0 and targets.skipped == 2


def test_too_few_poses_is_a_clear_error(train_poses) -> None:
    with pytest.raises(ConfigError, match="lower --num-poses"):
        clustered_targets(train_poses, 60, SHAPE)
    with pytest.raises(ConfigError, match="lower --num-poses"):
        random_targets(train_poses, 60, SHAPE, min_target_joints=12)


# ---------------------------------------------------------------- random and file modes


def test_random_targets_are_renderable_training_poses(train_poses) -> None:
    a = random_targets(train_poses, 4, SHAPE, seed=3, min_target_joints=16)
    b = random_targets(train_poses, 4, SHAPE, seed=3, min_target_joints=16)
    assert a.sources == b.sources and len(set(a.sources)) == 4
    for pose, source in zip(a.poses, a.sources):
        np.testing.assert_array_equal(pose, train_poses[source])
        assert (pose >= 0).all(axis=1).sum() >= 16


def test_file_targets_skip_incomplete_and_out_of_frame(tmp_path) -> None:
    off_frame = STANDING.copy()
    off_frame[:, 0] += 100  # legs fall below the 128-pixel frame, hips too
    table = {"a_full": STANDING, "b_walk": walking(6), "c_empty": np.full((18, 2), -1), "d_low": off_frame}
    path = write_keypoints_csv(tmp_path / "mine.csv", table)
    targets = file_targets(path, SHAPE, min_target_joints=14)
    assert targets.sources == ["a_full", "b_walk"]
    assert targets.skipped == 2 and targets.considered == 4
    np.testing.assert_array_equal(targets.poses[0], STANDING)
    with pytest.raises(KeypointError, match="complete enough"):
        file_targets(write_keypoints_csv(tmp_path / "bad.csv", {"x": np.full((18, 2), -1)}), SHAPE)


def test_target_picture_is_written(tmp_path, train_poses) -> None:
    targets = clustered_targets(train_poses, 2, SHAPE, seed=0, min_target_joints=12)
    path = plot_targets(targets, tmp_path / "targets.png")
    from PIL import Image

    with Image.open(path) as img:
        assert img.width >= 200 and img.height >= 200  # two panels of a tall frame


def test_demo_training_poses_cluster(demo_root) -> None:
    """On the demo dataset's training CSV: K targets, each a real training pose."""
    from augreid.data.sources import resolve_source

    poses = read_keypoints_csv(resolve_source(demo_root).train_keypoints)
    targets = clustered_targets(poses, 8, SHAPE, seed=0)
    assert len(targets) + targets.skipped == 8 and len(targets) >= 6
    assert sum(targets.sizes) <= len(poses)
    for pose, source in zip(targets.poses, targets.sources):
        np.testing.assert_array_equal(pose, poses[source])
