"""CUHK03 as a Market-layout view, from either of its two releases (``--split detected|labeled``).

* **CUHK03-NP** (Zhong et al.'s 767/700 release, already in the Market layout):
  ``SRC/detected/`` and ``SRC/labeled/`` (or ``SRC/cuhk03-np/...``) each hold
  ``bounding_box_train``, ``query`` and ``bounding_box_test``. The chosen one is checked
  and linked as is, file names kept.
* **The original ``cuhk-03.mat``**, laid out as torchreid expects
  (``SRC/cuhk03_release/cuhk-03.mat`` and ``SRC/cuhk03_new_protocol_config_{detected,labeled}.mat``,
  or the same under ``SRC/cuhk03/``). torchreid's own CUHK03 reader extracts the images
  (PNG, into ``SRC/images_detected/`` and ``SRC/images_labeled/``: it writes into the
  source folder) and writes the new-protocol (767/700) split ``splits_new_{split}.json``;
  this is skipped when both are already there. augreid then reads that json.

torchreid's json numbers training people 0..766 and test people by the protocol's
labels, two numberings that overlap. The view therefore takes the identity from
torchreid's file name ``{pair}_{person:03d}_{view}_{image:02d}.png``: Market pid =
``pair * 1000 + person`` (never 0, the same person in every split), camera = view
(1 or 2, as in CUHK03-NP), sequence = camera pair.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from augreid.data.importers import ImportEntry, ImportPlan, as_is_entries, check_options
from augreid.data.market import GALLERY, QUERY, TRAIN
from augreid.errors import ConfigError, DatasetError

CHOICES = {"split": ("detected", "labeled")}
RAW_MAT = "cuhk03_release/cuhk-03.mat"
PROTOCOL_MAT = "cuhk03_new_protocol_config_{split}.mat"
SPLIT_JSON = "splits_new_{split}.json"
IMAGE_DIR = "images_{split}"
# torchreid's extracted names: camera pair, person in the pair, view (1/2), image (1-10)
TORCHREID_NAME = re.compile(r"^(\d+)_(\d+)_([12])_(\d+)(\.\w+)$")
PERSONS_PER_PAIR = 1000


def plan_cuhk03(root: Path, options: dict[str, Any]) -> ImportPlan:
    """The import plan of CUHK03-NP or of torchreid's extraction of ``cuhk-03.mat`` (run first if needed)."""
    opts = check_options("cuhk03", options, CHOICES)
    split = opts["split"]
    np_base = find_np_root(root, split)
    if np_base is not None:
        entries, problems = as_is_entries(np_base)
        note = f"CUHK03-NP ({split}) is already in the Market-1501 layout: checked and linked as is, names kept"
        return ImportPlan(
            "cuhk03",
            np_base,
            entries,
            opts,
            split={s: f"{split}/{s}/" for s in (TRAIN, QUERY, GALLERY)},
            notes=[note],
            meta={"release": "CUHK03-NP", "protocol": "new (767/700)"},
            problems=problems,
        )
    for dataset_dir in (root, root / "cuhk03"):
        if (dataset_dir / RAW_MAT).is_file() or (dataset_dir / SPLIT_JSON.format(split=split)).is_file():
            if not torchreid_output_present(dataset_dir, split):
                extract_with_torchreid(dataset_dir, labeled=split == "labeled")
            return plan_from_torchreid_output(dataset_dir, split, opts)
    raise DatasetError(
        f"{root} is neither CUHK03-NP (no {split}/bounding_box_train/ in it or in cuhk03-np/) nor the original "
        f"release (no {RAW_MAT} nor {SPLIT_JSON.format(split=split)} in it or in cuhk03/)"
    )


def find_np_root(root: Path, split: str) -> Path | None:
    """The CUHK03-NP folder of ``split``; ``root`` itself if it is one and not the other split's."""
    for candidate in (root / split, root / "cuhk03-np" / split):
        if (candidate / TRAIN).is_dir():
            return candidate
    if (root / TRAIN).is_dir():
        other = [s for s in CHOICES["split"] if s != split][0]
        if root.name == other:
            raise ConfigError(f"{root} holds CUHK03-NP's {other} boxes but --split is {split}: pass --split {other}")
        return root
    return None


def torchreid_output_present(dataset_dir: Path, split: str) -> bool:
    """Whether torchreid's extraction already left the split json and the image folder of ``split``."""
    return (dataset_dir / SPLIT_JSON.format(split=split)).is_file() and (
        dataset_dir / IMAGE_DIR.format(split=split)
    ).is_dir()


def extract_with_torchreid(dataset_dir: Path, labeled: bool) -> None:
    """Run torchreid's CUHK03 reader on ``dataset_dir``: it extracts the images and writes the split jsons.

    The input files are checked first and all missing ones named together.
    """
    required = [RAW_MAT] + [PROTOCOL_MAT.format(split=s) for s in CHOICES["split"]]
    missing = [str(dataset_dir / r) for r in required if not (dataset_dir / r).is_file()]
    if missing:
        raise DatasetError(f"{dataset_dir}: torchreid's CUHK03 reader needs these missing files: {', '.join(missing)}")
    try:
        from torchreid.reid.data.datasets.image.cuhk03 import CUHK03
    except ImportError as err:
        raise DatasetError(f"reading {dataset_dir / RAW_MAT} needs torchreid ({err})") from None
    here = dataset_dir.absolute()
    # torchreid reads ROOT/<dataset_dir>/...; name the folder the user has instead of 'cuhk03'.
    reader = type("CUHK03Here", (CUHK03,), {"dataset_dir": here.name})
    try:
        reader(root=str(here.parent), split_id=0, cuhk03_labeled=labeled, cuhk03_classic_split=False, verbose=False)
    except ImportError as err:
        raise DatasetError(f"torchreid's CUHK03 extraction needs h5py, imageio and scipy ({err})") from None
    except (OSError, KeyError, ValueError, IndexError, AssertionError, RuntimeError) as err:
        raise DatasetError(f"torchreid could not extract {here / RAW_MAT}: {err}") from None


def plan_from_torchreid_output(dataset_dir: Path, split: str, opts: dict[str, str]) -> ImportPlan:
    """The plan from torchreid's ``splits_new_{split}.json`` (its first split) and ``images_{split}/``.

    Paths in the json are absolute where torchreid ran; an image is looked for under
    ``images_{split}/`` first, so a moved folder still imports.
    """
    json_path = dataset_dir / SPLIT_JSON.format(split=split)
    img_dir = dataset_dir / IMAGE_DIR.format(split=split)
    plan = ImportPlan(
        "cuhk03",
        dataset_dir,
        options=opts,
        split={
            TRAIN: f"{json_path.name} train",
            QUERY: f"{json_path.name} query",
            GALLERY: f"{json_path.name} gallery",
        },
        notes=[f"CUHK03 {split} from cuhk-03.mat via torchreid (new protocol 767/700); pid = pair * 1000 + person"],
        meta={
            "release": "cuhk-03.mat (torchreid extraction)",
            "protocol": "new (767/700)",
            "pid_rule": f"market pid = camera pair * {PERSONS_PER_PAIR} + person index in the pair "
            "(from torchreid's file name; the json's pids are not kept)",
            "camera_rule": "market camera = view within the camera pair (1 or 2); sequence s = camera pair",
        },
    )
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as err:
        plan.problems.append(f"{json_path}: unreadable ({err})")
        return plan
    if not isinstance(data, list) or not data or not isinstance(data[0], dict):
        plan.problems.append(f"{json_path}: expected torchreid's list of splits, found {type(data).__name__}")
        return plan
    for market_split, key in ((TRAIN, "train"), (QUERY, "query"), (GALLERY, "gallery")):
        items = data[0].get(key)
        if not isinstance(items, list):
            plan.problems.append(f"{json_path}: no {key!r} list")
            continue
        labels: dict[int, int] = {}  # market pid -> the json's pid, which must agree within a split
        for index, item in enumerate(items):
            where = f"{json_path}: {key}[{index}]"
            if not isinstance(item, list) or len(item) < 3 or not isinstance(item[0], str):
                plan.problems.append(f"{where}: expected [path, pid, camid], got {item!r}")
                continue
            name = Path(item[0]).name
            match = TORCHREID_NAME.match(name)
            if match is None:
                plan.problems.append(f"{where}: {name!r} is not torchreid's PAIR_PERSON_VIEW_IMAGE.png name")
                continue
            pair, person, view, image = (int(g) for g in match.groups()[:4])
            if not 0 < person < PERSONS_PER_PAIR:
                plan.problems.append(f"{where}: person index {person} outside 1-{PERSONS_PER_PAIR - 1}")
                continue
            pid = pair * PERSONS_PER_PAIR + person
            if labels.setdefault(pid, item[1]) != item[1]:
                plan.problems.append(f"{where}: {name} has pid {item[1]}, other images of its person {labels[pid]}")
            market_name = f"{pid:04d}_c{view}s{pair}_{image:06d}_00{match.group(5).lower()}"
            plan.entries.append(ImportEntry(market_split, market_name, _locate(item[0], img_dir)))
    return plan


def _locate(path: str, img_dir: Path) -> Path:
    """The image under ``img_dir`` if there, else the path the json names (absent: reported by the view)."""
    local = img_dir / Path(path).name
    if local.is_file() or not Path(path).is_absolute():
        return local
    return Path(path) if Path(path).is_file() else local
