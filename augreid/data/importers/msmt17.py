"""MSMT17 (V1 and V2) as a Market-layout view.

MSMT17 ships images in a training and a test folder and four list files, each line
``relative/path.jpg PID`` (paths relative to the folder of that list). As in
torchreid's reader, the folders are ``train/`` and ``test/`` in V1 and
``mask_train_v2/`` and ``mask_test_v2/`` in V2 (faces blurred); either name is accepted
in either version. The camera is the third ``_`` field of the file name
(``0000_000_01_0303morning_0015_0.jpg`` -> camera 1; MSMT17 has cameras 1-15).

Splits: ``list_train.txt`` and ``list_val.txt`` -> ``bounding_box_train`` (train and
val merged, as torchreid's ``combineall`` does for them), ``list_query.txt`` -> ``query``,
``list_gallery.txt`` -> ``bounding_box_test``.

Identities: MSMT17 numbers people from 0, and pid 0 is a distractor in the Market
layout, so every pid is shifted by +1 (import.json records ``pid_shift: 1``). Training
and test pids are separate numberings in MSMT17 (train pid 5 and test pid 5 are
different people); the shift keeps that. Market names are
``PPPP_c<cam>s1_<n>_00.jpg`` with ``n`` counting the images of one split in list order.
"""

from __future__ import annotations

from pathlib import Path, PurePosixPath
from typing import Any

from augreid.data.importers import ImportEntry, ImportPlan, check_options
from augreid.data.market import GALLERY, QUERY, TRAIN
from augreid.errors import DatasetError

PID_SHIFT = 1
NUM_CAMERAS = 15
# folder role -> accepted names (V1 first, V2 second)
FOLDERS = {"train": ("train", "mask_train_v2"), "test": ("test", "mask_test_v2")}
LISTS = (
    (TRAIN, "train", "list_train.txt"),
    (TRAIN, "train", "list_val.txt"),
    (QUERY, "test", "list_query.txt"),
    (GALLERY, "test", "list_gallery.txt"),
)
RELEASE_DIRS = ("MSMT17_V2", "MSMT17_V1")


def find_msmt17_root(root: Path) -> Path:
    """The folder holding the list files: ``root`` itself, ``root/MSMT17_V*`` or ``root/msmt17/MSMT17_V*``."""
    candidates = [root] + [root / d for d in RELEASE_DIRS] + [root / "msmt17" / d for d in RELEASE_DIRS]
    for candidate in candidates:
        if (candidate / "list_train.txt").is_file() or any((candidate / n).is_dir() for n in FOLDERS["train"]):
            return candidate
    raise DatasetError(
        f"{root} is not an MSMT17 folder: no list_train.txt nor train/ (V1) or mask_train_v2/ (V2) in it, "
        f"in {root}/MSMT17_V1|V2 or in {root}/msmt17/MSMT17_V1|V2"
    )


def parse_list_line(line: str) -> tuple[str, int, int]:
    """``(relative path, pid, camera)`` from one list line, or ``ValueError`` saying what is wrong."""
    parts = line.split()
    if len(parts) != 2:
        raise ValueError(f"expected 'relative/path.jpg PID', got {line.strip()!r}")
    rel, pid_text = parts
    try:
        pid = int(pid_text)
    except ValueError:
        raise ValueError(f"person id {pid_text!r} is not an integer") from None
    if pid < 0:
        raise ValueError(f"negative person id {pid}")
    posix = PurePosixPath(rel)
    if posix.is_absolute() or ".." in posix.parts:
        raise ValueError(f"path {rel!r} leaves its folder")
    fields = posix.name.split("_")
    if len(fields) < 3 or not fields[2].isdigit() or not 1 <= int(fields[2]) <= NUM_CAMERAS:
        raise ValueError(f"no camera 01-{NUM_CAMERAS} in the third '_' field of the file name {posix.name!r}")
    return rel, pid, int(fields[2])


def plan_msmt17(root: Path, options: dict[str, Any]) -> ImportPlan:
    """The import plan of an MSMT17 V1 or V2 release; missing lists and bad lines are collected as problems."""
    opts = check_options("msmt17", options, {})
    base = find_msmt17_root(root)
    folders: dict[str, Path] = {}
    problems: list[str] = []
    for role, names in FOLDERS.items():
        found = [base / n for n in names if (base / n).is_dir()]
        if found:
            folders[role] = found[0]
        else:
            problems.append(f"{base}: no image folder {' or '.join(n + '/' for n in names)}")
    if base.name in RELEASE_DIRS:
        version = base.name[-2:]
    else:
        version = "V2" if folders.get("train", base).name.startswith("mask") else "V1"
    plan = ImportPlan("msmt17", base, options=opts, pid_shift=PID_SHIFT, problems=problems)
    counters = {TRAIN: 0, QUERY: 0, GALLERY: 0}
    seen: set[tuple[str, str]] = set()
    repeated = 0
    for split, role, list_name in LISTS:
        list_path = base / list_name
        plan.split.setdefault(split, "")
        plan.split[split] = " + ".join(filter(None, [plan.split[split], f"{list_name} ({role} folder)"]))
        if not list_path.is_file():
            problems.append(f"{list_path}: list file missing")
            continue
        folder = folders.get(role, base / FOLDERS[role][0])
        for lineno, line in enumerate(list_path.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
            if not line.strip():
                continue
            try:
                rel, pid, cam = parse_list_line(line)
            except ValueError as err:
                problems.append(f"{list_path}:{lineno}: {err}")
                continue
            if (split, rel) in seen:
                repeated += 1
                continue
            seen.add((split, rel))
            counters[split] += 1
            suffix = PurePosixPath(rel).suffix.lower() or ".jpg"
            name = f"{pid + PID_SHIFT:04d}_c{cam}s1_{counters[split]:06d}_00{suffix}"
            plan.entries.append(ImportEntry(split, name, folder / rel))
    plan.notes.append(
        f"MSMT17 {version}: person ids shifted by +{PID_SHIFT} (MSMT17 starts at 0, Market's 0 is a distractor)"
    )
    plan.notes.append("list_train.txt and list_val.txt both went to bounding_box_train")
    if repeated:
        plan.notes.append(f"{repeated} list line(s) repeated an image already in the same split and were skipped")
    plan.meta = {
        "release": f"MSMT17_{version}",
        "folders": {role: path.name for role, path in folders.items()},
        "pid_rule": f"market pid = MSMT17 pid + {PID_SHIFT}",
        "camera_rule": "market camera = the third '_' field of the MSMT17 file name (1-15)",
        "name_rule": "PPPP_c<cam>s1_<n>_00 with n counting a split's images in list order",
    }
    return plan
