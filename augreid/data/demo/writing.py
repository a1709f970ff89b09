"""Writing the demo dataset to disk: argument checks, the atomic build, and the swap into place."""

from __future__ import annotations

import os
import shutil
import time
import uuid
from pathlib import Path

import numpy as np

from augreid.data.demo.common import DEMO_VERSION, DESCRIPTION, IMAGE_H, IMAGE_W, JPEG_QUALITY, MAX_CAMERAS, MAX_PID
from augreid.data.demo.files import foreign_files
from augreid.data.demo.shots import encode_demo_jpeg, plan_dataset, render_shot
from augreid.data.keypoints import write_keypoints_csv
from augreid.data.market import MARKET_DIRNAME, SPLITS, TRAIN
from augreid.errors import ConfigError, DatasetError
from augreid.io import atomic_write_json


# ---------------------------------------------------------------- writing


def _check_args(num_train_ids: int, num_test_ids: int, num_cameras: int) -> None:
    if not 2 <= num_cameras <= MAX_CAMERAS:
        raise ConfigError(
            f"num_cameras={num_cameras}: must be 2..{MAX_CAMERAS} (torchreid's Market1501 accepts c1..c6)"
        )
    if num_train_ids < 1 or num_test_ids < 1:
        raise ConfigError(f"num_train_ids={num_train_ids}, num_test_ids={num_test_ids}: both must be >= 1")
    if num_train_ids + num_test_ids > MAX_PID:
        raise ConfigError(f"{num_train_ids + num_test_ids} identities: at most {MAX_PID} fit Market-1501 names")


def is_demo_dataset(folder: Path) -> bool:
    """``folder`` was written by :func:`make_demo_dataset` (it holds ``demo.json``)."""
    return (folder / "demo.json").is_file()


def make_demo_dataset(
    out: str | Path, seed: int = 0, *, num_train_ids: int = 60, num_test_ids: int = 44, num_cameras: int = 5
) -> Path:
    """Generate the demo dataset into ``out`` (atomically) and return ``Path(out)``.

    The dataset is built in a temporary sibling folder and renamed into place, so an
    interrupted run never leaves a half dataset. An existing demo dataset in ``out``
    is replaced; any other non-empty folder is refused.
    """
    _check_args(num_train_ids, num_test_ids, num_cameras)
    out = Path(out).expanduser()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not is_demo_dataset(out))):
        raise DatasetError(f"{out} exists and is not a demo dataset folder: refusing to overwrite it")
    foreign = foreign_files(out) if out.is_dir() and is_demo_dataset(out) else []
    if foreign:
        shown = ", ".join(str(p.relative_to(out)) for p in foreign[:3]) + (" ..." if len(foreign) > 3 else "")
        raise DatasetError(
            f"{out} holds {len(foreign)} file(s) the demo generator did not write ({shown}): refusing to "
            "replace the folder; move them elsewhere or choose another folder"
        )
    start = time.perf_counter()
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.parent / f".{out.name}.building-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        counts = _build(tmp, seed, num_train_ids, num_test_ids, num_cameras)
        info = {
            "version": DEMO_VERSION,
            "seed": seed,
            "description": DESCRIPTION,
            "num_train_ids": num_train_ids,
            "num_test_ids": num_test_ids,
            "cameras": list(range(1, num_cameras + 1)),
            "counts": counts,
            "image_size": [IMAGE_H, IMAGE_W],
            "jpeg_quality": JPEG_QUALITY,
            "generation_seconds": round(time.perf_counter() - start, 3),
        }
        atomic_write_json(tmp / "demo.json", info)
        _swap_into_place(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return out


def _build(tmp: Path, seed: int, num_train_ids: int, num_test_ids: int, num_cameras: int) -> dict:
    shots, people, cameras = plan_dataset(seed, num_train_ids, num_test_ids, num_cameras)
    base = tmp / MARKET_DIRNAME
    for split in SPLITS:
        (base / split).mkdir(parents=True)
    tables: dict[str, dict[str, np.ndarray]] = {"train": {}, "test": {}}
    counts: dict[str, dict] = {}
    for shot in shots:
        rendered = render_shot(shot, people, cameras)
        (base / shot.split / shot.name).write_bytes(encode_demo_jpeg(rendered.image))
        if shot.pid < 0:
            continue  # junk belongs to no split, so it has no keypoint row
        tables["train" if shot.split == TRAIN else "test"][shot.name] = rendered.pose
    write_keypoints_csv(tmp / "demo-annotation-train.csv", tables["train"])
    write_keypoints_csv(tmp / "demo-annotation-test.csv", tables["test"])
    for split in SPLITS:
        kept = [s for s in shots if s.split == split and s.pid >= 0]
        counts[split] = {
            "images": len(kept),
            "ids": len({s.pid for s in kept if s.pid > 0}),
            "distractors": sum(s.pid == 0 for s in kept),
            "junk": sum(s.split == split and s.pid < 0 for s in shots),
        }
    return counts


def _swap_into_place(tmp: Path, out: Path) -> None:
    """Rename the finished folder onto ``out``; an old demo there is moved aside first, then removed."""
    old = None
    if out.exists():
        old = out.parent / f".{out.name}.old-{os.getpid()}-{uuid.uuid4().hex[:8]}"
        try:
            os.replace(out, old)
        except FileNotFoundError:
            old = None  # someone else removed it meanwhile
    try:
        os.replace(tmp, out)
    except OSError:
        # A concurrent generator won the race: its copy is identical (deterministic), keep it.
        if not is_demo_dataset(out):
            raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
