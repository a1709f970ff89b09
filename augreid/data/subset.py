"""The fractional-real protocol: a seeded p % subset of the real training images.

Selection, deterministic from (dataset fingerprint, fraction, seed):

* every training image gets a random priority from a generator seeded with
  ``sha256("<fingerprint>:<seed>")``, a permutation of the name-sorted images;
* each identity keeps its highest-priority image, so that every identity has at
  least one image;
* the rest of the ``max(identities, round(p x images))`` images are the
  highest-priority remaining ones.

Fractions of one seed are therefore nested (the 20 % subset lies inside the
40 % one), so that differences between fractions are not subset noise.

A subset is written as ``subset.json`` (its recipe, the sorted names and their
digest) and as a *view*: a Market-layout folder whose ``bounding_box_train/``
holds symbolic links to the chosen images only, ``query/`` and
``bounding_box_test/`` linking to the original test folders, and the training
keypoints of the chosen images. Every stage given the view as its dataset reads
the subset's training images and nothing else. A view is a cache: on a new
machine ``subset_view`` rebuilds it, byte-identical, from the recipe.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augreid.data.keypoints import read_keypoints_csv, write_keypoints_csv
from augreid.data.market import GALLERY, QUERY, TRAIN, ImageRecord, MarketDataset
from augreid.errors import ConfigError, DatasetError
from augreid.io import atomic_write_json

SUBSET_VERSION = 1
SUBSET_FILE = "subset.json"
VIEW_DIRNAME = "Market-1501-v15.09.15"
TRAIN_CSV = "subset-annotation-train.csv"
TEST_CSV = "subset-annotation-test.csv"


@dataclass(frozen=True)
class SubsetRecipe:
    """What determines a subset."""

    dataset_fingerprint: str
    fraction: float
    seed: int
    version: int = SUBSET_VERSION

    def __post_init__(self) -> None:
        if (
            isinstance(self.fraction, bool)
            or not isinstance(self.fraction, (int, float))
            or not 0.0 < self.fraction <= 1.0
        ):
            raise ConfigError(f"subset fraction must be a number in (0, 1], got {self.fraction!r}")

    @property
    def label(self) -> str:
        return f"p{round(100 * self.fraction):03d}-seed{self.seed}"


@dataclass(frozen=True)
class Subset:
    recipe: SubsetRecipe
    names: tuple[str, ...]  # sorted training image names
    identities: int
    total_images: int  # training images of the full set

    @property
    def digest(self) -> str:
        return hashlib.sha256("\n".join(self.names).encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        return {
            "recipe": asdict(self.recipe),
            "images": len(self.names),
            "identities": self.identities,
            "total_images": self.total_images,
            "digest": self.digest,
            "names": list(self.names),
            "selection": __doc__.split("\n\n")[1].strip(),
        }


def _priorities(records: list[ImageRecord], fingerprint: str, seed: int) -> dict[str, int]:
    names = sorted(r.name for r in records)
    state = int.from_bytes(hashlib.sha256(f"{fingerprint}:{seed}".encode()).digest()[:8], "little")
    order = np.random.default_rng(state).permutation(len(names))
    return {name: int(rank) for name, rank in zip(names, order)}


def select_subset(records: list[ImageRecord], recipe: SubsetRecipe) -> Subset:
    """The subset of training ``records`` described by ``recipe``; see the module docstring."""
    if not records:
        raise DatasetError("no training images to take a subset of")
    priority = _priorities(records, recipe.dataset_fingerprint, recipe.seed)
    by_pid: dict[int, list[str]] = {}
    for r in records:
        by_pid.setdefault(r.pid, []).append(r.name)
    anchors = {min(names, key=priority.__getitem__) for names in by_pid.values()}
    rest = sorted((n for n in priority if n not in anchors), key=priority.__getitem__)
    wanted = max(len(anchors), round(recipe.fraction * len(records)))
    chosen = anchors | set(rest[: wanted - len(anchors)])
    return Subset(recipe, tuple(sorted(chosen)), len(by_pid), len(records))


def make_subset(dataset: MarketDataset, fraction: float, seed: int) -> Subset:
    return select_subset(dataset.train, SubsetRecipe(dataset.fingerprint(), float(fraction), int(seed)))


def read_subset(path: str | Path) -> Subset:
    """Read ``subset.json`` (a file or the view folder holding it), checking its digest."""
    path = Path(path)
    path = path / SUBSET_FILE if path.is_dir() else path
    try:
        data = json.loads(path.read_text())
        subset = Subset(
            SubsetRecipe(**data["recipe"]), tuple(data["names"]), int(data["identities"]), int(data["total_images"])
        )
    except FileNotFoundError:
        raise DatasetError(f"{path}: subset file not found") from None
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise DatasetError(f"{path}: not a subset file ({err})") from None
    if subset.digest != data.get("digest"):
        raise DatasetError(f"{path}: the names do not match the recorded digest (edited or damaged file)")
    return subset


def rebuild_subset(subset_file: str | Path, dataset: MarketDataset) -> Subset:
    """Select again from the recipe in ``subset_file`` and check that the same names come out."""
    recorded = read_subset(subset_file)
    if dataset.fingerprint() != recorded.recipe.dataset_fingerprint:
        raise DatasetError(
            f"{subset_file}: made from dataset {recorded.recipe.dataset_fingerprint}, "
            f"but {dataset.root} is {dataset.fingerprint()}"
        )
    again = select_subset(dataset.train, recorded.recipe)
    if again.names != recorded.names:
        raise DatasetError(f"{subset_file}: the recipe no longer selects the recorded images (selection changed?)")
    return again


def _link(target: Path, link: Path) -> None:
    if link.is_symlink() or link.exists():
        link.unlink()
    os.symlink(os.path.abspath(target), link)


def write_view(
    subset: Subset, dataset: MarketDataset, out: Path, train_keypoints: Path | None, test_keypoints: Path | None
) -> Path:
    """Materialise ``subset`` as a Market-layout folder ``out``; ``subset.json`` is written last."""
    root = out / VIEW_DIRNAME
    if root.exists():
        shutil.rmtree(root)  # an interrupted or different view: rebuild, links are cheap
    (root / TRAIN).mkdir(parents=True)
    records = dataset.by_name(TRAIN)
    for name in subset.names:
        os.symlink(os.path.abspath(records[name].path), root / TRAIN / name)
    for split in (QUERY, GALLERY):
        _link(dataset.root / split, root / split)
    if train_keypoints is not None:
        poses = read_keypoints_csv(train_keypoints)
        write_keypoints_csv(out / TRAIN_CSV, {n: poses[n] for n in subset.names if n in poses})
    if test_keypoints is not None:
        _link(Path(test_keypoints), out / TEST_CSV)
    atomic_write_json(out / SUBSET_FILE, subset.to_json())
    return out


def view_is_current(out: Path, subset: Subset) -> bool:
    try:
        recorded = read_subset(out / SUBSET_FILE)
    except DatasetError:
        return False
    train = out / VIEW_DIRNAME / TRAIN
    return recorded.names == subset.names and train.is_dir() and len(os.listdir(train)) == len(subset.names)


@dataclass(frozen=True)
class SubsetView:
    root: Path  # the view folder: a dataset root for every stage
    train_keypoints: Path | None
    test_keypoints: Path | None
    subset: Subset


def subset_view(source, fraction: float, seed: int, cache: str | Path) -> SubsetView:
    """The view of ``source``'s (a :class:`~augreid.data.sources.DataSource`) p % subset under
    ``cache/<fingerprint>/<label>``, built when missing or stale, reused otherwise."""
    dataset = source.load()
    subset = make_subset(dataset, fraction, seed)
    out = Path(cache) / subset.recipe.dataset_fingerprint / subset.recipe.label
    if not view_is_current(out, subset):
        out.mkdir(parents=True, exist_ok=True)
        write_view(subset, dataset, out, source.train_keypoints, source.test_keypoints)
    train_kp = out / TRAIN_CSV if source.train_keypoints is not None else None
    test_kp = out / TEST_CSV if source.test_keypoints is not None else None
    return SubsetView(out, train_kp, test_kp, subset)
