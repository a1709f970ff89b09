"""Market-1501 layout reader.

The layout is ``ROOT/{bounding_box_train,query,bounding_box_test}/PPPP_cCsS_FFFFFF_NN.jpg``.
``ROOT`` may be the ``Market-1501-v15.09.15`` folder itself or its parent.
Nothing here ever downloads anything.

Identity conventions follow Market-1501 and torchreid:

* pid ``-1`` is junk and is excluded from every split;
* pid ``0`` is a distractor: kept in the gallery, dropped from train and query;
* training pids are relabelled ``0..N-1`` in ascending pid order (``pid2label``).

``camid`` is the camera number as written in the file name (``c1`` -> 1).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image, UnidentifiedImageError

from augreid.errors import DatasetError

TRAIN, QUERY, GALLERY = "bounding_box_train", "query", "bounding_box_test"
SPLITS: tuple[str, ...] = (TRAIN, QUERY, GALLERY)
MARKET_DIRNAME = "Market-1501-v15.09.15"
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png"})
JUNK_PID = -1
DISTRACTOR_PID = 0

# Multi-digit cameras are accepted so that synthetic sets can use a camera
# number no real camera uses (Market has c1..c6).
_NAME_RE = re.compile(r"^(-?\d+)_c(\d+)")


@dataclass(frozen=True, order=True)
class ImageRecord:
    """One image of a Market-layout dataset."""

    split: str
    name: str
    pid: int
    camid: int
    path: Path = field(compare=False)


def parse_market_name(name: str) -> tuple[int, int]:
    """Return ``(pid, camid)`` from a Market-1501 file name such as ``0002_c1s1_000451_03.jpg``."""
    match = _NAME_RE.match(name)
    if match is None:
        raise DatasetError(
            f"cannot parse file name {name!r}: expected the Market-1501 pattern "
            "PPPP_cC..., e.g. 0002_c1s1_000451_03.jpg"
        )
    return int(match.group(1)), int(match.group(2))


def resolve_market_root(root: str | Path) -> Path:
    """Find the folder that holds the three split folders.

    Accepts ``.../Market-1501-v15.09.15`` or its parent.
    """
    root = Path(root).expanduser()
    if not root.exists():
        raise DatasetError(f"dataset root {root} does not exist")
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} is not a folder")
    candidates = [root, root / MARKET_DIRNAME]
    candidates += sorted(p for p in root.iterdir() if p.is_dir() and p not in candidates)
    for candidate in candidates:
        if (candidate / TRAIN).is_dir():
            return candidate
    raise DatasetError(
        f"{root} is not a Market-1501 layout: no {TRAIN}/ folder in it or in "
        f"{root / MARKET_DIRNAME} (expected folders: {', '.join(SPLITS)})"
    )


def list_split(split_dir: Path, split: str) -> tuple[list[ImageRecord], list[str]]:
    """Parse every image name of one split folder.

    Returns the kept records and a list of problems (unparsable names). Junk
    (pid -1) is skipped silently; distractors (pid 0) are kept only in the gallery.
    """
    records: list[ImageRecord] = []
    problems: list[str] = []
    for path in sorted(split_dir.iterdir()):
        if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
            continue  # Market ships Thumbs.db and friends
        try:
            pid, camid = parse_market_name(path.name)
        except DatasetError as err:
            problems.append(f"{path}: {err}")
            continue
        if pid == JUNK_PID:
            continue
        if pid == DISTRACTOR_PID and split != GALLERY:
            continue
        if pid < JUNK_PID:
            problems.append(f"{path}: negative person id {pid} (only -1, junk, is allowed)")
            continue
        records.append(ImageRecord(split, path.name, pid, camid, path))
    return records, problems


@dataclass
class MarketDataset:
    """The three splits of a Market-layout dataset, junk removed."""

    root: Path
    train: list[ImageRecord]
    query: list[ImageRecord]
    gallery: list[ImageRecord]
    pid2label: dict[int, int]

    @property
    def num_train_pids(self) -> int:
        return len(self.pid2label)

    @property
    def label2pid(self) -> dict[int, int]:
        return {label: pid for pid, label in self.pid2label.items()}

    def split(self, name: str) -> list[ImageRecord]:
        return {TRAIN: self.train, QUERY: self.query, GALLERY: self.gallery}[name]

    def by_name(self, split: str | None = None) -> dict[str, ImageRecord]:
        splits = SPLITS if split is None else (split,)
        return {r.name: r for s in splits for r in self.split(s)}

    def fingerprint(self) -> str:
        """A short hash of the file list and sizes: identifies the data a result came from."""
        return records_fingerprint(record for split in SPLITS for record in self.split(split))

    def summary(self) -> dict:
        out: dict = {"root": str(self.root)}
        for split in SPLITS:
            records = self.split(split)
            out[split] = {
                "images": len(records),
                "ids": len({r.pid for r in records}),
                "cameras": sorted({r.camid for r in records}),
            }
        return out


def records_fingerprint(records: Iterable[ImageRecord]) -> str:
    """A short hash of split, name and size of each record, in the order given."""
    digest = hashlib.sha256()
    for record in records:
        digest.update(f"{record.split}/{record.name}:{record.path.stat().st_size}\n".encode())
    return digest.hexdigest()[:16]


def load_market(root: str | Path, *, require_eval_splits: bool = True) -> MarketDataset:
    """Read a Market-layout dataset, failing on the first problem with a clear message.

    ``require_eval_splits=False`` accepts a folder with only ``bounding_box_train``
    (a synthetic set, for example).
    """
    base = resolve_market_root(root)
    splits: dict[str, list[ImageRecord]] = {}
    for split in SPLITS:
        split_dir = base / split
        if not split_dir.is_dir():
            if split != TRAIN and not require_eval_splits:
                splits[split] = []
                continue
            raise DatasetError(f"{base}: missing split folder {split}/")
        records, problems = list_split(split_dir, split)
        if problems:
            more = f" (and {len(problems) - 1} more; run `augreid data check {base}`)" if len(problems) > 1 else ""
            raise DatasetError(problems[0] + more)
        splits[split] = records
    if not splits[TRAIN]:
        raise DatasetError(f"{base / TRAIN}: no training images")
    train_pids = sorted({r.pid for r in splits[TRAIN]})
    pid2label = {pid: label for label, pid in enumerate(train_pids)}
    return MarketDataset(base, splits[TRAIN], splits[QUERY], splits[GALLERY], pid2label)


def read_image(path: str | Path):
    """Open an image as RGB, or raise ``DatasetError`` naming the file."""
    path = Path(path)
    try:
        with Image.open(path) as img:
            return img.convert("RGB")
    except FileNotFoundError:
        raise DatasetError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as err:
        raise DatasetError(f"{path}: unreadable image ({err})") from None
