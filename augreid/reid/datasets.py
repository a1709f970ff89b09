"""The real dataset and a synthetic folder as torchreid ``ImageDataset``s, and their union.

torchreid traps handled here, each with a test:

* torchreid's dataset classes download when ``root`` is laid out differently
  from what they expect. These classes read through ``augreid.data.load_market``
  (which fails with a ``DatasetError``) and ``download_dataset`` raises instead
  of fetching anything.
* ``torchreid.data.Dataset.__init__`` indexes ``query[0]`` and ``gallery[0]``
  unconditionally, so a training-only set (a synthetic folder) crashes with an
  ``IndexError``; ``AugreidImageDataset`` accepts empty splits.
* torchreid's ``Dataset.__add__`` offsets the second set's pids, giving every
  synthetic image a new identity. A synthetic image must keep its source
  identity's label, so the union is built here on the real ``pid2label``;
  ``dsetid`` marks synthetic images (1) for the soft-label losses.

Item tuples are torchreid's ``(img_path, pid, camid, dsetid)``; training pids
are labels ``0..N-1``, query/gallery pids stay the raw dataset pids.
"""

from __future__ import annotations

import json
import random
import warnings
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torchreid.reid.data.datasets as tr_datasets
from PIL import Image
from torchreid.reid.data.datasets.dataset import ImageDataset

from augreid.data.market import ImageRecord, MarketDataset, load_market
from augreid.errors import DatasetError
from augreid.io import sha256_file
from augreid.synth.output import dataset_fingerprint_of, generator_hash_of

REAL, SYNTHETIC = 0, 1  # dsetid values
MANIFEST = "manifest.jsonl"
SYNTH_JSON = "synth.json"
REGISTERED_NAMES = ("augreid_market", "augreid_synthetic")


def read_rgb(path: str):
    """A PIL RGB image, or a ``DatasetError`` naming the file (never a retry loop)."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, ValueError, Image.DecompressionBombError) as err:
        raise DatasetError(f"{path}: cannot read image ({err})") from None


def unreadable_images(paths: list[str]) -> list[str]:
    """``path: reason`` for every file in ``paths`` that does not decode as an image."""
    problems = []
    for path in paths:
        try:
            with Image.open(path) as image:
                image.load()
        except (OSError, ValueError, Image.DecompressionBombError) as err:
            problems.append(f"{path}: {err}")
    return problems


class AugreidImageDataset(ImageDataset):
    """``ImageDataset`` that accepts empty query/gallery and never downloads."""

    def __init__(self, train, query, gallery, **kwargs):
        placeholder = [("", -1, -1, REAL)]  # only so torchreid's ``x[0]`` checks pass
        kwargs.setdefault("verbose", False)
        mode = kwargs.get("mode", "train")
        if not {"train": train, "query": query, "gallery": gallery}.get(mode, train):
            raise DatasetError(f"{type(self).__name__}: the {mode} split is empty")
        super().__init__(train or placeholder, query or placeholder, gallery or placeholder, **kwargs)
        self.train = self._four(train)
        self.query = self._four(query)
        self.gallery = self._four(gallery)
        self.data = {"train": self.train, "query": self.query, "gallery": self.gallery}[mode]
        self.num_train_pids = self.get_num_pids(self.train)
        self.num_train_cams = self.get_num_cams(self.train)
        self.num_datasets = self.get_num_datasets(self.train)

    def __getitem__(self, index):
        # torchreid's read_image retries an unreadable file forever; read once and say which file.
        img_path, pid, camid, dsetid = self.data[index]
        img = read_rgb(img_path)
        if self.transform is not None:
            img = self._transform_image(self.transform, self.k_tfm, img)
        return {"img": img, "pid": pid, "camid": camid, "impath": img_path, "dsetid": dsetid}

    @staticmethod
    def _four(items):
        return [tuple(x) if len(x) == 4 else (*x, REAL) for x in items]

    def download_dataset(self, dataset_dir, dataset_url):
        raise DatasetError(
            f"{type(self).__name__}: refusing to download {dataset_url or 'a dataset'} into {dataset_dir}; "
            "augreid never downloads data, point --data at a Market-layout folder"
        )

    def combine_all(self):
        # combineall would relabel query/gallery into training ids: never for an evaluation set.
        raise DatasetError("combineall is not supported: query and gallery stay held out")


class MarketLayoutDataset(AugreidImageDataset):
    """A Market-1501 layout folder read with ``augreid.data.load_market`` (``root`` = dataset root)."""

    def __init__(self, root="", **kwargs):
        # torchreid passes cuhk03/market500k options to every dataset; they mean nothing here.
        kwargs = {k: v for k, v in kwargs.items() if k in ("transform", "k_tfm", "mode", "verbose", "combineall")}
        market = load_market(root)
        super().__init__(*market_items(market), **kwargs)
        self.market = market


class SyntheticFolderDataset(AugreidImageDataset):
    """A synthetic folder (``bounding_box_train`` only); labels are relabelled among its own pids.

    Registered for completeness; training uses ``build_union`` so that synthetic
    images share the real labels.
    """

    def __init__(self, root="", **kwargs):
        kwargs = {k: v for k, v in kwargs.items() if k in ("transform", "k_tfm", "verbose")}
        synth = load_synthetic_records(root)
        pid2label = {pid: i for i, pid in enumerate(sorted({r.pid for r in synth}))}
        train = [(str(r.path), pid2label[r.pid], r.camid, SYNTHETIC) for r in synth]
        super().__init__(train, [], [], mode="train", **kwargs)


def dataset_classes() -> tuple[type, type, type]:
    """``(AugreidImageDataset, MarketLayoutDataset, SyntheticFolderDataset)``."""
    return AugreidImageDataset, MarketLayoutDataset, SyntheticFolderDataset


def register_datasets() -> None:
    """Register the two classes with torchreid (``augreid_market``, ``augreid_synthetic``); idempotent."""
    known = getattr(tr_datasets, "__image_datasets")
    _, market_cls, synth_cls = dataset_classes()
    for name, cls in zip(REGISTERED_NAMES, (market_cls, synth_cls)):
        if known.get(name) is not cls:
            known.pop(name, None)
            tr_datasets.register_image_dataset(name, cls)


def market_items(market: MarketDataset) -> tuple[list, list, list]:
    """torchreid item lists of a Market dataset: train relabelled, query/gallery with raw pids."""
    train = [(str(r.path), market.pid2label[r.pid], r.camid, REAL) for r in market.train]
    query = [(str(r.path), r.pid, r.camid, REAL) for r in market.query]
    gallery = [(str(r.path), r.pid, r.camid, REAL) for r in market.gallery]
    return train, query, gallery


def load_synthetic_records(root: str | Path) -> list[ImageRecord]:
    """The images of a synthetic folder, or a ``DatasetError`` saying what is wrong with it."""
    root = Path(root).expanduser()
    if not root.is_dir():
        raise DatasetError(f"synthetic folder {root} does not exist")
    try:
        synth = load_market(root, require_eval_splits=False)
    except DatasetError as err:
        raise DatasetError(f"synthetic folder {root}: {err}") from None
    return synth.train


@dataclass
class SyntheticSet:
    """What was kept from a synthetic folder, and where it came from."""

    path: Path
    records: list[ImageRecord]
    manifest_hash: str | None
    num_available: int
    settings: dict[str, Any] = field(default_factory=dict)

    def provenance(self) -> dict[str, Any]:
        return {
            "path": str(self.path),
            "manifest_hash": self.manifest_hash,
            "num_images": len(self.records),
            "num_available": self.num_available,
            "num_ids": len({r.pid for r in self.records}),
            "generator_hash": generator_hash_of(self.settings),
        }


def read_synth_settings(root: Path) -> dict[str, Any]:
    path = root / SYNTH_JSON
    if not path.is_file():
        return {}
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: not valid JSON ({err})") from None
    return data if isinstance(data, dict) else {}


def load_synthetic_set(
    root: str | Path, real: MarketDataset, max_per_id: int | None = None, seed: int = 0
) -> SyntheticSet:
    """Read and validate a synthetic folder against the real training set.

    Errors (before any training): missing/empty folder, pids that are not real
    training ids, a ``synth.json`` naming another dataset, a synthetic name that
    collides with a real training image.
    """
    root = Path(root).expanduser()
    records = load_synthetic_records(root)
    settings = read_synth_settings(root)
    # A killed synth leaves a partial set that looks usable; training on it silently is wrong.
    if not (root / SYNTH_JSON).is_file():
        raise DatasetError(
            f"synthetic folder {root} has no {SYNTH_JSON}: it was not written by a finished synth run; "
            f"make one with `augreid synth --out NEW_FOLDER ...`"
        )
    if settings.get("status") != "complete":
        raise DatasetError(
            f"synthetic folder {root} is unfinished ({SYNTH_JSON} status {settings.get('status')!r}); "
            f"complete it by running the same `augreid synth --out {root} ...` command again (it resumes)"
        )
    stranger = sorted({r.pid for r in records} - set(real.pid2label))
    if stranger:
        shown = ", ".join(str(p) for p in stranger[:5]) + (" ..." if len(stranger) > 5 else "")
        raise DatasetError(
            f"synthetic folder {root}: {len(stranger)} person id(s) are not training ids of {real.root} "
            f"({shown}); was it made from another dataset?"
        )
    wanted = dataset_fingerprint_of(settings)
    if wanted and wanted != real.fingerprint():
        raise DatasetError(
            f"synthetic folder {root} was made from dataset {wanted} ({SYNTH_JSON}) but {real.root} "
            f"has fingerprint {real.fingerprint()}: it belongs to another dataset or version"
        )
    real_names = {r.name for r in real.train}
    clash = [r.name for r in records if r.name in real_names]
    if clash:
        raise DatasetError(
            f"synthetic folder {root}: {len(clash)} image name(s) are also real training images "
            f"(e.g. {clash[0]}); synthetic images need a camera number no real camera uses"
        )
    real_cams = {r.camid for r in real.train}
    shared = sorted({r.camid for r in records} & real_cams)
    if shared:
        warnings.warn(f"synthetic folder {root} uses real camera number(s) {shared}", stacklevel=2)
    manifest = root / MANIFEST
    manifest_hash = sha256_file(manifest) if manifest.is_file() else None
    if manifest_hash is None:
        warnings.warn(f"synthetic folder {root} has no {MANIFEST}: run.json cannot link its provenance", stacklevel=2)
    kept = cap_per_identity(records, max_per_id, seed)
    return SyntheticSet(root, kept, manifest_hash, len(records), settings)


def cap_per_identity(records: list[ImageRecord], max_per_id: int | None, seed: int) -> list[ImageRecord]:
    """Keep at most ``max_per_id`` images per pid, a seeded choice independent of file order."""
    if max_per_id is None:
        return list(records)
    by_pid: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in sorted(records, key=lambda r: r.name):
        by_pid[record.pid].append(record)
    rng = random.Random(seed)
    kept = []
    for pid in sorted(by_pid):
        group = by_pid[pid]
        kept += sorted(rng.sample(group, max_per_id) if len(group) > max_per_id else group, key=lambda r: r.name)
    return kept


def build_union(market: MarketDataset, synthetic: SyntheticSet | None, transform=None, mode: str = "train"):
    """One torchreid ``ImageDataset``: real training images then synthetic ones, on the real labels."""
    base_cls, _, _ = dataset_classes()
    train, query, gallery = market_items(market)
    if synthetic is not None:
        train += [(str(r.path), market.pid2label[r.pid], r.camid, SYNTHETIC) for r in synthetic.records]
    return base_cls(train, query, gallery, transform=transform, mode=mode)
