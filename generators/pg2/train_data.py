"""Training data of PG2: the shared pairs and image cache (``generators.common.train_data``) for a :class:`PG2Config`."""

from __future__ import annotations

from pathlib import Path

from generators.common.train_data import TrainData, prepare_pairs
from generators.pg2.config import PG2Config


def prepare_data(
    cfg: PG2Config,
    data_root: str | Path | None = None,
    *,
    pairs_csv: str | Path | None = None,
    train_keypoints: str | Path | None = None,
    progress: bool = True,
) -> TrainData:
    """Load the dataset, build (or read) training pairs, and cache images + poses as ``cfg`` renders them."""
    return prepare_pairs(
        cfg.model.image_size,
        cfg.pose,
        cfg.data,
        cfg.train.seed,
        data_root,
        pairs_csv=pairs_csv,
        train_keypoints=train_keypoints,
        progress=progress,
    )


__all__ = ["TrainData", "prepare_data"]
