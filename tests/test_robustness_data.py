"""Issue 15, items 2, 5, 6a, 7d, 7e: data problems are named, user files are never deleted."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from augreid.data.keypoints import read_keypoints_csv, write_keypoints_csv
from augreid.data.market import load_market
from augreid.data.sources import resolve_source
from augreid.errors import DatasetError, KeypointError
from robustness_util import assert_one_line_error, invoke, tiny_gen_args, tree_digest

pytestmark = pytest.mark.usefixtures("one_torch_thread")
TRAIN_DIR = Path("Market-1501-v15.09.15") / "bounding_box_train"


@pytest.fixture
def data(tmp_path, demo_root) -> Path:
    """A private copy of the demo dataset to break."""
    out = tmp_path / "data"
    shutil.copytree(demo_root, out)
    return out


# ---------------------------------------------------------------- item 5: two keypoint CSVs


@pytest.fixture
def two_train_csvs(data) -> Path:
    shutil.copy(data / "demo-annotation-train.csv", data / "copy-annotation-train.csv")
    return data


def test_data_check_still_reports_with_two_train_csvs(two_train_csvs):
    result = invoke("data", "check", two_train_csvs, "--no-verify-images")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert "bounding_box_train" in result.output and "query" in result.output  # the report is there
    assert "several train keypoint files" in result.output and "--train-keypoints" in result.output
    named = invoke(
        "data",
        "check",
        two_train_csvs,
        "--no-verify-images",
        "--train-keypoints",
        two_train_csvs / "demo-annotation-train.csv",
    )
    assert named.exit_code == 0 and named.output.rstrip().endswith("OK"), named.output


def test_commands_accept_two_train_csvs_when_one_is_named(two_train_csvs, tmp_path):
    chosen = two_train_csvs / "demo-annotation-train.csv"
    source = resolve_source(two_train_csvs, train_keypoints=chosen)
    assert source.train_keypoints == chosen and len(source.train_poses()) == len(read_keypoints_csv(chosen))
    assert resolve_source(two_train_csvs).test_keypoints is not None  # test CSV unaffected: eval, eval-gen work
    with pytest.raises(KeypointError, match="several train keypoint files.*--train-keypoints"):
        resolve_source(two_train_csvs).train_poses()
    result = invoke(
        "train-gen",
        "--data",
        two_train_csvs,
        "--train-keypoints",
        chosen,
        "--out",
        tmp_path / "g",
        "--quiet",
        "--threads",
        "1",
        *tiny_gen_args(),
    )
    assert result.exit_code == 0, result.output
    result = invoke(
        "train-gen", "--data", two_train_csvs, "--out", tmp_path / "h", "--quiet", "--threads", "1", *tiny_gen_args()
    )
    assert_one_line_error(result, "copy-annotation-train.csv", "--train-keypoints")


# ---------------------------------------------------------------- item 7d: odd images and keypoints


def test_data_check_flags_tiny_and_flat_images(data):
    victim = sorted((data / TRAIN_DIR).glob("*.jpg"))[3]
    Image.new("RGB", (300, 20), (90, 90, 90)).save(victim)  # 300 wide, 20 high
    result = invoke("data", "check", data, "--no-verify-images")
    assert result.exit_code == 0  # without opening images nothing can be said
    result = invoke("data", "check", data)
    assert result.exit_code == 1 and "OK" not in result.output.splitlines()[-1]
    assert victim.name in result.output and "300x20" in result.output


def test_data_check_flags_keypoints_outside_the_image(data):
    csv = data / "demo-annotation-train.csv"
    table = read_keypoints_csv(csv)
    name = sorted(table)[5]
    pose = table[name].copy()
    pose[1] = [400, 30]  # the neck 270 px below a 128 px image: a CSV for another image size
    table[name] = pose
    write_keypoints_csv(csv, table)
    result = invoke("data", "check", data)
    assert result.exit_code == 1
    assert "keypoints outside the image" in result.output and name in result.output


# ---------------------------------------------------------------- item 6a: demo-data never deletes user files


def test_demo_data_over_a_demo_folder_with_user_files_refuses(data):
    (data / "my-notes.txt").write_text("mine")
    extra = data / TRAIN_DIR / "0001_c9s9_000001_01.jpg"  # a user's own image, in a demo-looking name
    shutil.copy(sorted((data / TRAIN_DIR).glob("*.jpg"))[0], extra)
    before = tree_digest(data)
    result = invoke("demo-data", data, "--seed", "1", "--no-check")
    assert_one_line_error(result, "2 file(s)", "my-notes.txt", "refusing")
    assert tree_digest(data) == before


def test_demo_data_still_replaces_its_own_demo(data):
    (data / "demo.json").write_text(json.dumps({**json.loads((data / "demo.json").read_text()), "marker": 1}))
    result = invoke("demo-data", data, "--seed", "0", "--no-check")
    assert result.exit_code == 0, result.output
    assert "marker" not in json.loads((data / "demo.json").read_text())


def test_demo_data_over_a_foreign_folder_refuses(tmp_path):
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("years of work")
    result = invoke("demo-data", tmp_path / "mine", "--no-check")
    assert_one_line_error(result, "not a demo dataset folder")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "years of work"


# ---------------------------------------------------------------- item 7e: bad generator pairs


def test_train_gen_refuses_cross_identity_and_self_pairs(data, tmp_path):
    names = sorted(p.name for p in (data / TRAIN_DIR).glob("*.jpg"))
    other = next(n for n in names if n[:4] != names[0][:4])
    same = next(n for n in names[1:] if n[:4] == names[0][:4])
    pairs = tmp_path / "pairs.csv"
    pairs.write_text(f"from,to\n{names[0]},{same}\n{names[0]},{other}\n{same},{same}\n")
    result = invoke(
        "train-gen",
        "--data",
        data,
        "--pairs",
        pairs,
        "--out",
        tmp_path / "g",
        "--quiet",
        "--threads",
        "1",
        *tiny_gen_args(),
    )
    line = assert_one_line_error(result, str(pairs), "two different identities at line 3", "self-pairs")
    assert "line 4" in line
    assert not (tmp_path / "g").exists()


# ---------------------------------------------------------------- item 2: unfinished synthetic sets


def make_synthetic(real_root: Path, out: Path, status: str | None) -> Path:
    market = load_market(real_root)
    (out / "bounding_box_train").mkdir(parents=True)
    for i, record in enumerate(market.train[:4]):
        with Image.open(record.path) as img:
            np_img = np.asarray(img)[:, ::-1]
        Image.fromarray(np_img).save(out / "bounding_box_train" / f"{record.pid:04d}_c10s1_{i:06d}_00.jpg")
    if status is not None:
        (out / "synth.json").write_text(json.dumps({"status": status, "dataset_fingerprint": market.fingerprint()}))
    return out


@pytest.mark.parametrize("status", [None, "running"])
def test_unfinished_or_manifestless_synthetic_set_is_refused(demo_root, tmp_path, status):
    from augreid.reid.datasets import load_synthetic_set

    folder = make_synthetic(demo_root, tmp_path / "S", status)
    with pytest.raises(DatasetError, match=r"augreid synth --out") as info:
        load_synthetic_set(folder, load_market(demo_root))
    assert str(folder) in str(info.value) and "\n" not in str(info.value)
    result = invoke(
        "train-reid",
        "--data",
        demo_root,
        "--synthetic",
        folder,
        "--out",
        tmp_path / "run",
        "--epochs",
        "1",
        "--device",
        "cpu",
        "--workers",
        "0",
    )
    assert_one_line_error(result, str(folder), "augreid synth")


def test_finished_synthetic_set_is_accepted(demo_root, tmp_path):
    from augreid.reid.datasets import load_synthetic_set

    folder = make_synthetic(demo_root, tmp_path / "S", "complete")
    with pytest.warns(UserWarning, match="no manifest.jsonl"):  # this hand-made set has none: said, not fatal
        assert len(load_synthetic_set(folder, load_market(demo_root)).records) == 4
