"""The training-free ``warp`` generator: its geometry, its plug-in and the generator interface."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from augreid.data.keypoints import KP, MISSING, NUM_KEYPOINTS
from augreid.errors import ConfigError
from augreid.pose_estimation import base as estimators
from augreid.pose_estimation.base import PoseEstimate, PoseEstimator
from generators.base import Generator, generator_plugin, load_generator, to_tensor_image, to_uint8_image
from generators.common.parts import PartWidths, body_parts, paste_parts, segment_map, similarity, warp_person
from generators.common.warping import decode_pose
from generators.warp.plugin import load_config

H, W = 128, 64


def person_pose(arm_angle: float = 0.0) -> np.ndarray:
    """A standing person, (y, x); the left forearm turned by ``arm_angle`` radians about the elbow."""
    pose = np.full((NUM_KEYPOINTS, 2), MISSING, np.int32)
    joints = {
        "nose": (14, 32), "Reye": (12, 30), "Leye": (12, 34), "neck": (26, 32),
        "Rsho": (28, 22), "Lsho": (28, 42), "Relb": (46, 20), "Lelb": (46, 44),
        "Rhip": (66, 26), "Lhip": (66, 38), "Rkne": (90, 26), "Lkne": (90, 38), "Rank": (114, 26), "Lank": (114, 38),
    }  # fmt: skip
    for name, yx in joints.items():
        pose[KP[name]] = yx
    elbow = np.array(joints["Lelb"], np.float64)
    down = np.array([18.0, 0.0])
    c, s = np.cos(arm_angle), np.sin(arm_angle)
    pose[KP["Lwri"]] = np.round(elbow + [c * down[0] - s * down[1], s * down[0] + c * down[1]])
    pose[KP["Rwri"]] = (64, 20)
    return pose


def picture(pose: np.ndarray) -> np.ndarray:
    """Grey background, a blue body and a red left forearm along ``pose``."""
    import cv2

    image = np.full((H, W, 3), 128, np.uint8)
    xy = lambda j: (int(pose[KP[j], 1]), int(pose[KP[j], 0]))  # noqa: E731
    cv2.rectangle(image, (24, 26), (40, 66), (40, 40, 200), -1)
    cv2.line(image, xy("Lelb"), xy("Lwri"), (220, 20, 20), 5)
    return image


def test_similarity_recovers_rotation_scale_and_shift() -> None:
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 60, (6, 2))
    angle, scale, shift = 0.4, 1.3, np.array([5.0, -3.0])
    rot = np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    dst = scale * src @ rot.T + shift
    m = similarity(src, dst)
    np.testing.assert_allclose(src @ m[:, :2].T + m[:, 2], dst, atol=1e-6)
    same = np.repeat(src[:1], 3, axis=0)  # no spread to fit a rotation to: a plain shift
    np.testing.assert_allclose(similarity(same, same + [4.0, -2.0]), [[1, 0, 4], [0, 1, -2]])


def test_segment_map_takes_the_segment_onto_the_target_and_keeps_the_width_scale() -> None:
    a_s, b_s, a_t, b_t = np.array([10.0, 10]), np.array([10.0, 30]), np.array([20.0, 40]), np.array([50.0, 40])
    m = segment_map(a_s, b_s, a_t, b_t, across=1.5)
    apply = lambda p: m[:, :2] @ p + m[:, 2]  # noqa: E731
    np.testing.assert_allclose(apply(a_s), a_t, atol=1e-9)
    np.testing.assert_allclose(apply(b_s), b_t, atol=1e-9)
    offset = apply(a_s + np.array([2.0, 0])) - a_t  # 2 px across the source limb
    assert np.isclose(np.linalg.norm(offset), 3.0)  # 2 px x across, not x the length ratio (1.5 either way here)
    m2 = segment_map(a_s, b_s, a_t, a_t + (b_t - a_t) / 3, across=1.0)  # foreshortened to half the length
    assert np.isclose(np.linalg.norm(m2[:, :2] @ np.array([2.0, 0])), 2.0)


def test_the_same_pose_gives_the_image_back() -> None:
    pose = person_pose()
    image = picture(pose)
    out, moved = warp_person(image, pose, pose, inpaint=False)
    assert moved > 5
    assert np.abs(out.astype(int) - image.astype(int)).max() <= 1


def test_a_turned_forearm_carries_its_pixels_to_the_target() -> None:
    # The left forearm, held out sideways (clear of every other part), comes down along the body.
    source, target = person_pose(np.pi / 2), person_pose(0.0)
    out, _ = warp_person(picture(source), source, target)
    red = (out[..., 0] > 150) & (out[..., 1] < 90)
    wrist_t, wrist_s = target[KP["Lwri"]], source[KP["Lwri"]]
    near = lambda p: red[max(p[0] - 3, 0) : p[0] + 4, max(p[1] - 3, 0) : p[1] + 4].any()  # noqa: E731
    assert near(wrist_t), "the forearm's colour should be at the target wrist"
    assert not near(wrist_s), "and gone (inpainted) from where the source wrist was"


def test_pasted_parts_land_where_their_maps_say_and_later_parts_cover_earlier_ones() -> None:
    image = np.zeros((H, W, 3), np.uint8)
    image[10:20, 10:20] = (255, 0, 0)
    image[40:50, 10:20] = (0, 255, 0)
    red, green = np.zeros((H, W), np.uint8), np.zeros((H, W), np.uint8)
    red[10:20, 10:20], green[40:50, 10:20] = 255, 255
    shift = lambda dx, dy: np.array([[1.0, 0.0, dx], [0.0, 1.0, dy]])  # noqa: E731
    canvas = np.full((H, W, 3), 50, np.uint8)
    # red moves down by 60 px, green by 30 px onto the same square: green, pasted last, wins.
    out = paste_parts(canvas, image, [(red, shift(0, 60)), (green, shift(0, 30))], feather=0.0)
    assert (out[70:80, 10:20] == (0, 255, 0)).all()
    assert (out[10:20, 10:20] == 50).all() and (out[40:50, 10:20] == 50).all(), "the canvas stays where nothing lands"
    soft = paste_parts(canvas, image, [(red, shift(0, 60))], feather=1.0)
    edge = soft[75, 19, 0]  # the last column inside the square: half part, half canvas
    assert 50 < edge < 255, "a feathered edge blends the part into the canvas"
    assert (soft[74:76, 14:16] == (255, 0, 0)).all(), "while the part's inside stays the part"


def test_parts_exist_only_where_both_poses_have_the_joints() -> None:
    source, target = person_pose(), person_pose()
    target[KP["Lwri"]] = MISSING
    names = [p.name for p in body_parts(source, target, (H, W), PartWidths())]
    assert "Lelb-Lwri" not in names and "Relb-Rwri" in names and names[0] == "torso"
    headless = source.copy()
    headless[[KP["neck"], KP["Rhip"], KP["Lhip"]]] = MISSING  # no torso: the scale is unknown
    image = picture(source)
    out, moved = warp_person(image, headless, target)
    assert moved == 0 and np.array_equal(out, image)


# ---------------------------------------------------------------- the plug-in


class PoseOfPicture(PoseEstimator):
    """A test estimator: the condition image is always ``person_pose()``'s picture."""

    name = "test-person"
    calls = 0

    def estimate(self, image: np.ndarray) -> PoseEstimate:
        type(self).calls += 1
        return PoseEstimate(person_pose(), detected=True)


@pytest.fixture
def warp_checkpoint(tmp_path, monkeypatch, demo_root):
    monkeypatch.setitem(estimators._REGISTRY, "test-person", PoseOfPicture)
    monkeypatch.setattr(PoseOfPicture, "calls", 0)
    run = generator_plugin("warp").train("default", {"estimator": "test-person"}, demo_root, out=tmp_path / "gen")
    assert run.finished and run.step == 0
    return run.checkpoint


def test_training_writes_a_checkpoint_that_loads_as_a_generator(warp_checkpoint) -> None:
    meta = json.loads(warp_checkpoint.read_text())
    assert meta["generator"] == "warp" and meta["config"]["estimator"] == "test-person" and meta["dataset_fingerprint"]
    gen = load_generator(warp_checkpoint.parent)
    assert isinstance(gen, Generator) and gen.output_names == ("warp",)
    assert gen.provenance()["name"] == "warp" and len(gen.checkpoint_hash) == 64


def test_generate_poses_the_condition_and_estimates_each_condition_once(warp_checkpoint) -> None:
    gen = load_generator(warp_checkpoint)
    source, target = person_pose(0.0), person_pose(np.pi / 2)
    condition = torch.stack([to_tensor_image(picture(source))] * 3)
    maps = torch.stack([torch.from_numpy(gen.render_pose(target))] * 3)
    out = to_uint8_image(gen.generate(condition, maps))
    expected, _ = warp_person(picture(source), source, target)
    assert np.abs(out[0].astype(int) - expected.astype(int)).max() <= 1
    assert PoseOfPicture.calls == 1  # the same condition image three times: estimated once
    with pytest.raises(ValueError, match="target_maps"):
        gen.generate(condition, maps[:, :5])


def test_given_condition_keypoints_are_used_and_nothing_is_estimated(warp_checkpoint) -> None:
    gen = load_generator(warp_checkpoint)
    source, target = person_pose(np.pi / 4), person_pose(np.pi / 2)  # the estimator would say person_pose(0)
    condition = torch.stack([to_tensor_image(picture(source))] * 2)
    maps = torch.stack([torch.from_numpy(gen.render_pose(target))] * 2)
    out = to_uint8_image(gen.generate(condition, maps, condition_poses=np.stack([source, source])))
    expected, _ = warp_person(picture(source), source, target)
    assert np.abs(out[1].astype(int) - expected.astype(int)).max() <= 1
    assert PoseOfPicture.calls == 0
    with pytest.raises(ValueError, match="condition_poses"):
        gen.generate(condition, maps, condition_poses=source[None])


def test_render_and_decode_round_trip_with_missing_joints_and_scaling(warp_checkpoint) -> None:
    gen = load_generator(warp_checkpoint)
    pose = person_pose()
    pose[KP["Lear"]] = MISSING
    np.testing.assert_array_equal(decode_pose(gen.render_pose(pose)), pose)
    doubled = np.where(pose >= 0, pose * 2, MISSING)
    np.testing.assert_array_equal(decode_pose(gen.render_pose(doubled, source_size=(2 * H, 2 * W))), pose)


def test_joints_at_the_image_border_decode_to_where_they_were_drawn(warp_checkpoint) -> None:
    """A disk the border cuts (a foot on the bottom row) still gives back its own centre, not its cut centroid."""
    gen = load_generator(warp_checkpoint)
    pose = person_pose()
    pose[KP["Rank"]], pose[KP["Lank"]] = (H - 1, 3), (H - 2, W - 1)
    pose[KP["nose"]] = (0, 0)
    np.testing.assert_array_equal(decode_pose(gen.render_pose(pose)), pose)


def test_bad_settings_are_reported_together() -> None:
    with pytest.raises(ConfigError) as err:
        load_config("default", {"widths.arm": 5.0, "widths.feather": -1.0, "colour": "red"})
    text = str(err.value)
    assert "widths.arm" in text and "feather" in text and "colour" in text
    with pytest.raises(ConfigError, match="unknown warp preset"):
        load_config("no-such-preset")
