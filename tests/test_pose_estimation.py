"""`augreid pose`: landmark mapping, the -1 rules, resumable CSV output, report, missing extra.

Most tests use a scripted estimator registered under a test name, so they run
without MediaPipe; the ones that run MediaPipe itself are in test_mediapipe.py.
"""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from augreid.cli import app
from augreid.data.keypoints import KP, MISSING, NUM_KEYPOINTS, read_keypoints_csv, write_keypoints_csv
from augreid.errors import ConfigError
from augreid.pose_estimation import base
from augreid.pose_estimation.base import EstimatorSpec, PoseEstimate, PoseEstimator
from augreid.pose_estimation.mapping import MEDIAPIPE_NUM_LANDMARKS, MEDIAPIPE_TO_OPENPOSE, landmarks_to_pose
from augreid.pose_estimation.report import compare_keypoints, contact_sheet, pose_report
from augreid.pose_estimation.run import estimate_dataset, estimate_images, parse_splits

H, W = 128, 64


# ---------------------------------------------------------------- mapping and the -1 rules


def _landmarks(seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """33 landmarks at distinct in-frame positions, all clearly visible."""
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0.05, 0.95, size=(MEDIAPIPE_NUM_LANDMARKS, 2))
    return xy, np.full(MEDIAPIPE_NUM_LANDMARKS, 0.9)


def test_mapping_reads_the_persons_own_sides_and_derives_the_neck():
    xy, score = _landmarks()
    pose = landmarks_to_pose(xy, score, (H, W))
    assert pose.shape == (NUM_KEYPOINTS, 2) and pose.dtype == np.int32
    expected_source = {
        "nose": 0,
        "Reye": 5,
        "Leye": 2,
        "Rear": 8,
        "Lear": 7,
        "Rsho": 12,
        "Lsho": 11,
        "Relb": 14,
        "Lelb": 13,
        "Rwri": 16,
        "Lwri": 15,
        "Rhip": 24,
        "Lhip": 23,
        "Rkne": 26,
        "Lkne": 25,
        "Rank": 28,
        "Lank": 27,
    }
    for joint, index in expected_source.items():
        x, y = xy[index]
        assert tuple(pose[KP[joint]]) == (math.floor(y * H), math.floor(x * W)), joint
    mid = (xy[11] + xy[12]) / 2  # midpoint before flooring, not the mean of floored shoulders
    assert tuple(pose[KP["neck"]]) == (math.floor(mid[1] * H), math.floor(mid[0] * W))


def test_mapping_drops_low_visibility_at_the_given_threshold():
    xy, score = _landmarks(1)
    score[16] = 0.49  # right wrist
    score[14] = 0.5  # right elbow: exactly at the threshold is kept
    score[0] = np.nan  # nose
    pose = landmarks_to_pose(xy, score, (H, W))
    assert (pose[KP["Rwri"]] == MISSING).all()
    assert (pose[KP["nose"]] == MISSING).all()
    assert (pose[KP["Relb"]] >= 0).all()
    stricter = landmarks_to_pose(xy, score, (H, W), visibility_threshold=0.8)
    assert (stricter[KP["Relb"]] == MISSING).all() and (stricter[KP["Rsho"]] >= 0).all()


def test_mapping_out_of_frame_is_missing_or_clipped():
    xy, score = _landmarks(2)
    xy[28] = (1.02, 0.5)  # right ankle right of the frame
    xy[27] = (0.5, -0.01)  # left ankle above it
    xy[26] = (1.0, 1.0)  # right knee exactly on the far border: inside, clipped to the last pixel
    xy[25] = (0.0, 0.0)
    pose = landmarks_to_pose(xy, score, (H, W))
    assert (pose[KP["Rank"]] == MISSING).all() and (pose[KP["Lank"]] == MISSING).all()
    assert tuple(pose[KP["Rkne"]]) == (H - 1, W - 1)
    assert tuple(pose[KP["Lkne"]]) == (0, 0)
    clipped = landmarks_to_pose(xy, score, (H, W), drop_outside=False)
    assert tuple(clipped[KP["Rank"]]) == (math.floor(0.5 * H), W - 1)
    assert tuple(clipped[KP["Lank"]]) == (0, math.floor(0.5 * W))


def test_neck_needs_both_shoulders():
    xy, score = _landmarks(3)
    score[11] = 0.1  # left shoulder dropped
    pose = landmarks_to_pose(xy, score, (H, W))
    assert (pose[KP["Lsho"]] == MISSING).all() and (pose[KP["neck"]] == MISSING).all()
    assert (pose[KP["Rsho"]] >= 0).all()


def test_mapping_rejects_malformed_input():
    with pytest.raises(ValueError):
        landmarks_to_pose(np.zeros((33, 3)), np.zeros(33), (H, W))
    with pytest.raises(ValueError):
        landmarks_to_pose(np.zeros((33, 2)), np.zeros(33), (H, W), index_map=MEDIAPIPE_TO_OPENPOSE[:17])


# ---------------------------------------------------------------- a scripted estimator and a tiny dataset


class ScriptedEstimator(PoseEstimator):
    """Pose from the image's brightness: every joint at a distinct row, x = brightness % W.

    Dark images (mean < 40) are 'no person'. ``fail_after`` simulates an interruption.
    """

    name = "scripted"
    calls = 0
    fail_after: int | None = None

    def __init__(self, **options):
        self.options = options

    def estimate(self, image: np.ndarray) -> PoseEstimate:
        cls = type(self)
        if cls.fail_after is not None and cls.calls >= cls.fail_after:
            raise KeyboardInterrupt
        cls.calls += 1
        brightness = int(image.mean())
        return PoseEstimate(self.pose_for(brightness, image.shape[1]), detected=brightness >= 40)

    @staticmethod
    def pose_for(brightness: int, width: int = W) -> np.ndarray:
        pose = np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.int32)
        if brightness >= 40:
            pose[:, 0] = np.arange(NUM_KEYPOINTS) * 7
            pose[:, 1] = brightness % width
            pose[KP["Lwri"]] = MISSING
        return pose


@pytest.fixture
def scripted(monkeypatch):
    monkeypatch.setitem(base._REGISTRY, "scripted", ScriptedEstimator)
    monkeypatch.setattr(ScriptedEstimator, "calls", 0)
    monkeypatch.setattr(ScriptedEstimator, "fail_after", None)
    return EstimatorSpec("scripted", {"visibility_threshold": 0.5})


def _expected(brightness: int) -> np.ndarray:
    return ScriptedEstimator.pose_for(brightness)


# name -> brightness; 0003_c1s1_000301_00.jpg is dark (no person).
TRAIN_IMAGES = {
    "0001_c1s1_000101_00.jpg": 60,
    "0001_c2s1_000102_00.jpg": 70,
    "0002_c1s1_000201_00.jpg": 80,
    "0002_c2s1_000202_00.jpg": 90,
    "0003_c1s1_000301_00.jpg": 10,
    "0003_c2s1_000302_00.jpg": 100,
}
QUERY_IMAGES = {"0004_c1s1_000401_00.jpg": 110, "0005_c1s1_000501_00.jpg": 120}
GALLERY_IMAGES = {"0004_c2s1_000402_00.jpg": 130, "0005_c2s1_000502_00.jpg": 140, "0000_c1s1_000001_00.jpg": 150}


@pytest.fixture
def tiny_market(tmp_path: Path) -> Path:
    from PIL import Image

    root = tmp_path / "data"
    for split, images in (
        ("bounding_box_train", TRAIN_IMAGES),
        ("query", QUERY_IMAGES),
        ("bounding_box_test", GALLERY_IMAGES),
    ):
        folder = root / "Market-1501-v15.09.15" / split
        folder.mkdir(parents=True)
        for name, value in images.items():
            # PNG keeps the brightness exact; the names say .jpg as Market's do, PIL reads by content.
            Image.fromarray(np.full((H, W, 3), value, np.uint8)).save(folder / name, format="PNG")
    return root


def _all_expected() -> dict[str, np.ndarray]:
    return {n: _expected(v) for n, v in {**TRAIN_IMAGES, **QUERY_IMAGES, **GALLERY_IMAGES}.items()}


# ---------------------------------------------------------------- run: CSVs, resume, splits


def test_run_writes_both_csvs_beside_the_dataset(tiny_market, scripted):
    run = estimate_dataset(tiny_market, spec=scripted, show_progress=False)
    assert run.out_dir == tiny_market  # beside Market-1501-v15.09.15, where find_keypoint_csvs looks
    train = read_keypoints_csv(tiny_market / "pose-annotation-train.csv")
    test = read_keypoints_csv(tiny_market / "pose-annotation-test.csv")
    assert set(train) == set(TRAIN_IMAGES)
    assert set(test) == set(QUERY_IMAGES) | set(GALLERY_IMAGES)
    expected = _all_expected()
    for name, pose in {**train, **test}.items():
        np.testing.assert_array_equal(pose, expected[name])
    assert (train["0003_c1s1_000301_00.jpg"] == MISSING).all()
    assert run.detected["0003_c1s1_000301_00.jpg"] is False
    assert run.estimated == len(expected) and ScriptedEstimator.calls == len(expected)
    assert not list(tiny_market.glob(".*progress*"))  # progress removed once the CSV exists
    record = json.loads((tiny_market / "pose-run.json").read_text())
    assert record["estimator"] == {"name": "scripted", "options": {"visibility_threshold": 0.5}}
    assert record["rows"] == {"train": 6, "test": 5}

    from augreid.data.sources import resolve_source

    source = resolve_source(tiny_market)  # the rest of augreid finds the new CSVs by itself
    assert source.train_keypoints == tiny_market / "pose-annotation-train.csv"
    assert set(source.test_poses()) == set(test)

    again = estimate_dataset(tiny_market, spec=scripted, show_progress=False)
    assert again.estimated == 0 and again.kept == len(expected)  # complete CSVs: nothing to do


def test_interrupted_run_leaves_no_csv_and_resumes(tiny_market, scripted, tmp_path):
    out = tmp_path / "out"
    ScriptedEstimator.fail_after = 4
    with pytest.raises(KeyboardInterrupt):
        estimate_dataset(tiny_market, out, splits=["train"], spec=scripted, show_progress=False)
    assert not (out / "pose-annotation-train.csv").exists()  # never a half CSV
    progress = out / ".pose-annotation-train.csv.progress.jsonl"
    assert len(progress.read_text().splitlines()) == 1 + 4  # header + the finished images

    ScriptedEstimator.fail_after = None
    ScriptedEstimator.calls = 0
    run = estimate_dataset(tiny_market, out, splits=["train"], spec=scripted, show_progress=False)
    assert ScriptedEstimator.calls == len(TRAIN_IMAGES) - 4  # only what was left
    assert run.resumed == 4 and run.estimated == len(TRAIN_IMAGES) - 4
    table = read_keypoints_csv(out / "pose-annotation-train.csv")
    expected = _all_expected()
    assert set(table) == set(TRAIN_IMAGES)
    for name, pose in table.items():
        np.testing.assert_array_equal(pose, expected[name])
    assert not progress.exists()
    assert run.detected == {n: v >= 40 for n, v in TRAIN_IMAGES.items()}  # resumed rows keep their flag


def test_resume_survives_a_line_cut_by_a_crash(tmp_path, scripted, tiny_market):
    items = [(n, tiny_market / "Market-1501-v15.09.15" / "bounding_box_train" / n) for n in sorted(TRAIN_IMAGES)]
    progress = tmp_path / "p.jsonl"
    ScriptedEstimator.fail_after = 3
    with pytest.raises(KeyboardInterrupt):
        estimate_images(items, scripted, progress, show_progress=False)
    progress.write_text(progress.read_text() + '{"name": "0002_c2s1_000202_00.jpg", "y": [1, 2')  # cut mid-line
    ScriptedEstimator.fail_after = None
    done, resumed = estimate_images(items, scripted, progress, show_progress=False)
    assert resumed == 3 and len(done) == len(items)
    lines = progress.read_text().splitlines()
    assert len(lines) == 1 + len(items) and all(json.loads(line) for line in lines)


def test_progress_of_other_settings_is_refused_unless_restart(tiny_market, scripted, tmp_path):
    items = [(n, tiny_market / "Market-1501-v15.09.15" / "bounding_box_train" / n) for n in sorted(TRAIN_IMAGES)]
    progress = tmp_path / "p.jsonl"
    ScriptedEstimator.fail_after = 2
    with pytest.raises(KeyboardInterrupt):
        estimate_images(items, scripted, progress, show_progress=False)
    ScriptedEstimator.fail_after = None
    other = EstimatorSpec("scripted", {"visibility_threshold": 0.7})
    with pytest.raises(ConfigError, match="--restart"):
        estimate_images(items, other, progress, show_progress=False)
    ScriptedEstimator.calls = 0
    done, resumed = estimate_images(items, other, progress, restart=True, show_progress=False)
    assert resumed == 0 and ScriptedEstimator.calls == len(items)


def test_split_selection_fills_in_the_test_csv(tiny_market, scripted, tmp_path):
    out = tmp_path / "out"
    first = estimate_dataset(tiny_market, out, splits=["query"], spec=scripted, show_progress=False)
    assert set(first.csv_paths) == {"test"}
    assert set(read_keypoints_csv(out / "pose-annotation-test.csv")) == set(QUERY_IMAGES)
    ScriptedEstimator.calls = 0
    second = estimate_dataset(tiny_market, out, splits=["gallery"], spec=scripted, show_progress=False)
    assert ScriptedEstimator.calls == len(GALLERY_IMAGES)
    assert set(read_keypoints_csv(out / "pose-annotation-test.csv")) == set(QUERY_IMAGES) | set(GALLERY_IMAGES)
    assert [r.split for r in second.records] == ["bounding_box_test"] * len(GALLERY_IMAGES)
    other = EstimatorSpec("scripted", {"visibility_threshold": 0.9})
    with pytest.raises(ConfigError, match="other settings"):  # would mix rows made differently
        estimate_dataset(tiny_market, out, splits=["train"], spec=other, show_progress=False)
    ScriptedEstimator.calls = 0
    estimate_dataset(tiny_market, out, splits=["test"], spec=other, overwrite=True, show_progress=False)
    assert ScriptedEstimator.calls == len(QUERY_IMAGES) + len(GALLERY_IMAGES)


def test_parse_splits_and_errors(tiny_market, scripted, tmp_path):
    assert parse_splits(None) == ("bounding_box_train", "query", "bounding_box_test")
    assert parse_splits(["test"]) == ("query", "bounding_box_test")
    assert parse_splits(["gallery", "train"]) == ("bounding_box_train", "bounding_box_test")
    with pytest.raises(ConfigError, match="unknown split"):
        parse_splits(["validation"])
    with pytest.raises(ConfigError, match="bad options"):  # checked before MediaPipe is imported
        EstimatorSpec("mediapipe", {"model": "pose.onnx"}).build()
    with pytest.raises(ConfigError, match="unknown pose estimator"):
        estimate_dataset(tiny_market, tmp_path / "o", spec=EstimatorSpec("openpose"), show_progress=False)
    with pytest.raises(ConfigError, match="workers"):
        estimate_dataset(tiny_market, tmp_path / "o", spec=scripted, workers=0, show_progress=False)
    out = tmp_path / "crowded"
    write_keypoints_csv(out / "market-annotation-train.csv", {})
    with pytest.raises(ConfigError, match="ambiguous"):
        estimate_dataset(tiny_market, out, splits=["train"], spec=scripted, show_progress=False)


# ---------------------------------------------------------------- report


def test_report_rates_and_comparison():
    present = _expected(100)
    none = _expected(0)
    poses = {"a": present, "b": none, "c": present, "d": present}
    report = pose_report(
        poses,
        {"query": ["a", "b"], "bounding_box_test": ["c", "d"]},
        detected={"a": True, "b": True, "c": True, "d": True},
    )
    assert report.detection_source == "estimator"
    assert report.splits["query"].detected == 2 and report.splits["query"].with_joints == 1
    assert report.splits["all"].images == 4 and report.splits["all"].joint_rates["Lwri"] == 0.0
    assert report.splits["all"].joint_rates["nose"] == 0.75
    assert report.splits["bounding_box_test"].usable == 2
    from_rows = pose_report(poses, {"query": ["a", "b"]})
    assert from_rows.detection_source == "rows" and from_rows.splits["query"].detected == 1
    assert "| nose |" in report.format()

    shifted = present.copy()
    shifted[KP["nose"]] += (3, 4)  # 5 px away
    shifted[KP["Rwri"]] = MISSING
    cmp = compare_keypoints({"a": shifted, "b": none}, {"a": present, "b": none, "z": present})
    assert cmp["rows"] == 2  # "z" is only in the reference
    assert cmp["joints_compared"] == 16
    assert cmp["mean_joint_distance_px"] == pytest.approx(5 / 16, abs=1e-4)
    assert cmp["visibility_pattern_match"] == 0.5  # "a" lost Rwri, "b" agrees (all missing)
    assert cmp["per_joint"]["nose"]["mean_distance_px"] == 5.0
    assert cmp["left_right_swapped_rows"] == 0

    from augreid.data.keypoints import FLIP_ORDER, KEYPOINT_NAMES

    sided = present.copy()  # right joints at x=10, left ones at x=50, as a person facing the camera
    for j, name in enumerate(KEYPOINT_NAMES):
        if name[0] in "RL" and sided[j, 0] >= 0:
            sided[j, 1] = 10 if name[0] == "R" else 50
    back_view = sided[list(FLIP_ORDER)]  # the same body with left and right exchanged
    assert compare_keypoints({"a": back_view, "b": sided}, {"a": sided, "b": sided})["left_right_swapped_rows"] == 1


def test_contact_sheet_draws_the_chosen_images(tmp_path):
    from PIL import Image

    items = []
    for i in range(5):
        path = tmp_path / f"{i:04d}_c1s1_000000_00.png"
        Image.fromarray(np.full((H, W, 3), 100, np.uint8)).save(path)
        items.append((path.name, path, _expected(100) if i else _expected(0)))
    png = contact_sheet(items, tmp_path / "sheet.png", count=4, columns=2, scale=2, seed=1)
    sheet = np.asarray(Image.open(png).convert("RGB"))
    assert sheet.shape[1] == 2 * (2 * W + 4) + 4  # two columns of 2x tiles
    assert sheet.shape[0] > 2 * 2 * H
    assert (np.abs(sheet.astype(int) - 100).sum(axis=-1) > 60).sum() > 500  # skeletons were drawn in colour


# ---------------------------------------------------------------- CLI and the missing extra


def test_cli_pose_writes_csvs_and_report(tiny_market, scripted, tmp_path):
    out = tmp_path / "cli"
    result = CliRunner().invoke(
        app, ["pose", str(tiny_market), "--out", str(out), "--estimator", "scripted", "--sheet-count", "4"]
    )
    assert result.exit_code == 0, result.output
    assert "estimated 11 images" in result.output
    for name in (
        "pose-annotation-train.csv",
        "pose-annotation-test.csv",
        "pose-report.md",
        "pose-report.json",
        "pose-contact-sheet.png",
        "pose-run.json",
    ):
        assert (out / name).is_file(), name
    report = json.loads((out / "pose-report.json").read_text())
    assert report["splits"]["bounding_box_train"]["detected"] == 5  # one dark image
    assert report["splits"]["all"]["images"] == 11


def test_cli_pose_without_the_extra_says_how_to_install(tiny_market, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mediapipe", None)  # makes `import mediapipe` fail as if absent
    out = tmp_path / "never"
    result = CliRunner().invoke(app, ["pose", str(tiny_market), "--out", str(out)])
    assert result.exit_code == 2
    assert "pip install 'augreid[pose]'" in result.output
    assert "Traceback" not in result.output
    assert not out.exists()  # failed before writing anything


def test_augreid_imports_without_mediapipe():
    code = (
        "import sys; sys.modules['mediapipe'] = None\n"
        "import augreid, augreid.cli, augreid.pose_estimation, augreid.pose_estimation.run, "
        "augreid.pose_estimation.report, augreid.pose_estimation.mediapipe_estimator\n"
        "assert 'cv2' not in sys.modules and 'jax' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_cli_pose_takes_config_and_set_and_reports_every_bad_value(tiny_market, scripted, tmp_path):
    config = tmp_path / "pose.toml"
    config.write_text("[pose]\nprefix = 'mine'\nsheet_count = 3\n")
    out = tmp_path / "cli"
    args = ["pose", str(tiny_market), "--out", str(out), "--estimator", "scripted", "--config", str(config)]
    result = CliRunner().invoke(app, [*args, "--set", "report=false"])
    assert result.exit_code == 0, result.output
    assert (out / "mine-annotation-train.csv").is_file() and not (out / "mine-report.md").exists()
    bad = CliRunner().invoke(app, [*args, "--set", "visibility_threshold=2", "--set", "workers=0", "--set", "sed=1"])
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    for problem in ("visibility_threshold: must be in [0, 1]", "workers: must be at least 1", "sed"):
        assert problem in bad.output
