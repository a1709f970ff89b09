"""``augreid features``: a trained model's features of a dataset split or a folder of images, in one file.

The features come from the extraction path of ``augreid eval``
(:func:`augreid.evaluation.features.model_features`: the run's input size and
normalisation, optional flip averaging, then :func:`~augreid.evaluation.features.l2_normalize`
unless raw features are asked for), so a file written here holds the numbers
``augreid eval --flip/--no-flip --normalize`` ranks with.

File format (``augreid-features-v1``): one safetensors file holding

* ``features``: float32, ``N x D``, row ``i`` belonging to ``names[i]``;
* ``pids``, ``camids``: int64, ``N`` (dataset splits only; parsed from the Market names);

and string metadata: ``format``, ``names`` (a JSON list of the image names: the
file name for a dataset split, the path relative to the folder for ``DIR``),
``normalization`` (``l2`` or ``none``), ``flip`` (``true``/``false``), ``split``,
``source``, ``dataset_fingerprint`` (splits), ``checkpoint_sha256``, ``model_name``,
``method``, ``height``, ``width``, ``norm_mean``, ``norm_std`` (JSON) and ``augreid_version``.
The names live in the metadata rather than a sidecar JSON so that features and
names cannot be separated or mismatched: one file, read with one call
(:func:`read_features_file`, or ``safetensors.safe_open(path, "np").metadata()``).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
import numpy as np
from safetensors import safe_open
from safetensors.numpy import save

from augreid import __version__
from augreid.data.market import GALLERY, IMAGE_SUFFIXES, QUERY, TRAIN, MarketDataset
from augreid.errors import AugreidError, ConfigError, DatasetError
from augreid.evaluation.distance import check_device
from augreid.evaluation.features import l2_normalize, model_features
from augreid.io import atomic_write_bytes, sha256_file
from augreid.reid.checkpoint import load_reid_model, resolve_checkpoint_path

FORMAT = "augreid-features-v1"
# --split names -> the Market folder each one reads.
SPLIT_FOLDERS = {"query": QUERY, "gallery": GALLERY, "train": TRAIN}


@dataclass
class FeatureFile:
    """What ``augreid features`` writes: the rows, their names and how they were made."""

    names: list[str]
    features: np.ndarray
    metadata: dict[str, str]
    pids: np.ndarray | None = None
    camids: np.ndarray | None = None
    path: Path | None = None


@dataclass
class ImageSet:
    """The images to describe: paths, their names, and (Market splits) identities and cameras."""

    paths: list[Path]
    names: list[str]
    split: str
    source: str
    pids: list[int] | None = None
    camids: list[int] | None = None
    dataset_fingerprint: str | None = None


def is_split_name(split: str) -> bool:
    return split in SPLIT_FOLDERS


def split_images(dataset: MarketDataset, split: str) -> ImageSet:
    """The records of ``query``, ``gallery`` or ``train`` (what ``augreid eval`` and training read)."""
    if split not in SPLIT_FOLDERS:
        raise ConfigError(f"--split {split!r}: expected one of {', '.join(SPLIT_FOLDERS)} or a folder of images")
    records = dataset.split(SPLIT_FOLDERS[split])
    if not records:
        raise DatasetError(f"{dataset.root}: the {split} split ({SPLIT_FOLDERS[split]}/) has no images")
    return ImageSet(
        paths=[r.path for r in records],
        names=[r.name for r in records],
        split=split,
        source=str(dataset.root),
        pids=[r.pid for r in records],
        camids=[r.camid for r in records],
        dataset_fingerprint=dataset.fingerprint(),
    )


def folder_images(folder: str | Path) -> ImageSet:
    """Every image (``.jpg``, ``.jpeg``, ``.png``) under ``folder``, recursively, in sorted order; any names."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise DatasetError(f"--split {folder}: neither query, gallery, train nor an existing folder")
    paths = sorted(p for p in folder.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
    if not paths:
        raise DatasetError(f"{folder}: no images (.jpg, .jpeg, .png) in it or below it")
    return ImageSet(
        paths=paths, names=[p.relative_to(folder).as_posix() for p in paths], split="dir", source=str(folder)
    )


def compute_features(
    run: str | Path,
    images: ImageSet,
    *,
    raw: bool = False,
    flip: bool = False,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
) -> FeatureFile:
    """Features of ``images`` by the model in ``run`` (run folder or checkpoint), L2-normalised unless ``raw``."""
    check_device(device)
    if batch_size < 1:
        raise ConfigError(f"--batch-size must be at least 1, got {batch_size}")
    checkpoint = resolve_checkpoint_path(run)
    model, info = load_reid_model(checkpoint, device=device)
    features = model_features(
        model, info, images.paths, flip=flip, batch_size=batch_size, device=device, progress=progress, desc=images.split
    )
    if not raw:
        features = l2_normalize(features)
    metadata = {
        "format": FORMAT,
        "names": json.dumps(images.names),
        "normalization": "none" if raw else "l2",
        "flip": "true" if flip else "false",
        "split": images.split,
        "source": images.source,
        "checkpoint_sha256": sha256_file(checkpoint),
        "model_name": str(info.get("model_name")),
        "method": str(info.get("method")),
        "height": str(info["height"]),
        "width": str(info["width"]),
        "norm_mean": json.dumps(list(info["norm_mean"])),
        "norm_std": json.dumps(list(info["norm_std"])),
        "augreid_version": __version__,
    }
    if images.dataset_fingerprint:
        metadata["dataset_fingerprint"] = images.dataset_fingerprint
    pids = np.asarray(images.pids, dtype=np.int64) if images.pids is not None else None
    camids = np.asarray(images.camids, dtype=np.int64) if images.camids is not None else None
    return FeatureFile(list(images.names), np.ascontiguousarray(features, dtype=np.float32), metadata, pids, camids)


def write_features_file(path: str | Path, result: FeatureFile) -> Path:
    """Write ``result`` atomically as one safetensors file (the format in the module's docstring)."""
    path = Path(path).expanduser()
    if path.is_dir():
        raise ConfigError(f"--out {path} is a folder; give a file name such as {path / 'features.safetensors'}")
    tensors = {"features": result.features}
    if result.pids is not None and result.camids is not None:
        tensors.update(pids=result.pids, camids=result.camids)
    return atomic_write_bytes(path, save(tensors, metadata=result.metadata))


def read_features_file(path: str | Path) -> FeatureFile:
    """Read a file written by :func:`write_features_file`; a one-line ``AugreidError`` for anything else."""
    path = Path(path).expanduser()
    if not path.is_file():
        raise AugreidError(f"{path}: features file not found")
    try:
        with safe_open(str(path), "np") as handle:
            metadata = dict(handle.metadata() or {})
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except Exception as err:  # safetensors raises its own SafetensorError for a foreign or truncated file
        raise AugreidError(f"{path}: not a safetensors file ({type(err).__name__})") from None
    if metadata.get("format") != FORMAT or "features" not in tensors or "names" not in metadata:
        raise AugreidError(f"{path}: not an augreid features file (format {metadata.get('format')!r})")
    names = json.loads(metadata["names"])
    if len(names) != len(tensors["features"]):
        raise AugreidError(f"{path}: {len(names)} names for {len(tensors['features'])} feature rows")
    return FeatureFile(names, tensors["features"], metadata, tensors.get("pids"), tensors.get("camids"), path)


def summary(result: FeatureFile) -> str:
    """One line: how many rows, their dimension and how they were made."""
    meta = result.metadata
    rows, dim = result.features.shape
    return (
        f"{rows} x {dim} features ({'L2-normalised' if meta['normalization'] == 'l2' else 'raw'}, "
        f"flip {'on' if meta['flip'] == 'true' else 'off'}) of {meta['split']} {meta['source']}, "
        f"model {meta['model_name']} ({meta['checkpoint_sha256'][:12]})"
    )
