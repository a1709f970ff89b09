"""Training data of ``augreid train-gen``: the pairs and the image cache a generator trains on.

Only the training split is read (``bounding_box_train`` and the training
keypoints): pairs come from ``augreid.data.build_pairs`` or from a pairs CSV
whose names must all be training images.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from augreid.data import build_pairs, read_pairs_csv
from augreid.data.sources import resolve_source
from augreid.errors import DatasetError
from generators.common.config import DataConfig, PoseConfig
from generators.common.data import ImageCache, build_image_cache, pair_rows


@dataclass
class TrainData:
    cache: ImageCache
    pairs: np.ndarray  # (P, 2) rows into cache
    fingerprint: str
    root: Path
    is_demo: bool
    pair_source: str


def prepare_pairs(
    image_size: Sequence[int],
    pose: PoseConfig,
    data: DataConfig,
    seed: int,
    data_root: str | Path | None = None,
    *,
    pairs_csv: str | Path | None = None,
    train_keypoints: str | Path | None = None,
    progress: bool = True,
) -> TrainData:
    """Load the dataset (``None`` = the demo), build (or read) training pairs, and cache images + poses."""
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
        pairs = build_pairs(
            dataset.train,
            poses,
            different_cameras=data.different_cameras,
            min_visible=data.min_visible,
            max_pairs=data.max_pairs or None,
            seed=seed,
        )
        pair_source = "build_pairs"
    if not pairs:
        raise DatasetError(
            f"no usable training pairs in {source.root} (need two images of one identity with both shoulders and hips)"
        )
    names, rows = pair_rows(pairs)
    cache = build_image_cache(records, poses, names, image_size, pose, with_flip=data.flip, progress=progress)
    return TrainData(cache, rows, dataset.fingerprint(), source.root, source.is_demo, pair_source)
