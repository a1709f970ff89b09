"""Data layer: Market layout, keypoint CSVs, pose maps and masks, pairs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augreid.data import (
    KEYPOINT_NAMES,
    build_pairs,
    flip_pose,
    is_pose_usable,
    join_keypoints,
    load_market,
    parse_market_name,
    pose_mask,
    pose_maps,
    read_keypoints_csv,
    read_pairs_csv,
    resolve_market_root,
    write_keypoints_csv,
    write_pairs_csv,
)
from augreid.data.check import check_dataset
from augreid.data.keypoints import KP, find_keypoint_csvs
from augreid.data.market import read_image
from augreid.errors import DatasetError, KeypointError

# A standing person facing the camera in a 128x64 crop (y, x): person's right on the image's left.
STANDING = np.array(
    [
        [12, 32],
        [26, 32],
        [26, 22],
        [44, 20],
        [60, 19],
        [26, 42],
        [44, 44],
        [60, 45],
        [66, 26],
        [90, 26],
        [114, 26],
        [66, 38],
        [90, 38],
        [114, 38],
        [10, 30],
        [10, 34],
        [12, 27],
        [12, 37],
    ],
    dtype=np.int32,
)


def make_market(root: Path, names: dict[str, list[str]], size=(64, 128)) -> Path:
    base = root / "Market-1501-v15.09.15"
    for split, files in names.items():
        (base / split).mkdir(parents=True, exist_ok=True)
        for name in files:
            Image.new("RGB", size, (100, 120, 140)).save(base / split / name)
    return base


SMALL = {
    "bounding_box_train": [
        "0002_c1s1_000451_03.jpg",
        "0002_c2s1_000551_01.jpg",
        "0007_c3s1_000101_01.jpg",
        "-1_c1s1_000001_00.jpg",
        "0000_c1s1_000002_00.jpg",
    ],
    "query": ["0010_c1s1_000001_00.jpg", "-1_c1s1_000003_00.jpg"],
    "bounding_box_test": ["0010_c2s1_000002_00.jpg", "0000_c3s1_000005_00.jpg", "-1_c2s1_000004_00.jpg"],
}


# ------------------------------------------------------------------ names and layout


@pytest.mark.parametrize(
    "name,expected",
    [
        ("0002_c1s1_000451_03.jpg", (2, 1)),
        ("-1_c3s2_012345_01.jpg", (-1, 3)),
        ("0000_c6s1_000001_00.jpg", (0, 6)),
        ("0843_c12s1_006007_00.jpg", (843, 12)),
    ],
)
def test_parse_market_name(name, expected):
    assert parse_market_name(name) == expected


@pytest.mark.parametrize("name", ["c1s1_000451_03.jpg", "abc_c1s1.jpg", "0002-c1s1.jpg", "0002_s1c1.jpg"])
def test_parse_market_name_rejects(name):
    with pytest.raises(DatasetError, match="cannot parse"):
        parse_market_name(name)


def test_junk_and_distractors(tmp_path):
    make_market(tmp_path, SMALL)
    ds = load_market(tmp_path)  # parent of Market-1501-v15.09.15 works
    assert [r.pid for r in ds.train] == [2, 2, 7]
    assert [r.pid for r in ds.query] == [10]
    assert sorted(r.pid for r in ds.gallery) == [0, 10]
    assert ds.pid2label == {2: 0, 7: 1} and ds.label2pid == {0: 2, 1: 7}
    assert all(r.pid != -1 for s in ("bounding_box_train", "query", "bounding_box_test") for r in ds.split(s))
    assert ds.root == tmp_path / "Market-1501-v15.09.15"
    assert load_market(ds.root).fingerprint() == ds.fingerprint()


def test_fingerprint_changes_with_files(tmp_path):
    base = make_market(tmp_path, SMALL)
    before = load_market(base).fingerprint()
    Image.new("RGB", (64, 128)).save(base / "bounding_box_train" / "0009_c1s1_000001_00.jpg")
    assert load_market(base).fingerprint() != before


def test_missing_split_names_path(tmp_path):
    make_market(tmp_path, {"bounding_box_train": SMALL["bounding_box_train"], "query": SMALL["query"]})
    with pytest.raises(DatasetError, match="missing split folder bounding_box_test"):
        load_market(tmp_path)
    assert load_market(tmp_path, require_eval_splits=False).gallery == []


def test_not_a_market_folder(tmp_path):
    with pytest.raises(DatasetError, match="not a Market-1501 layout"):
        resolve_market_root(tmp_path)
    with pytest.raises(DatasetError, match="does not exist"):
        resolve_market_root(tmp_path / "nope")


def test_bad_name_is_reported_with_path(tmp_path):
    names = {**SMALL, "query": SMALL["query"] + ["holiday.jpg"]}
    base = make_market(tmp_path, names)
    with pytest.raises(DatasetError, match=r"query/holiday\.jpg.*cannot parse"):
        load_market(tmp_path)
    (base / "bounding_box_train" / "Thumbs.db").write_bytes(b"x")  # ignored, like torchreid
    report = check_dataset(tmp_path, verify_images=False)
    assert any("holiday.jpg" in e for e in report.errors)


def test_check_collects_all_problems(tmp_path):
    names = {
        **SMALL,
        "query": SMALL["query"] + ["bad1.jpg"],
        "bounding_box_test": SMALL["bounding_box_test"] + ["bad2.jpg"],
    }
    base = make_market(tmp_path, names)
    (base / "bounding_box_train" / "0007_c4s1_000009_00.jpg").write_bytes(b"not a jpeg")
    report = check_dataset(tmp_path)
    text = report.format()
    assert any("bad1.jpg" in e for e in report.errors)
    assert any("bad2.jpg" in e for e in report.errors)
    assert any("unreadable image" in e and "0007_c4s1_000009_00.jpg" in e for e in report.errors)
    assert report.splits["bounding_box_train"].ids == 2
    assert "3 error(s)" in text
    report.write_json(tmp_path / "r.json")
    assert (tmp_path / "r.json").is_file()


def test_read_image_errors(tmp_path):
    with pytest.raises(DatasetError, match="not found"):
        read_image(tmp_path / "x.jpg")
    (tmp_path / "y.jpg").write_bytes(b"garbage")
    with pytest.raises(DatasetError, match="unreadable"):
        read_image(tmp_path / "y.jpg")


def test_cli_data_check_exit_codes(tmp_path):
    from typer.testing import CliRunner

    from augreid.cli import app

    make_market(tmp_path, SMALL)
    runner = CliRunner()
    ok = runner.invoke(app, ["data", "check", str(tmp_path)])
    assert ok.exit_code == 0, ok.output
    assert "bounding_box_train" in ok.output
    bad = runner.invoke(app, ["data", "check", str(tmp_path / "missing")])
    assert bad.exit_code == 1 and "does not exist" in bad.output


# ------------------------------------------------------------------ keypoints CSV


def test_keypoint_csv_round_trip(tmp_path):
    table = {"0002_c1s1_000451_03.jpg": STANDING, "0007_c3s1_000101_01.jpg": np.full((18, 2), -1, np.int32)}
    path = write_keypoints_csv(tmp_path / "kp.csv", table)
    text = path.read_text().splitlines()
    assert text[0] == "name:keypoints_y:keypoints_x"
    assert text[1].startswith("0002_c1s1_000451_03.jpg: [12, 26,")
    back = read_keypoints_csv(path)
    assert set(back) == set(table)
    for name in table:
        np.testing.assert_array_equal(back[name], table[name])


@pytest.mark.parametrize(
    "line,match",
    [
        ("a.jpg: [1, 2]: [3, 4]", "18 integers"),
        ("a.jpg [1]", "expected"),
        ("a.jpg: [x]: [1]", "not a list"),
        (": [" + ", ".join(["1"] * 18) + "]: [" + ", ".join(["1"] * 18) + "]", "empty image name"),
    ],
)
def test_keypoint_csv_errors_name_the_line(tmp_path, line, match):
    path = tmp_path / "kp.csv"
    path.write_text("name:keypoints_y:keypoints_x\n" + line + "\n")
    with pytest.raises(KeypointError, match=match) as err:
        read_keypoints_csv(path)
    assert "kp.csv:2" in str(err.value)


def test_keypoint_csv_bad_header_and_duplicates(tmp_path):
    (tmp_path / "h.csv").write_text("name,x,y\n")
    with pytest.raises(KeypointError, match="header"):
        read_keypoints_csv(tmp_path / "h.csv")
    row = "a.jpg: [" + ", ".join(["1"] * 18) + "]: [" + ", ".join(["1"] * 18) + "]"
    (tmp_path / "d.csv").write_text(f"name:keypoints_y:keypoints_x\n{row}\n{row}\n")
    with pytest.raises(KeypointError, match="duplicate"):
        read_keypoints_csv(tmp_path / "d.csv")
    with pytest.raises(KeypointError, match="does not exist"):
        read_keypoints_csv(tmp_path / "none.csv")


def test_half_missing_joint_becomes_missing(tmp_path):
    ys = [5] * 18
    ys[3] = -1
    xs = [7] * 18
    (tmp_path / "k.csv").write_text(f"name:keypoints_y:keypoints_x\na.jpg: {ys}: {xs}\n")
    pose = read_keypoints_csv(tmp_path / "k.csv")["a.jpg"]
    assert tuple(pose[3]) == (-1, -1)


def test_join_reports_missing_and_unknown():
    join = join_keypoints(["a.jpg", "b.jpg"], {"a.jpg": STANDING, "z.jpg": STANDING})
    assert list(join.poses) == ["a.jpg"] and join.missing == ["b.jpg"] and join.unknown == ["z.jpg"]
    assert "1 images lacking keypoints: b.jpg" in join.report()


def test_find_keypoint_csvs(tmp_path):
    base = make_market(tmp_path, SMALL)
    write_keypoints_csv(tmp_path / "x-annotation-train.csv", {})
    assert find_keypoint_csvs(base) == {"train": tmp_path / "x-annotation-train.csv"}
    write_keypoints_csv(tmp_path / "y-annotation-train.csv", {})
    with pytest.raises(KeypointError, match="several"):
        find_keypoint_csvs(base)


# ------------------------------------------------------------------ pose rendering


def test_pose_maps_disk_shape_and_values():
    maps = pose_maps(STANDING, (128, 64))
    assert maps.shape == (18, 128, 64) and maps.dtype == np.float32
    assert set(np.unique(maps)) == {0.0, 1.0}
    # radius 4 disk: 49 lattice points (x^2 + y^2 <= 16), fully inside the frame for the neck
    assert maps[KP["neck"]].sum() == 49
    assert maps[KP["neck"], 26, 32] == 1 and maps[KP["neck"], 26, 36] == 1 and maps[KP["neck"], 26, 37] == 0


def test_pose_maps_missing_and_gaussian():
    pose = STANDING.copy()
    pose[KP["Lwri"]] = -1
    maps = pose_maps(pose, (128, 64), mode="gaussian", sigma=6)
    assert maps[KP["Lwri"]].max() == 0
    assert maps[KP["nose"], 12, 32] == pytest.approx(1.0)
    assert 0 < maps[KP["nose"], 12, 38] < 1
    with pytest.raises(ValueError):
        pose_maps(pose, (128, 64), mode="square")


def test_pose_mask_covers_limbs_and_is_closed():
    mask = pose_mask(STANDING, (128, 64))
    assert mask.shape == (128, 64) and set(np.unique(mask)) <= {0.0, 1.0}
    assert mask[78, 26] == 1  # mid right thigh
    assert mask[46, 32] == 1  # torso centre, filled by the PG2 torso edges
    assert mask[5, 5] == 0 and mask[120, 60] == 0
    assert 800 < mask.sum() < 3000
    assert pose_mask(np.full((18, 2), -1), (128, 64)).sum() == 0


def test_flip_swaps_left_and_right():
    flipped = flip_pose(STANDING, 64)
    assert tuple(flipped[KP["Rsho"]]) == (26, 63 - 42)  # old Lsho mirrored
    assert tuple(flipped[KP["Lsho"]]) == (26, 63 - 22)
    assert tuple(flipped[KP["Reye"]]) == (10, 63 - 34)
    np.testing.assert_array_equal(flip_pose(flipped, 64), STANDING)
    # maps of the flipped pose == mirrored maps with channels permuted
    from augreid.data.keypoints import FLIP_ORDER

    maps, fmaps = pose_maps(STANDING), pose_maps(flipped)
    np.testing.assert_array_equal(fmaps, maps[list(FLIP_ORDER)][:, :, ::-1])
    np.testing.assert_array_equal(pose_mask(flipped), pose_mask(STANDING)[:, ::-1])


def test_flip_keeps_missing():
    pose = STANDING.copy()
    pose[KP["Relb"]] = -1
    assert tuple(flip_pose(pose, 64)[KP["Lelb"]]) == (-1, -1)


# ------------------------------------------------------------------ pairs


def _records(tmp_path):
    names = {
        "bounding_box_train": [
            "0001_c1s1_000001_00.jpg",
            "0001_c1s1_000002_00.jpg",
            "0001_c2s1_000003_00.jpg",
            "0002_c1s1_000004_00.jpg",
            "0002_c2s1_000005_00.jpg",
            "0003_c1s1_000006_00.jpg",
        ],
        "query": [],
        "bounding_box_test": [],
    }
    make_market(tmp_path, names)
    return load_market(tmp_path).train


def test_pair_rules(tmp_path):
    records = _records(tmp_path)
    poses = {r.name: STANDING for r in records}
    pairs = build_pairs(records, poses)
    assert len(pairs) == 3 * 2 + 2 * 1  # ordered pairs per id; id 3 has a single image
    assert all(a != b and a[:4] == b[:4] for a, b in pairs)
    cross = build_pairs(records, poses, different_cameras=True)
    assert len(cross) == 2 * 2 + 2 and all(a.split("_")[1][:2] != b.split("_")[1][:2] for a, b in cross)
    no_hip = STANDING.copy()
    no_hip[KP["Lhip"]] = -1
    assert not is_pose_usable(no_hip) and is_pose_usable(STANDING)
    assert not is_pose_usable(STANDING, min_visible=19)
    poses["0001_c1s1_000001_00.jpg"] = no_hip
    assert len(build_pairs(records, poses)) == 2 + 2
    capped = build_pairs(records, poses, max_pairs=3, seed=1)
    assert len(capped) == 3 and capped == build_pairs(records, poses, max_pairs=3, seed=1)
    assert set(capped) <= set(build_pairs(records, poses))


def test_pairs_csv_round_trip(tmp_path):
    pairs = [("a.jpg", "b.jpg"), ("b.jpg", "a.jpg")]
    path = write_pairs_csv(tmp_path / "p.csv", pairs)
    assert path.read_text().splitlines()[0] == "from,to"
    assert read_pairs_csv(path) == pairs
    (tmp_path / "bad.csv").write_text("from,to\na.jpg\n")
    with pytest.raises(DatasetError, match="bad.csv:2"):
        read_pairs_csv(tmp_path / "bad.csv")


# ------------------------------------------------------------------ real files (skipped without ../shared/data)


@pytest.mark.shared_data
def test_real_market_keypoints(market_keypoints_dir):
    train = read_keypoints_csv(market_keypoints_dir / "market-annotation-train.csv")
    test = read_keypoints_csv(market_keypoints_dir / "market-annotation-test.csv")
    assert len(train) == 12936 and len(test) == 19732
    empty = sum(not (p >= 0).any() for p in train.values())
    assert empty == 419
    pairs = read_pairs_csv(market_keypoints_dir / "market-pairs-test.csv")
    assert len(pairs) == 12000 and all(a in test and b in test for a, b in pairs)
    # The public train-pair rule reproduces the documented 12116 usable images.
    usable = [n for n, p in train.items() if is_pose_usable(p) and not n.startswith(("-1", "0000"))]
    assert len(usable) == 12116
    # Every pose renders inside the 128x64 frame.
    some = list(train.values())[:200]
    assert all(pose_maps(p).shape == (18, 128, 64) for p in some)


@pytest.mark.shared_data
def test_cuhk03_market(cuhk03_root):
    ds = load_market(cuhk03_root)
    assert (len(ds.train), len(ds.query), len(ds.gallery)) == (4298, 798, 3081)
    assert ds.num_train_pids == 443
    csvs = find_keypoint_csvs(ds.root)
    train = read_keypoints_csv(csvs["train"])
    join = join_keypoints([r.name for r in ds.train], train)
    assert not join.missing and not join.unknown
    test = read_keypoints_csv(csvs["test"])
    join = join_keypoints([r.name for r in ds.query + ds.gallery], test)
    assert not join.missing and not join.unknown
    report = check_dataset(cuhk03_root, verify_images=False)
    assert not report.errors and report.splits["query"].ids == 400


def test_keypoint_names_order():
    assert KEYPOINT_NAMES[:2] == ("nose", "neck") and KEYPOINT_NAMES[14:] == ("Reye", "Leye", "Rear", "Lear")
