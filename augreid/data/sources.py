"""Where data comes from: a user's dataset folder, or the embedded demo dataset.

Every command takes an optional dataset root; when none is given it uses the
demo dataset, generated on first use under ``$AUGREID_HOME`` (default
``~/.cache/augreid``). Generation is deterministic, so the cached copy and a
fresh one are byte-identical.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augreid.data.keypoints import ambiguous_keypoints, keypoint_candidates, read_keypoints_csv
from augreid.data.market import MarketDataset, load_market, resolve_market_root
from augreid.errors import KeypointError
from augreid.io import augreid_home

DEMO_SEED = 0


def demo_root(seed: int = DEMO_SEED) -> Path:
    """The demo dataset for ``seed``, generated on first use."""
    # lazy: the demo renderer imports scipy and matplotlib, which `import augreid.data` should not pay for
    from augreid.data.demo import DEMO_VERSION, make_demo_dataset

    out = augreid_home() / f"demo-seed{seed}"
    marker = out / "demo.json"
    if marker.is_file():
        try:
            if json.loads(marker.read_text()).get("version") == DEMO_VERSION:
                return out
        except json.JSONDecodeError:
            pass
    make_demo_dataset(out, seed=seed)
    return out


@dataclass
class DataSource:
    """A dataset folder and its keypoint files."""

    root: Path  # the folder holding the split folders
    train_keypoints: Path | None
    test_keypoints: Path | None
    is_demo: bool = False
    # Several candidate CSVs beside the data: an error only for a command that needs that kind.
    ambiguous: dict[str, list[Path]] = field(default_factory=dict)

    def load(self) -> MarketDataset:
        return load_market(self.root)

    def train_poses(self) -> dict[str, np.ndarray]:
        if self.train_keypoints is None:
            if "train" in self.ambiguous:
                raise ambiguous_keypoints("train", self.ambiguous["train"])
            raise KeypointError(
                f"no training keypoint CSV found beside {self.root}: pass one with "
                "--train-keypoints, or estimate them with `augreid pose`"
            )
        return read_keypoints_csv(self.train_keypoints)

    def test_poses(self) -> dict[str, np.ndarray]:
        if self.test_keypoints is None:
            if "test" in self.ambiguous:
                raise ambiguous_keypoints("test", self.ambiguous["test"])
            raise KeypointError(f"no test keypoint CSV found beside {self.root}: pass one with --test-keypoints")
        return read_keypoints_csv(self.test_keypoints)


def resolve_source(
    root: str | Path | None = None, train_keypoints: str | Path | None = None, test_keypoints: str | Path | None = None
) -> DataSource:
    """Resolve a dataset root (``None`` = the demo dataset) and its keypoint CSVs."""
    is_demo = root is None
    if root is None:
        root = demo_root()
    base = resolve_market_root(root)
    found = keypoint_candidates(base)
    if base.parent != Path(root).expanduser() and Path(root).expanduser() != base:
        found = {**keypoint_candidates(Path(root).expanduser()), **found}
    given = {"train": train_keypoints, "test": test_keypoints}
    chosen: dict[str, Path | None] = {}
    ambiguous: dict[str, list[Path]] = {}
    for kind in ("train", "test"):
        matches = found.get(kind, [])
        path = given[kind]
        if path:
            chosen[kind] = Path(path)
        elif len(matches) == 1:
            chosen[kind] = matches[0]
        else:
            chosen[kind] = None
            if matches:
                ambiguous[kind] = matches
    return DataSource(base, chosen["train"], chosen["test"], is_demo, ambiguous)
