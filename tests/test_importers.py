"""``augreid data import``: Market-layout views of MSMT17, CUHK03 (both releases) and DukeMTMC-reID.

Every source is a small fake tree in the original layout (tiny JPEG/PNG crops, a few
identities and cameras) built in ``tmp_path``; each view is then read by
``check_dataset`` and ``load_market``.
"""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from augreid.cli import app
from augreid.data.check import check_dataset
from augreid.data.importers import import_dataset, importer_names
from augreid.data.importers import cuhk03 as cuhk03_importer
from augreid.data.importers.view import PENDING_FILE, VIEW_FILE, ImportProblems
from augreid.data.market import GALLERY, QUERY, SPLITS, TRAIN, load_market, parse_market_name
from augreid.errors import ConfigError, DatasetError


def crop(path: Path, shade: int = 0) -> Path:
    """A tiny person-shaped (32x64) image; ``shade`` makes files differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (32, 64), (shade % 256, 80, 120)).save(path)
    return path


def labels(out: Path, split: str) -> list[tuple[int, int]]:
    return [parse_market_name(p.name) for p in sorted((out / split).iterdir())]


def assert_checks(out: Path, info: dict) -> None:
    """``data check`` finds no error and the same counts as import.json (no junk in these fakes)."""
    report = check_dataset(out)
    assert report.errors == []
    for split in SPLITS:
        assert report.splits[split].images == info["counts"][split]["images"]
        assert report.splits[split].ids == info["counts"][split]["ids"]
        assert report.splits[split].cameras == info["counts"][split]["cameras"]


# ---------------------------------------------------------------- MSMT17


MSMT_LISTS = {
    # list -> (folder role, [(pid, camera)...])
    "list_train.txt": ("train", [(0, 1), (0, 12), (1, 2), (1, 15), (2, 3)]),
    "list_val.txt": ("train", [(3, 1), (3, 12)]),
    "list_query.txt": ("test", [(0, 4), (1, 10)]),
    "list_gallery.txt": ("test", [(0, 5), (0, 11), (1, 6), (2, 7)]),
}


def make_msmt17(root: Path, version: str = "V2") -> Path:
    """A fake MSMT17_V1/V2 release: image folders, PPPP/PPPP_III_CC_... names, four list files."""
    base = root / f"MSMT17_{version}"
    folders = {"train": "mask_train_v2", "test": "mask_test_v2"} if version == "V2" else {"train": "train"}
    folders.setdefault("test", "test")
    for list_name, (role, items) in MSMT_LISTS.items():
        lines = []
        for index, (pid, cam) in enumerate(items):
            rel = f"{pid:04d}/{pid:04d}_{index:03d}_{cam:02d}_0303morning_{index:04d}_0.jpg"
            if list_name == "list_val.txt":
                rel = rel.replace("_0.jpg", "_1.jpg")  # val images are others of the train folder
            crop(base / folders[role] / rel, shade=index)
            lines.append(f"{rel} {pid}\n")
        (base / list_name).write_text("".join(lines))
    return base


@pytest.mark.parametrize("version", ["V2", "V1"])
def test_msmt17_view_shifts_pids_keeps_cameras_and_merges_val(tmp_path, version):
    base = make_msmt17(tmp_path / "msmt17", version)
    out = tmp_path / "view"
    result = import_dataset("msmt17", tmp_path / "msmt17", out)
    info = json.loads((out / VIEW_FILE).read_text())
    assert info == result.info and result.created == 13
    assert info["format"] == "msmt17" and info["pid_shift"] == 1
    assert info["source"] == str(tmp_path / "msmt17") and info["source_resolved"] == str(base)
    assert info["meta"]["release"] == f"MSMT17_{version}" and len(info["fingerprint"]) == 64
    assert "list_val.txt" in info["split"][TRAIN] and any("+1" in note for note in info["notes"])
    train = labels(out, TRAIN)
    assert sorted({pid for pid, _ in train}) == [1, 2, 3, 4]  # 0..3 + 1, val's pid 3 included
    assert sorted({cam for _, cam in train}) == [1, 2, 3, 12, 15]  # two-digit cameras kept
    assert len(train) == 7  # 5 train + 2 val
    assert labels(out, QUERY) == [(1, 4), (2, 10)]
    assert sorted(labels(out, GALLERY)) == [(1, 5), (1, 11), (2, 6), (3, 7)]
    assert all(pid > 0 for split in SPLITS for pid, _ in labels(out, split))
    assert info["counts"][TRAIN] == {
        "images": 7,
        "ids": 4,
        "cameras": [1, 2, 3, 12, 15],
        "distractor_images": 0,
        "junk_images": 0,
    }
    link = next((out / QUERY).iterdir())
    assert link.is_symlink() and Path(os.readlink(link)).is_relative_to(base)
    assert_checks(out, info)
    dataset = load_market(out)
    assert dataset.num_train_pids == 4 and len(dataset.gallery) == 4


def test_msmt17_problems_are_reported_together_and_nothing_is_written(tmp_path):
    base = make_msmt17(tmp_path / "src")
    with (base / "list_train.txt").open("a") as handle:
        handle.write("0009/0009_000_01_0303morning_0001_0.jpg 9\n")  # listed, absent
        handle.write("just-a-path.jpg\n")  # no pid
        handle.write("0001/0001_009_xx_0303morning_0001_0.jpg 1\n")  # no camera
    (base / "list_val.txt").unlink()
    out = tmp_path / "view"
    with pytest.raises(DatasetError) as caught:
        import_dataset("msmt17", base, out)
    problems = caught.value.problems if isinstance(caught.value, ImportProblems) else []
    text = str(caught.value)
    assert len(problems) == 4
    assert "list_val.txt: list file missing" in text
    assert "list_train.txt:7: expected 'relative/path.jpg PID'" in text
    assert "list_train.txt:8: no camera" in text
    assert "0009_000_01_0303morning_0001_0.jpg: image listed but absent" in text
    assert not out.exists()


def test_rerun_is_a_no_op_and_a_lost_link_is_remade(tmp_path):
    src = make_msmt17(tmp_path / "src")
    out = tmp_path / "view"
    first = import_dataset("msmt17", src, out)
    before = (out / VIEW_FILE).stat().st_mtime_ns, sorted(p.name for p in (out / TRAIN).iterdir())
    again = import_dataset("msmt17", src, out)
    assert again.created == 0 and again.info == first.info and "nothing changed" in again.format()
    assert ((out / VIEW_FILE).stat().st_mtime_ns, sorted(p.name for p in (out / TRAIN).iterdir())) == before
    next((out / GALLERY).iterdir()).unlink()
    assert import_dataset("msmt17", src, out).created == 1
    assert len(list((out / GALLERY).iterdir())) == 4


def test_an_interrupted_import_is_resumed(tmp_path):
    src = make_msmt17(tmp_path / "src")
    out = tmp_path / "view"
    import_dataset("msmt17", src, out)
    (out / VIEW_FILE).rename(out / PENDING_FILE)  # as if killed before import.json was written
    for link in list((out / TRAIN).iterdir())[:3]:
        link.unlink()
    assert import_dataset("msmt17", src, out).created == 3
    assert (out / VIEW_FILE).is_file() and not (out / PENDING_FILE).exists()


def test_a_different_source_or_a_foreign_folder_is_refused(tmp_path):
    src = make_msmt17(tmp_path / "src")
    other = make_msmt17(tmp_path / "other", "V1")
    out = tmp_path / "view"
    import_dataset("msmt17", src, out)
    with pytest.raises(ConfigError, match="another source"):
        import_dataset("msmt17", other, out)
    stray = crop(out / TRAIN / "9999_c1s1_000001_00.jpg")
    with pytest.raises(ConfigError, match="not part of this import"):
        import_dataset("msmt17", src, out)
    stray.unlink()
    # same path, other content (a larger image): the fingerprint differs
    Image.new("RGB", (32, 96)).save(src / "mask_test_v2" / "0000" / "0000_000_05_0303morning_0000_0.jpg")
    with pytest.raises(ConfigError, match="differs in: fingerprint"):
        import_dataset("msmt17", src, out)
    foreign = tmp_path / "foreign"
    crop(foreign / "holiday.jpg")
    with pytest.raises(ConfigError, match="not an empty folder"):
        import_dataset("msmt17", other, foreign)


def test_copies_where_symlinks_are_refused(tmp_path, monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError(errno.EPERM, "Operation not permitted")

    monkeypatch.setattr(os, "symlink", refuse)
    src = make_msmt17(tmp_path / "src")
    out = tmp_path / "view"
    result = import_dataset("msmt17", src, out)
    assert result.info["link_mode"] == "copy"
    files = [p for split in SPLITS for p in (out / split).iterdir()]
    assert len(files) == 13 and not any(p.is_symlink() for p in files)
    assert import_dataset("msmt17", src, out).created == 0
    assert_checks(out, result.info)


# ---------------------------------------------------------------- CUHK03


def make_cuhk03_np(root: Path) -> Path:
    """A fake CUHK03-NP: detected/ and labeled/ in the Market layout (names PPPP_cC_NNNN.png)."""
    for split, extra in (("detected", 0), ("labeled", 1)):
        base = root / split
        for pid in (1, 2, 3 + extra):
            for cam in (1, 2):
                crop(base / TRAIN / f"{pid:04d}_c{cam}_{pid * 10 + cam:04d}.png", pid)
        for pid in (5, 6):
            crop(base / QUERY / f"{pid:04d}_c1_{pid * 10:04d}.png", pid)
            crop(base / GALLERY / f"{pid:04d}_c2_{pid * 10 + 1:04d}.png", pid)
            crop(base / GALLERY / f"{pid:04d}_c2_{pid * 10 + 2:04d}.png", pid)
    return root


@pytest.mark.parametrize("split", ["detected", "labeled"])
def test_cuhk03_np_is_checked_and_linked_as_is(tmp_path, split):
    src = make_cuhk03_np(tmp_path / "cuhk03-np")
    out = tmp_path / "view"
    result = import_dataset("cuhk03", src, out, split=None if split == "detected" else split)
    assert result.info["options"] == {"split": split} and result.info["meta"]["release"] == "CUHK03-NP"
    assert "already in the Market-1501 layout" in result.format()
    assert sorted(p.name for p in (out / TRAIN).iterdir()) == sorted(p.name for p in (src / split / TRAIN).iterdir())
    assert (out / TRAIN / "0001_c1_0011.png").resolve() == (src / split / TRAIN / "0001_c1_0011.png").resolve()
    assert result.info["counts"][TRAIN]["ids"] == 3 and result.info["counts"][GALLERY]["images"] == 4
    assert_checks(out, result.info)


def test_cuhk03_np_bad_names_and_wrong_split_option(tmp_path):
    src = make_cuhk03_np(tmp_path / "cuhk03-np")
    crop(src / "detected" / QUERY / "person7.png")
    (src / "detected" / GALLERY / "0005_c2_0051.png").rename(src / "detected" / GALLERY / "x_c2.png")
    with pytest.raises(ImportProblems) as caught:
        import_dataset("cuhk03", src, tmp_path / "view")
    assert len(caught.value.problems) == 2
    with pytest.raises(ConfigError, match="--split labeled"):
        import_dataset("cuhk03", src / "labeled", tmp_path / "view2")
    with pytest.raises(ConfigError, match="must be one of detected, labeled"):
        import_dataset("cuhk03", src, tmp_path / "view3", split="both")


def make_torchreid_output(dataset_dir: Path, json_root: Path, split: str = "detected") -> Path:
    """What torchreid's CUHK03 reader leaves: images_{split}/ and splits_new_{split}.json (one split).

    Train pids are torchreid's relabelled 0..N-1; test pids the protocol's labels, which
    collide with them (train label 1 and test label 1 are different people). The json's
    paths are absolute under ``json_root``, where torchreid ran.
    """
    img_dir = dataset_dir / f"images_{split}"
    people = {"train": [(1, 1, 0), (1, 2, 1), (2, 7, 2)], "query": [(3, 4, 1)], "gallery": [(3, 4, 1), (5, 9, 2)]}
    record: dict = {}
    for key, persons in people.items():
        items = []
        for pair, person, label in persons:
            views = (1, 2) if key == "train" else ((1,) if key == "query" else (2,))
            for view in views:
                image = (1 if view == 1 else 6) + (key == "gallery")
                name = f"{pair}_{person:03d}_{view}_{image:02d}.png"
                crop(img_dir / name, pair * 10 + person)
                items.append([str(json_root / img_dir.name / name), label, view - 1])
        record[key] = items
        record[f"num_{key}_imgs"] = len(items)
        record[f"num_{key}_pids"] = len(persons)
    (dataset_dir / f"splits_new_{split}.json").write_text(json.dumps([record], indent=4))
    return dataset_dir


@pytest.mark.parametrize("moved", [False, True])
def test_cuhk03_from_torchreid_output(tmp_path, moved):
    dataset_dir = tmp_path / "cuhk03"
    json_root = tmp_path / "elsewhere" / "cuhk03" if moved else dataset_dir
    make_torchreid_output(dataset_dir, json_root)
    out = tmp_path / "view"
    result = import_dataset("cuhk03", tmp_path, out)  # the parent of cuhk03/ works too
    assert result.info["meta"]["release"].startswith("cuhk-03.mat") and result.info["source_resolved"] == str(
        dataset_dir
    )
    assert sorted(labels(out, TRAIN)) == [(1001, 1), (1001, 2), (1002, 1), (1002, 2), (2007, 1), (2007, 2)]
    assert labels(out, QUERY) == [(3004, 1)]
    assert sorted(labels(out, GALLERY)) == [(3004, 2), (5009, 2)]
    linked = (out / TRAIN / "1001_c1s1_000001_00.png").resolve()
    assert linked == (dataset_dir / "images_detected" / "1_001_1_01.png").resolve()
    assert_checks(out, result.info)
    assert load_market(out).num_train_pids == 3


def test_cuhk03_torchreid_output_problems(tmp_path):
    dataset_dir = make_torchreid_output(tmp_path / "cuhk03", tmp_path / "cuhk03")
    json_path = dataset_dir / "splits_new_detected.json"
    data = json.loads(json_path.read_text())
    data[0]["train"].append(["/x/cuhk03/images_detected/not-a-cuhk-name.png", 0, 0])
    data[0]["gallery"].append([str(dataset_dir / "images_detected" / "5_009_2_09.png"), 2, 1])  # absent
    json_path.write_text(json.dumps(data))
    with pytest.raises(ImportProblems) as caught:
        import_dataset("cuhk03", dataset_dir, tmp_path / "view")
    assert len(caught.value.problems) == 2
    assert "not torchreid's PAIR_PERSON_VIEW_IMAGE.png name" in str(caught.value)
    assert "5_009_2_09.png: image listed but absent" in str(caught.value)


def test_cuhk03_mat_runs_torchreid_only_when_its_output_is_missing(tmp_path, monkeypatch):
    dataset_dir = tmp_path / "cuhk03"
    (dataset_dir / "cuhk03_release").mkdir(parents=True)
    (dataset_dir / "cuhk03_release" / "cuhk-03.mat").write_bytes(b"")
    with pytest.raises(DatasetError, match="cuhk03_new_protocol_config_detected.mat, .*labeled.mat"):
        import_dataset("cuhk03", dataset_dir, tmp_path / "view")
    calls = []

    def fake_extract(folder: Path, labeled: bool) -> None:
        calls.append((folder, labeled))
        make_torchreid_output(folder, folder, "labeled")

    monkeypatch.setattr(cuhk03_importer, "extract_with_torchreid", fake_extract)
    result = import_dataset("cuhk03", dataset_dir, tmp_path / "view", split="labeled")
    assert calls == [(dataset_dir, True)] and result.info["counts"][TRAIN]["images"] == 6
    import_dataset("cuhk03", dataset_dir, tmp_path / "view", split="labeled")
    assert len(calls) == 1  # the extraction is there now


def make_cuhk03_mat(dataset_dir: Path) -> Path:
    """A tiny original release: cuhk-03.mat (HDF5, as MATLAB v7.3 writes it) and the two protocol .mat files.

    Two camera pairs with 3 and 2 people, 4 of the 10 image cells filled (2 per view);
    the protocol puts people 1-3 (in file order) in training, 4-5 in the test set.
    """
    import h5py
    import numpy as np
    import scipy.io

    (dataset_dir / "cuhk03_release").mkdir(parents=True)
    persons, filled = (3, 2), (0, 1, 5, 6)
    with h5py.File(dataset_dir / "cuhk03_release" / "cuhk-03.mat", "w") as mat:
        count = iter(range(10**6))

        def ref(data):  # MATLAB cells are datasets of references, stored transposed
            return mat.create_dataset(f"refs/{next(count)}", data=data).ref

        for kind in ("detected", "labeled"):
            pairs = []
            for pair, num in enumerate(persons):
                cell = np.empty((10, num), dtype=h5py.ref_dtype)
                for person in range(num):
                    for image in range(10):
                        pixels = np.full((3, 24, 48), 40 * pair + person, np.uint8)
                        cell[image, person] = ref(pixels if image in filled else np.zeros(2, np.uint64))
                pairs.append(ref(cell))
            mat.create_dataset(kind, data=np.array([pairs], dtype=h5py.ref_dtype))
        mat.create_dataset("testsets", data=np.array([[ref(np.array([[1.0, 2.0], [3.0, 1.0]]))]], h5py.ref_dtype))
    names = [
        f"{pair + 1}_{person + 1:03d}_{1 if image < 5 else 2}_{image + 1:02d}.png"
        for pair, num in enumerate(persons)
        for person in range(num)
        for image in filled
    ]
    labels = [index // len(filled) + 1 for index in range(len(names))]
    test = [i + 1 for i in range(len(names)) if labels[i] > 3]
    query = [i for i in test if names[i - 1].split("_")[2] == "1"]
    filelist = np.empty((len(names), 1), dtype=object)
    filelist[:, 0] = names
    protocol = {
        "train_idx": np.array([[i + 1] for i in range(len(names)) if labels[i] <= 3]),
        "labels": np.array(labels)[:, None],
        "query_idx": np.array(query)[:, None],
        "gallery_idx": np.array([i for i in test if i not in query])[:, None],
        "filelist": filelist,
    }
    for kind in ("detected", "labeled"):
        scipy.io.savemat(dataset_dir / f"cuhk03_new_protocol_config_{kind}.mat", protocol)
    return dataset_dir


def test_cuhk03_mat_through_torchreid_end_to_end(tmp_path):
    """torchreid's own reader extracts a (tiny, fake) cuhk-03.mat in a folder not named cuhk03."""
    dataset_dir = make_cuhk03_mat(tmp_path / "my-cuhk03")
    out = tmp_path / "view"
    result = import_dataset("cuhk03", dataset_dir, out, split="labeled")
    assert (dataset_dir / "splits_new_labeled.json").is_file() and not (tmp_path / "cuhk03").exists()
    assert result.info["counts"][TRAIN]["ids"] == 3 and result.info["counts"][TRAIN]["images"] == 12
    assert sorted(labels(out, QUERY)) == [(2001, 1), (2001, 1), (2002, 1), (2002, 1)]
    assert sorted({pid for pid, _ in labels(out, TRAIN)}) == [1001, 1002, 1003]
    assert_checks(out, result.info)


# ---------------------------------------------------------------- DukeMTMC-reID


def make_duke(root: Path) -> Path:
    base = root / "dukemtmc-reid" / "DukeMTMC-reID"
    for pid, cam in ((1, 1), (1, 5), (2, 8), (3, 2)):
        crop(base / TRAIN / f"{pid:04d}_c{cam}_f{pid * 1000 + cam:07d}.jpg", pid)
    crop(base / QUERY / "0005_c1_f0000501.jpg", 5)
    for pid, cam in ((5, 3), (5, 4), (7, 6)):
        crop(base / GALLERY / f"{pid:04d}_c{cam}_f{pid * 1000 + cam:07d}.jpg", pid)
    (base / TRAIN / "Thumbs.db").write_bytes(b"")
    return root


def test_dukemtmc_is_checked_and_linked_as_is(tmp_path):
    src = make_duke(tmp_path / "duke")
    out = tmp_path / "view"
    result = import_dataset("dukemtmc", src, out)
    assert "already in the Market-1501 layout" in result.format() and result.info["pid_shift"] == 0
    assert sorted(p.name for p in (out / TRAIN).iterdir()) == [
        "0001_c1_f0001001.jpg",
        "0001_c5_f0001005.jpg",
        "0002_c8_f0002008.jpg",
        "0003_c2_f0003002.jpg",
    ]
    assert result.info["counts"][GALLERY] == {
        "images": 3,
        "ids": 2,
        "cameras": [3, 4, 6],
        "distractor_images": 0,
        "junk_images": 0,
    }
    assert_checks(out, result.info)
    crop(src / "dukemtmc-reid" / "DukeMTMC-reID" / QUERY / "0006_c9_f0000601.jpg")
    with pytest.raises(ImportProblems, match="camera 9 outside"):
        import_dataset("dukemtmc", src, tmp_path / "view2")


# ---------------------------------------------------------------- registry and CLI


def test_registry_and_options():
    assert importer_names() == ["cuhk03", "dukemtmc", "msmt17"]
    with pytest.raises(ConfigError, match="unknown dataset format 'viper'; known: cuhk03, dukemtmc, msmt17"):
        import_dataset("viper", ".", "out")
    with pytest.raises(ConfigError, match="do not apply"):
        import_dataset("dukemtmc", ".", "out", split="labeled")


def test_cli_prints_counts_and_the_next_command(tmp_path):
    src = make_msmt17(tmp_path / "src")
    out = tmp_path / "view"
    runner = CliRunner()
    done = runner.invoke(app, ["data", "import", "msmt17", str(src), str(out)])
    assert done.exit_code == 0, done.output
    assert f"now: augreid data check {out}" in done.output
    assert "bounding_box_train" in done.output and "1,2,3,12,15" in done.output
    failed = runner.invoke(app, ["data", "import", "msmt17", str(tmp_path / "missing"), str(out)])
    assert failed.exit_code == 2 and "does not exist" in failed.output
