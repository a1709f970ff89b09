"""augreid synth: plan, counts, provenance, hygiene (no test data read), exact resume, bad input.

Most tests use ``synth_double.PasteGenerator``, a TEST DOUBLE of the PG2
generator interface (it pastes the condition image into the target pose);
tests/test_synth_pg2.py runs synth with a real, freshly initialised PG2 checkpoint.
"""

from __future__ import annotations

import builtins
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from augreid.data.keypoints import read_keypoints_csv, visible, write_keypoints_csv
from augreid.data.market import QUERY, GALLERY, TRAIN, load_market, parse_market_name
from augreid.data.market import ImageRecord
from augreid.data.sources import resolve_source
from augreid.errors import ConfigError
from augreid.synth import SynthConfig, load_synth_config, parse_min_quality
from augreid.synth.plan import choose_conditions, make_batches, make_jobs, shard
from augreid.synth.quality import foreground_mask, pose_agreement
from synth_double import Interrupted, PasteGenerator
from synth_helpers import IDS, K, image_bytes, read_manifest, run, small_config


@pytest.fixture(scope="module")
def full_run(demo_root, tmp_path_factory):
    out = tmp_path_factory.mktemp("synth") / "full"
    return run(out, demo_root)


# ---------------------------------------------------------------- plan


def _rec(name: str) -> ImageRecord:
    pid, cam = parse_market_name(name)
    return ImageRecord(TRAIN, name, pid, cam, Path(name))


def test_conditions_prefer_complete_poses_and_skip_ids_without_keypoints() -> None:
    full = np.tile(np.array([[40, 30]], dtype=np.int32), (18, 1))
    partial = full.copy()
    partial[9:] = -1  # legs, left hip and face gone
    no_torso = full.copy()
    no_torso[[2, 5]] = -1  # shoulders missing: torso incomplete even with many joints
    records = [
        _rec(n)
        for n in (
            "0001_c1s1_000001_00.jpg",
            "0001_c1s1_000002_00.jpg",
            "0001_c2s1_000003_00.jpg",
            "0002_c1s1_000004_00.jpg",
            "0003_c1s1_000005_00.jpg",
        )
    ]
    poses = {
        "0001_c1s1_000001_00.jpg": no_torso,
        "0001_c1s1_000002_00.jpg": partial,
        "0001_c2s1_000003_00.jpg": full,
        "0002_c1s1_000004_00.jpg": np.full((18, 2), -1, dtype=np.int32),  # all missing
        # 0003 has no keypoint row at all
    }
    conditions = choose_conditions(records, poses, per_id=2)
    # complete pose first, then more joints (16, torso incomplete) before fewer (9)
    assert conditions.by_pid == {1: ["0001_c2s1_000003_00.jpg", "0001_c1s1_000001_00.jpg"]}
    assert conditions.skipped_pids == [2, 3]
    jobs = make_jobs(conditions, 4, camera=7)
    assert len(jobs) == 2 * 4 and len({j.file for j in jobs}) == 8
    for job in jobs:
        assert parse_market_name(job.file) == (1, 7)
    batches = make_batches(jobs, 3)
    assert [len(b) for b in batches] == [3, 3, 2]
    parts = [shard(batches, r, 2) for r in range(2)]
    assert sorted(parts[0] + parts[1]) == [0, 1, 2] and not set(parts[0]) & set(parts[1])


def test_config_parsing_and_validation(tmp_path) -> None:
    assert parse_min_quality(["pose=0.5,identity=0.25"]) == {"pose": 0.5, "identity": 0.25}
    with pytest.raises(ConfigError, match="NAME=VALUE"):
        parse_min_quality(["pose"])
    with pytest.raises(ConfigError, match="unknown quality filter"):
        SynthConfig(min_quality={"sharpness": 0.5})
    with pytest.raises(ConfigError, match="--pose-file"):
        SynthConfig(poses="file")
    with pytest.raises(ConfigError, match="kmeans_max_rounds: must be at least 1") as err:
        SynthConfig(kmeans_max_rounds=0, kmeans_n_init=0)
    assert "kmeans_n_init" in str(err.value)  # reported together
    toml = tmp_path / "synth.toml"
    toml.write_text("[synth]\nnum_poses = 4\nbatch_size = 16\n")
    assert load_synth_config(toml, batch_size=8).num_poses == 4
    assert load_synth_config(toml, batch_size=8).batch_size == 8
    toml.write_text("num_pose = 4\n")
    with pytest.raises(ConfigError, match="num_pose: unknown key.*did you mean 'num_poses'"):
        load_synth_config(toml)


# ---------------------------------------------------------------- quality


def test_pose_agreement_measures_foreground_inside_the_mask() -> None:
    rng = np.random.default_rng(0)
    image = np.full((128, 64, 3), 90, dtype=np.uint8) + rng.integers(0, 6, size=(128, 64, 3), dtype=np.uint8)
    mask = np.zeros((128, 64), dtype=bool)
    mask[20:110, 20:44] = True
    inside = image.copy()
    inside[30:100, 24:40] = (200, 40, 40)
    outside = image.copy()
    outside[30:100, 2:18] = (200, 40, 40)
    outside[30:100, 46:62] = (200, 40, 40)
    assert pose_agreement(inside, mask) > 0.95
    assert pose_agreement(outside, mask) < 0.05
    assert pose_agreement(np.full((128, 64, 3), 120, dtype=np.uint8), mask) == 0.0  # nothing there
    # A vertical background gradient (wall above, floor below) is not foreground.
    gradient = np.repeat(np.linspace(40, 220, 128, dtype=np.uint8)[:, None, None], 64, axis=1).repeat(3, axis=2)
    assert foreground_mask(gradient).mean() < 0.02


def test_pose_agreement_prefers_the_true_pose_on_real_images(demo_root) -> None:
    """On demo images, an image's own pose explains its foreground better than another image's pose."""
    from augreid.data.market import read_image
    from augreid.data.pairs import is_pose_usable
    from augreid.synth.quality import target_masks

    source = resolve_source(demo_root)
    poses = source.train_poses()
    records = [r for r in source.load().train if r.name in poses and is_pose_usable(poses[r.name], min_visible=14)][:60]
    own, other = [], []
    for i, record in enumerate(records):
        image = np.asarray(read_image(record.path))
        mismatched = records[(i + 37) % len(records)].name
        own.append(pose_agreement(image, target_masks([poses[record.name]], (128, 64), 8)[0]))
        other.append(pose_agreement(image, target_masks([poses[mismatched]], (128, 64), 8)[0]))
    assert np.mean(own) > np.mean(other) + 0.05
    assert np.mean(np.array(own) > np.array(other)) > 0.7


# ---------------------------------------------------------------- end to end


def test_counts_layout_and_provenance(full_run, demo_root) -> None:
    out = full_run.out
    summary = json.loads((out / "synth.json").read_text())
    dataset = load_market(resolve_source(demo_root).root)
    camera = max(r.camid for r in dataset.train + dataset.query + dataset.gallery) + 1
    assert summary["status"] == "complete" and summary["camera"] == camera
    counts = summary["counts"]
    assert counts["identities"] == IDS and counts["target_poses"] == K
    assert counts["planned"] == counts["kept"] == IDS * K * 1
    assert counts["images_on_disk"] == IDS * K and not counts["unexpected_files"]
    assert summary["data"]["dataset_fingerprint"] == dataset.fingerprint()
    assert summary["generator"]["hash"] == "test-double-v1"
    # The folder is a Market-layout training set of its own camera.
    synthetic = load_market(out, require_eval_splits=False)
    assert len(synthetic.train) == IDS * K
    assert {r.camid for r in synthetic.train} == {camera}
    assert {r.pid for r in synthetic.train} == set(sorted(dataset.pid2label)[:IDS])
    rows = read_manifest(out)
    assert len(rows) == IDS * K
    for row in rows:
        assert (out / row["file"]).is_file()
        assert row["generator"] == "test-double-v1" and row["seed"] == 0
        assert (
            parse_market_name(Path(row["file"]).name)[0] == parse_market_name(Path(row["source"]).name)[0] == row["pid"]
        )
    assert {r["target_pose"] for r in rows} == set(range(K))
    # synth.json summarises the scores the manifest holds.
    pose_scores = [row["quality"]["pose"] for row in rows]
    assert summary["quality"]["pose"]["median"] == round(float(np.median(pose_scores)), 4)
    assert summary["quality"]["pose"]["min"] == min(pose_scores)
    # pasting into the target pose gives high pose agreement
    assert summary["quality"]["pose"]["median"] > 0.8
    for picture in ("contact_sheet.png", "target_poses.png"):
        assert (out / picture).stat().st_size > 1000
    targets = json.loads((out / "target_poses.json").read_text())
    assert len(targets["cluster_sizes"]) == K and sum(targets["cluster_sizes"]) <= len(dataset.train)
    assert len(read_keypoints_csv(out / "target_poses.csv")) == K


def test_condition_choice_prefers_most_complete_pose(full_run, demo_root) -> None:
    poses = resolve_source(demo_root).train_poses()
    dataset = load_market(resolve_source(demo_root).root)
    for row in read_manifest(full_run.out):
        source = Path(row["source"]).name
        same_id = [r.name for r in dataset.train if r.pid == row["pid"] and r.name in poses]
        assert visible(poses[source]).sum() == max(visible(poses[n]).sum() for n in same_id)


def test_generator_is_handed_each_condition_images_own_keypoints(demo_root, tmp_path) -> None:
    gen = PasteGenerator()
    rows = read_manifest(run(tmp_path / "out", demo_root, generator=gen).out)
    poses = resolve_source(demo_root).train_poses()
    handed = np.concatenate(gen.condition_poses)
    assert handed.shape == (len(rows), 18, 2)
    expected = sorted(tuple(poses[Path(r["source"]).name].ravel()) for r in rows)
    assert sorted(tuple(p.ravel()) for p in handed) == expected


def test_per_id_multiplies_counts(demo_root, tmp_path) -> None:
    result = run(tmp_path / "two", demo_root, config=small_config(per_id=2, max_ids=3, num_workers=1))
    assert result.counts["planned"] == result.counts["kept"] == 3 * K * 2
    sources = {(r["pid"], r["source"]) for r in read_manifest(tmp_path / "two")}
    assert len(sources) == 3 * 2


def test_pose_file_mode_reproduces_saved_targets(full_run, demo_root, tmp_path) -> None:
    """target_poses.csv of a run, given back with --poses file, yields the same images."""
    config = small_config(poses="file", pose_file=str(full_run.out / "target_poses.csv"))
    result = run(tmp_path / "again", demo_root, config=config)
    assert result.summary["targets"]["mode"] == "file" and result.counts["target_poses"] == K
    assert image_bytes(tmp_path / "again") == image_bytes(full_run.out)


# ---------------------------------------------------------------- scientific hygiene


def _train_only_copy(demo_root: Path, dest: Path) -> Path:
    source = resolve_source(demo_root)
    shutil.copytree(source.root / TRAIN, dest / "Market-1501-v15.09.15" / TRAIN)
    shutil.copy(source.train_keypoints, dest / source.train_keypoints.name)
    return dest


def test_synth_never_needs_query_gallery_or_test_keypoints(demo_root, tmp_path, full_run) -> None:
    data = _train_only_copy(demo_root, tmp_path / "trainonly")
    assert resolve_source(data).test_keypoints is None
    result = run(tmp_path / "out", data)
    assert result.counts["kept"] == IDS * K
    # Same images as with the full dataset: nothing from the test side influenced them.
    assert image_bytes(tmp_path / "out") == image_bytes(full_run.out)


def test_synth_opens_no_test_file(demo_root, tmp_path, monkeypatch) -> None:
    source = resolve_source(demo_root)
    opened: list[str] = []
    real_open = builtins.open

    def spy(file, *args, **kwargs):
        opened.append(str(file))
        return real_open(file, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", spy)  # PIL and the CSV reader open files through it
    run(tmp_path / "out", demo_root, config=small_config(poses="random"))
    monkeypatch.undo()
    forbidden = [str(source.root / QUERY), str(source.root / GALLERY), str(source.test_keypoints)]
    assert any(str(source.root / TRAIN) in p for p in opened)  # the spy saw the image reads
    assert str(source.train_keypoints) in opened
    assert not [p for p in opened if any(p.startswith(f) for f in forbidden)]


def test_targets_and_identities_come_from_training_data_only(full_run, demo_root) -> None:
    source = resolve_source(demo_root)
    train_names = set(source.train_poses())
    dataset = load_market(source.root)
    test_pids = {r.pid for r in dataset.query + dataset.gallery}
    targets = json.loads((full_run.out / "target_poses.json").read_text())
    assert set(targets["sources"]) <= train_names
    for row in read_manifest(full_run.out):
        assert Path(row["source"]).name in train_names and row["pid"] not in test_pids
        assert row["target_source"] in train_names


def test_test_poses_are_refused_as_pose_file(demo_root, tmp_path) -> None:
    source = resolve_source(demo_root)
    with pytest.raises(ConfigError, match="test keypoint file"):
        run(tmp_path / "a", demo_root, config=small_config(poses="file", pose_file=str(source.test_keypoints)))
    copied = write_keypoints_csv(tmp_path / "mine.csv", read_keypoints_csv(source.test_keypoints))
    with pytest.raises(ConfigError, match="query/gallery"):
        run(tmp_path / "b", demo_root, config=small_config(poses="file", pose_file=str(copied)))


# ---------------------------------------------------------------- resume and bad input


def test_interrupted_run_resumes_to_exactly_the_same_set(demo_root, tmp_path, full_run) -> None:
    out = tmp_path / "resumed"
    with pytest.raises(Interrupted):
        run(out, demo_root, generator=PasteGenerator(fail_after=2))
    written = list((out / "bounding_box_train").glob("*.jpg"))
    assert 0 < len(written) < IDS * K
    assert not (out / "manifest.jsonl").exists()
    # Leftovers of a harder kill: a temporary image and a half-written journal line,
    # and of a power cut: a recorded image whose data never reached the disk.
    (out / "bounding_box_train" / ".0001_c9s1_000000_00.jpg.abc.tmp").write_bytes(b"half")
    with open(out / ".progress" / "rank0.jsonl", "a") as handle:
        handle.write('{"file": "0001_c')
    truncated = sorted(written)[0]
    truncated.write_bytes(truncated.read_bytes()[:100])
    gen = PasteGenerator()
    result = run(out, demo_root, generator=gen)
    assert (
        result.summary["timings"]["resumed"] and result.summary["timings"]["already_done_at_start"] == len(written) - 1
    )
    assert len(result.summary["history"]) == 1
    assert gen.calls < len(make_batches(range(IDS * K), 4))  # finished batches were not redone
    assert image_bytes(out) == image_bytes(full_run.out)
    assert read_manifest(out) == read_manifest(full_run.out)
    assert not list(out.rglob("*.tmp"))
    # Running again on a complete folder changes nothing.
    again = PasteGenerator()
    run(out, demo_root, generator=again)
    assert again.calls == 0 and image_bytes(out) == image_bytes(full_run.out)


def test_output_folder_of_a_different_run_is_refused(full_run, demo_root, tmp_path) -> None:
    with pytest.raises(ConfigError, match="different synth run.*num_poses"):
        run(full_run.out, demo_root, config=small_config(num_poses=K + 1))
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ConfigError, match="not a synth output folder"):
        run(other, demo_root)


def test_generator_at_another_resolution_is_refused(demo_root, tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"256x128.*128x64"):
        run(tmp_path / "out", demo_root, generator=PasteGenerator(shape=(256, 128)))
    assert not (tmp_path / "out").exists()


def test_identity_without_keypoints_is_skipped_and_counted(demo_root, tmp_path) -> None:
    data = _train_only_copy(demo_root, tmp_path / "data")
    csv = next(data.glob("*annotation-train.csv"))
    poses = read_keypoints_csv(csv)
    first_pid = min(parse_market_name(n)[0] for n in poses)
    for name in poses:
        if parse_market_name(name)[0] == first_pid:
            poses[name] = np.full((18, 2), -1, dtype=np.int32)
    write_keypoints_csv(csv, poses)
    result = run(tmp_path / "out", data)
    counts = result.counts
    assert counts["identities_skipped_no_keypoints"] == 1 and counts["skipped_pids"] == [first_pid]
    assert counts["identities"] == IDS - 1 and counts["kept"] == (IDS - 1) * K
    assert first_pid not in {r["pid"] for r in read_manifest(tmp_path / "out")}


def test_min_quality_filter_counts_what_it_removes(full_run, demo_root, tmp_path) -> None:
    scores = sorted(r["quality"]["pose"] for r in read_manifest(full_run.out))
    threshold = scores[len(scores) // 2]
    result = run(tmp_path / "filtered", demo_root, config=small_config(min_quality={"pose": threshold}))
    below = sum(s < threshold for s in scores)
    assert 0 < below < len(scores)
    assert result.counts["removed_by_filter"] == {"pose": below} and result.counts["removed_total"] == below
    assert result.counts["kept"] == len(scores) - below == len(read_manifest(tmp_path / "filtered"))
    rejected = [json.loads(x) for x in (tmp_path / "filtered" / "rejected.jsonl").read_text().splitlines()]
    assert len(rejected) == below and all(r["failed"] == ["pose"] for r in rejected)
    assert not any((tmp_path / "filtered" / r["file"]).exists() for r in rejected)
    with pytest.raises(ConfigError, match="re-ID model"):
        run(tmp_path / "x", demo_root, config=small_config(min_quality={"identity": 0.5}))


# ---------------------------------------------------------------- with a real PG2 checkpoint
