"""Training data of ``augreid train-gen``: the pairs and the image cache PG2 trains on."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augreid.data import build_pairs, read_pairs_csv
from augreid.data.sources import resolve_source
from augreid.errors import DatasetError
from generators.pg2.config import PG2Config
from generators.pg2.data import ImageCache, build_image_cache, pair_rows


@dataclass
class TrainData:
    cache: ImageCache
    pairs: np.ndarray  # (P, 2) rows into cache
    fingerprint: str
    root: Path
    is_demo: bool
    pair_source: str


def prepare_data(
    cfg: PG2Config,
    data_root: str | Path | None = None,
    *,
    pairs_csv: str | Path | None = None,
    train_keypoints: str | Path | None = None,
    progress: bool = True,
) -> TrainData:
    """Load the dataset, build (or read) training pairs, and cache images + poses."""
    source = resolve_source(data_root, train_keypoints=train_keypoints)
    dataset = source.load()
    poses = source.train_poses()
    records = dataset.by_name("bounding_box_train")
    if pairs_csv is not None:
        pairs = read_pairs_csv(pairs_csv)
        outside = [a for pair in pairs for a in pair if a not in records]
        if outside:
            raise DatasetError(
                f"{pairs_csv}: {len(outside)} image names are not in {source.root}/bounding_box_train "
                f"(first: {outside[0]}); generator training uses training images only"
            )
        pair_source = str(pairs_csv)
    else:
        d = cfg.data
        pairs = build_pairs(
            dataset.train,
            poses,
            different_cameras=d.different_cameras,
            min_visible=d.min_visible,
            max_pairs=d.max_pairs or None,
            seed=cfg.train.seed,
        )
        pair_source = "build_pairs"
    if not pairs:
        raise DatasetError(
            f"no usable training pairs in {source.root} (need two images of one identity with both shoulders and hips)"
        )
    names, rows = pair_rows(pairs)
    cache = build_image_cache(
        records, poses, names, cfg.model.image_size, cfg.pose, with_flip=cfg.data.flip, progress=progress
    )
    return TrainData(cache, rows, dataset.fingerprint(), source.root, source.is_demo, pair_source)
