"""Features of query and gallery images from a trained torchreid model, cached on disk.

Preprocessing is torchreid's test transform (resize to the training size,
``ToTensor``, normalise with the run's mean/std). With ``flip`` the feature is
the mean of the image's and its mirror image's features. L2 normalisation is
applied after loading, so one cached file serves both settings.

The cache key is the checkpoint file's SHA-256, the dataset fingerprint, the
split's file names and the preprocessing options; a cached file is used only
when everything matches, otherwise features are extracted again.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.numpy import load_file, save
from torch.utils.data import DataLoader, Dataset
from torchvision.transforms import Compose, Normalize, Resize, ToTensor

from augreid.data.market import GALLERY, QUERY, MarketDataset, read_image
from augreid.errors import AugreidError
from augreid.evaluation.distance import check_device
from augreid.io import atomic_write_bytes, augreid_home, sha256_file, sha256_text
from augreid.progress import progress_bar
from augreid.reid.checkpoint import checkpoint_info, load_reid_model, resolve_checkpoint_path

CACHE_FORMAT = "augreid-features-v1"


@dataclass
class RunFeatures:
    """Query and gallery features of one trained model on one dataset."""

    query: np.ndarray
    gallery: np.ndarray
    info: dict[str, Any]
    checkpoint: Path
    checkpoint_sha256: str
    cache_file: Path | None = None
    from_cache: bool = False


def eval_transform(height: int, width: int, norm_mean: Sequence[float], norm_std: Sequence[float]):
    """torchreid's ``transform_te`` (``build_transforms`` prints a page of text, so it is rebuilt here)."""
    return Compose([Resize((int(height), int(width))), ToTensor(), Normalize(mean=list(norm_mean), std=list(norm_std))])


class ImageList(Dataset[torch.Tensor]):
    """A map-style dataset of image files through a transform."""

    def __init__(self, paths: Sequence[Path], transform):
        self.paths = list(paths)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int):
        return self.transform(read_image(self.paths[index]))


def extract_features(
    model,
    paths: Sequence[Path],
    height: int,
    width: int,
    norm_mean: Sequence[float] = (0.485, 0.456, 0.406),
    norm_std: Sequence[float] = (0.229, 0.224, 0.225),
    batch_size: int = 64,
    flip: bool = False,
    device: str = "cpu",
    workers: int = 0,
    progress: bool = True,
    desc: str = "features",
) -> np.ndarray:
    """``len(paths) x dim`` float32 features of ``model`` in eval mode."""
    if len(paths) == 0:
        raise AugreidError(f"no images to extract {desc} features from")
    loader = DataLoader(
        ImageList(paths, eval_transform(height, width, norm_mean, norm_std)),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
    )
    model.eval()
    out = []
    with torch.inference_mode():
        for batch in progress_bar(loader, desc=desc, unit="batch", disable=not progress, leave=False):
            batch = batch.to(device)
            feats = model(batch)
            if flip:
                feats = (feats + model(torch.flip(batch, dims=[3]))) / 2
            out.append(feats.float().cpu())
    features = torch.cat(out).numpy()
    if features.ndim != 2:
        raise AugreidError(f"the model returned features of shape {features.shape}; expected one vector per image")
    return features


def model_features(
    model,
    info: dict[str, Any],
    paths: Sequence[Path],
    *,
    flip: bool = False,
    batch_size: int = 64,
    device: str = "cpu",
    progress: bool = True,
    desc: str = "features",
) -> np.ndarray:
    """Raw features of ``paths`` by a model from ``load_reid_model``: its run's input size and normalisation.

    This is the one extraction path of ``augreid eval`` (``run_features``) and
    ``augreid features``; :func:`l2_normalize` is applied, where asked, afterwards.
    """
    return extract_features(
        model,
        paths,
        height=info["height"],
        width=info["width"],
        norm_mean=info["norm_mean"],
        norm_std=info["norm_std"],
        batch_size=batch_size,
        flip=flip,
        device=device,
        progress=progress,
        desc=desc,
    )


def l2_normalize(features: np.ndarray) -> np.ndarray:
    """Each row divided by its L2 norm (rows of zeros stay zero), as float32."""
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return (features / np.maximum(norms, 1e-12)).astype(np.float32)  # torch F.normalize's eps


def default_cache_dir() -> Path:
    return augreid_home() / "features"


def cache_key(checkpoint_sha256: str, dataset: MarketDataset, options: dict[str, Any]) -> str:
    names = {split: [r.name for r in dataset.split(split)] for split in (QUERY, GALLERY)}
    text = json.dumps(
        {
            "format": CACHE_FORMAT,
            "checkpoint": checkpoint_sha256,
            "dataset": dataset.fingerprint(),
            "names": sha256_text(json.dumps(names)),
            "options": options,
        },
        sort_keys=True,
    )
    return sha256_text(text)[:24]


def read_cached(path: Path, num_query: int, num_gallery: int) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached arrays, or None when the file is absent, unreadable or of another size."""
    if not path.is_file():
        return None
    try:
        arrays = load_file(str(path))
    except Exception:  # a truncated or foreign file is simply recomputed
        return None
    query, gallery = arrays.get("query"), arrays.get("gallery")
    if query is None or gallery is None or len(query) != num_query or len(gallery) != num_gallery:
        return None
    return query, gallery


def write_cached(path: Path, query: np.ndarray, gallery: np.ndarray, metadata: dict[str, str]) -> None:
    data = save({"query": np.ascontiguousarray(query), "gallery": np.ascontiguousarray(gallery)}, metadata=metadata)
    atomic_write_bytes(path, data)


def run_features(
    run: str | Path,
    dataset: MarketDataset,
    flip: bool = False,
    normalize: bool = False,
    batch_size: int = 64,
    device: str = "cpu",
    cache_dir: str | Path | None = None,
    use_cache: bool = True,
    progress: bool = True,
    name: str = "",
) -> RunFeatures:
    """Query and gallery features of the model in ``run`` (a run folder or checkpoint file)."""
    check_device(device)
    checkpoint = resolve_checkpoint_path(run)
    digest = sha256_file(checkpoint)
    info = checkpoint_info(checkpoint)
    query_paths = [r.path for r in dataset.query]
    gallery_paths = [r.path for r in dataset.gallery]
    if not query_paths:
        raise AugreidError(f"{dataset.root}: the query split is empty")
    if not gallery_paths:
        raise AugreidError(f"{dataset.root}: the gallery split (bounding_box_test) is empty")
    options = {
        "flip": bool(flip),
        "height": info.get("height"),
        "width": info.get("width"),
        "norm_mean": info.get("norm_mean"),
        "norm_std": info.get("norm_std"),
    }
    cache_file = Path(cache_dir or default_cache_dir()) / f"{cache_key(digest, dataset, options)}.safetensors"
    cached = read_cached(cache_file, len(query_paths), len(gallery_paths)) if use_cache else None
    if cached is not None:
        query, gallery = cached
        from_cache = True
    else:
        model, info = load_reid_model(checkpoint, device=device)
        common: dict[str, Any] = dict(batch_size=batch_size, flip=flip, device=device, progress=progress)
        query = model_features(model, info, query_paths, desc=f"{name} query".strip(), **common)
        gallery = model_features(model, info, gallery_paths, desc=f"{name} gallery".strip(), **common)
        from_cache = False
        if use_cache:
            write_cached(
                cache_file,
                query,
                gallery,
                {
                    "checkpoint_sha256": digest,
                    "dataset_fingerprint": dataset.fingerprint(),
                    "options": json.dumps(options, sort_keys=True),
                },
            )
    if normalize:
        query, gallery = l2_normalize(query), l2_normalize(gallery)
    return RunFeatures(query, gallery, info, checkpoint, digest, cache_file if use_cache else None, from_cache)
