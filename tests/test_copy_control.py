"""``augreid synth-copy``: the copy-condition control set of a synth folder.

The source synth set is made on the demo dataset with ``synth_double.PasteGenerator``
(a TEST DOUBLE of a generator, see tests/synth_double.py): seconds, no trained model.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest

from augreid.data.market import TRAIN, load_market, parse_market_name
from augreid.errors import ConfigError, DatasetError
from augreid.synth import ControlResult, copy_control
from synth_helpers import IDS, K, read_manifest, run, small_config

PER_ID = 2  # two condition images per identity: fewer conditions than images, more than identities


@pytest.fixture(scope="module")
def synth_set(demo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("control") / "synth"
    run(out, demo_root, config=small_config(per_id=PER_ID))
    return out


@pytest.fixture(scope="module")
def control(synth_set: Path, demo_root: Path) -> ControlResult:
    return copy_control(synth_set, synth_set.parent / "copy", data=demo_root)


def _images(folder: Path) -> dict[str, Path]:
    return {p.name: p for p in sorted((folder / "bounding_box_train").iterdir())}


def _copy_of(synth_set: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "synth-edited"
    shutil.copytree(synth_set, copy)
    return copy


def test_copies_are_the_condition_images_under_the_synthetic_names(
    synth_set: Path, control: ControlResult, demo_root: Path
) -> None:
    source_rows = read_manifest(synth_set)
    copies, generated = _images(control.out), _images(synth_set)
    real_root = load_market(demo_root).root
    assert len(source_rows) == IDS * PER_ID * K
    assert sorted(copies) == sorted(generated) == sorted(Path(r["file"]).name for r in source_rows)
    for row in source_rows:
        name = Path(row["file"]).name
        condition = real_root / row["source"]  # the manifest writes bounding_box_train/NAME
        assert copies[name].read_bytes() == condition.read_bytes()
        assert copies[name].read_bytes() != generated[name].read_bytes()  # not the generated image
        assert parse_market_name(name)[0] == row["pid"]
    assert control.counts == {"images": IDS * PER_ID * K, "identities": IDS, "conditions": IDS * PER_ID}


def test_conditions_are_training_images_of_the_same_identity(control: ControlResult, demo_root: Path) -> None:
    real = load_market(demo_root)
    train = {r.name: r.pid for r in real.train}
    held_out = {r.name for r in (*real.query, *real.gallery)}
    rows = read_manifest(control.out)
    assert rows
    for row in rows:
        folder, _, name = row["condition"].rpartition("/")
        assert folder == TRAIN and name in train and name not in held_out
        assert train[name] == row["pid"]
    assert {row["pid"] for row in rows} <= set(real.pid2label)
    assert not {row["pid"] for row in rows} & {r.pid for r in real.query}  # no test identity


def test_manifest_and_synth_json(synth_set: Path, control: ControlResult, demo_root: Path) -> None:
    rows = read_manifest(control.out)
    source_rows = read_manifest(synth_set)
    assert [r["file"] for r in rows] == sorted(r["file"] for r in source_rows)
    assert all(r["control"] == "copy-condition" for r in rows)
    by_file = {r["file"]: r for r in source_rows}
    assert all(r["condition"] == by_file[r["file"]]["source"] and r["pid"] == by_file[r["file"]]["pid"] for r in rows)
    info = json.loads((control.out / "synth.json").read_text())
    manifest_sha = hashlib.sha256((synth_set / "manifest.jsonl").read_bytes()).hexdigest()
    assert info["status"] == "complete" and info["control"] == "copy-condition"
    assert info["dataset_fingerprint"] == load_market(demo_root).fingerprint()
    assert (
        info["dataset_fingerprint"] == json.loads((synth_set / "synth.json").read_text())["data"]["dataset_fingerprint"]
    )
    assert info["source_manifest_sha256"] == manifest_sha
    assert info["generator_hash"] == f"copy-condition:{manifest_sha}"
    assert info["source"] == "synth"  # relative to the control folder's parent, never this machine's path
    assert info["counts"] == control.counts


def test_training_accepts_the_control_folder(control: ControlResult, demo_root: Path) -> None:
    from augreid.reid.datasets import load_synthetic_set

    real = load_market(demo_root)
    loaded = load_synthetic_set(control.out, real)
    assert len(loaded.records) == control.counts["images"]
    assert {r.pid for r in loaded.records} == {r["pid"] for r in read_manifest(control.out)}
    assert loaded.provenance()["generator_hash"].startswith("copy-condition:")


def test_training_reads_a_synth_sets_provenance_where_synth_writes_it(
    synth_set: Path, demo_root: Path, tmp_path: Path
) -> None:
    from augreid.reid.datasets import load_synthetic_set

    real = load_market(demo_root)
    info = json.loads((synth_set / "synth.json").read_text())
    assert load_synthetic_set(synth_set, real).provenance()["generator_hash"] == info["generator"]["hash"]
    moved = shutil.copytree(synth_set, tmp_path / "synth")
    info["data"]["dataset_fingerprint"] = "0" * 16
    (moved / "synth.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="made from dataset 0{16}"):
        load_synthetic_set(moved, real)


def test_second_call_is_a_no_op(synth_set: Path, control: ControlResult, demo_root: Path) -> None:
    files = [p for p in control.out.rglob("*") if p.is_file()]
    before = {p: p.stat().st_mtime_ns for p in files}
    again = copy_control(synth_set, control.out, data=demo_root)
    assert again == control
    assert {p: p.stat().st_mtime_ns for p in files} == before
    assert sorted(p for p in control.out.rglob("*") if p.is_file()) == sorted(files)


def test_a_partial_folder_is_redone(synth_set: Path, control: ControlResult, demo_root: Path, tmp_path: Path) -> None:
    out = tmp_path / "partial"
    shutil.copytree(control.out, out)
    (out / "synth.json").unlink()
    first = sorted(_images(out))[0]
    (out / "bounding_box_train" / first).write_bytes(b"half")
    (out / "bounding_box_train" / "0001_c9s1_999999_00.jpg").write_bytes(b"stale")
    result = copy_control(synth_set, out, data=demo_root)
    assert result.counts == control.counts
    assert sorted(_images(out)) == sorted(_images(control.out))
    assert (out / "bounding_box_train" / first).read_bytes() == (
        control.out / "bounding_box_train" / first
    ).read_bytes()
    assert json.loads((out / "synth.json").read_text())["status"] == "complete"


def test_another_source_in_the_same_folder_is_refused(synth_set: Path, control: ControlResult, tmp_path) -> None:
    other = _copy_of(synth_set, tmp_path)
    rows = read_manifest(other)
    (other / rows[-1]["file"]).unlink()
    (other / "manifest.jsonl").write_text("".join(json.dumps(r, sort_keys=True) + "\n" for r in rows[:-1]))
    with pytest.raises(ConfigError, match=r"control set of synth .*not of .*synth-edited"):
        copy_control(other, control.out)


def test_unfinished_source_is_refused(synth_set: Path, tmp_path: Path) -> None:
    source = _copy_of(synth_set, tmp_path)
    info = json.loads((source / "synth.json").read_text())
    (source / "synth.json").write_text(json.dumps({**info, "status": "running"}))
    with pytest.raises(DatasetError, match="unfinished.*running.*augreid synth --out"):
        copy_control(source, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_source_of_another_dataset_is_refused(synth_set: Path, tmp_path: Path) -> None:
    source = _copy_of(synth_set, tmp_path)
    info = json.loads((source / "synth.json").read_text())
    info["data"]["dataset_fingerprint"] = "0" * 16
    (source / "synth.json").write_text(json.dumps(info))
    with pytest.raises(DatasetError, match="made from dataset 0{16}"):
        copy_control(source, tmp_path / "out")


def test_conditions_that_are_not_training_images_of_the_pid_are_all_listed(
    synth_set: Path, demo_root: Path, tmp_path: Path
) -> None:
    source = _copy_of(synth_set, tmp_path)
    rows = read_manifest(source)
    real = load_market(demo_root)
    other_pid = next(r.name for r in real.train if r.pid != rows[1]["pid"])
    rows[0]["source"] = f"query/{real.query[0].name}"
    rows[1]["source"] = f"{TRAIN}/{other_pid}"
    (source / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    with pytest.raises(DatasetError, match="2 problem") as err:
        copy_control(source, tmp_path / "out")
    message = str(err.value)
    assert Path(rows[0]["file"]).name in message and "not a training image" in message
    assert Path(rows[1]["file"]).name in message and f"not pid {rows[1]['pid']}" in message
    assert not (tmp_path / "out").exists()


def test_cli_synth_copy(synth_set: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from augreid.cli import app

    out = tmp_path / "cli-copy"
    result = CliRunner().invoke(app, ["synth-copy", str(synth_set), "--out", str(out), "--no-progress"])
    assert result.exit_code == 0, result.output
    n = IDS * PER_ID * K
    assert f"{n} copies of {IDS * PER_ID} condition images of {IDS} identities -> {out}" in result.output
    assert len(_images(out)) == n
    bad = CliRunner().invoke(app, ["synth-copy", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "not a synth folder" in bad.output
