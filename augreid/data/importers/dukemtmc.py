"""DukeMTMC-reID as a Market-layout view.

DukeMTMC-reID is already in the Market-1501 layout (``bounding_box_train``, ``query``,
``bounding_box_test``; names ``0001_c2_f0046182.jpg``). The importer only checks it
(every name parses, cameras 1-8) and links it as is, names kept, so that keypoint
CSVs made for DukeMTMC-reID still match. ``SRC`` may be the ``DukeMTMC-reID`` folder,
its parent, or torchreid's ``dukemtmc-reid`` folder above that.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from augreid.data.importers import ImportPlan, as_is_entries, check_options
from augreid.data.market import GALLERY, QUERY, SPLITS, TRAIN, parse_market_name
from augreid.errors import DatasetError

FOLDER = "DukeMTMC-reID"
NUM_CAMERAS = 8


def find_duke_root(root: Path) -> Path:
    """The folder holding the three split folders."""
    for candidate in (root, root / FOLDER, root / "dukemtmc-reid" / FOLDER):
        if (candidate / TRAIN).is_dir():
            return candidate
    raise DatasetError(
        f"{root} is not a DukeMTMC-reID folder: no {TRAIN}/ in it, in {root / FOLDER} "
        f"or in {root / 'dukemtmc-reid' / FOLDER} (expected folders: {', '.join(SPLITS)})"
    )


def plan_dukemtmc(root: Path, options: dict[str, Any]) -> ImportPlan:
    """The import plan of DukeMTMC-reID: its own images under their own names."""
    opts = check_options("dukemtmc", options, {})
    base = find_duke_root(root)
    entries, problems = as_is_entries(base)
    for entry in entries:
        _, cam = parse_market_name(entry.name)
        if not 1 <= cam <= NUM_CAMERAS:
            problems.append(f"{entry.source}: camera {cam} outside DukeMTMC-reID's 1-{NUM_CAMERAS}")
    return ImportPlan(
        "dukemtmc",
        base,
        entries,
        opts,
        split={split: f"{split}/" for split in (TRAIN, QUERY, GALLERY)},
        notes=["DukeMTMC-reID is already in the Market-1501 layout: checked and linked as is, names kept"],
        meta={"release": "DukeMTMC-reID"},
        problems=problems,
    )
