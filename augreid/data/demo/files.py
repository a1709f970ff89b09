"""Which files of an existing demo folder the demo generator wrote, so that regenerating never deletes a user's.

``augreid demo-data OUT`` replaces an older demo in ``OUT``; a file there that
the generator did not write (notes, the user's own images) makes it refuse.
"""

from __future__ import annotations

import json
from pathlib import Path

from augreid.data.demo.common import DEMO_VERSION
from augreid.data.demo.shots import plan_dataset
from augreid.data.market import MARKET_DIRNAME
from augreid.errors import AugreidError

OWN_FILES = ("demo.json", "demo-annotation-train.csv", "demo-annotation-test.csv")


def _own_files(info: dict) -> set[str] | None:
    """Relative paths a demo build with ``info`` (its demo.json) writes; ``None`` when unknown."""
    try:
        if info.get("version") != DEMO_VERSION:
            return None  # another generator version: its file names cannot be replayed
        shots, _, _ = plan_dataset(
            int(info["seed"]), int(info["num_train_ids"]), int(info["num_test_ids"]), len(info["cameras"])
        )
    except (KeyError, TypeError, ValueError, AugreidError):
        return None
    own = {f"{MARKET_DIRNAME}/{shot.split}/{shot.name}" for shot in shots}
    return own | set(OWN_FILES)


def foreign_files(out: Path) -> list[Path]:
    """Files in an existing demo folder that a demo build did not write (a user's additions).

    Without a replayable demo.json only the demo's file kinds count as its own.
    """
    try:
        info = json.loads((out / "demo.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        info = {}
    own = _own_files(info if isinstance(info, dict) else {})
    foreign = []
    for path in sorted(p for p in out.rglob("*") if not p.is_dir()):
        rel = path.relative_to(out).as_posix()
        if own is not None:
            mine = rel in own
        else:
            mine = rel in OWN_FILES or (
                rel.startswith(f"{MARKET_DIRNAME}/") and rel.endswith(".jpg") and rel.count("/") == 2
            )
        if not mine:
            foreign.append(path)
    return foreign
