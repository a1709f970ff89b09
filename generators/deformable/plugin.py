"""``deformable`` as a ``generators.base`` plug-in: load, train (``augreid train-gen --generator deformable``), presets."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping

import torch

from augreid.runtime import init_distributed
from generators.base import GeneratorPlugin
from generators.common.loop import ResumableTrainer, TrainResult, run_training, write_run_info
from generators.common.train_data import TrainData, prepare_pairs
from generators.deformable.config import DeformableConfig, load_preset, preset_names
from generators.deformable.generator import DeformableGenerator, load_generator
from generators.deformable.trainer import GENERATOR_NAME, DeformableTrainer, parameter_counts


def default_run_dir(fingerprint: str, preset: str, root: str | Path = "runs") -> Path:
    return Path(root) / "train-gen" / fingerprint / f"{GENERATOR_NAME}-{preset}"


def prepare_data(
    cfg: DeformableConfig,
    data_root: str | Path | None = None,
    *,
    pairs_csv: str | Path | None = None,
    train_keypoints: str | Path | None = None,
    progress: bool = True,
) -> TrainData:
    """The training pairs and image cache for ``cfg`` (training split only)."""
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


def train_generator(
    cfg: DeformableConfig,
    data_root: str | Path | None = None,
    *,
    out: str | Path | None = None,
    pairs_csv: str | Path | None = None,
    train_keypoints: str | Path | None = None,
    device: str = "auto",
    resume: bool = True,
    stop_at: int | None = None,
    time_limit: float | None = None,
    progress: bool = True,
    data: TrainData | None = None,
) -> TrainResult:
    """Train with ``cfg`` on a dataset (``None`` = the demo). Running it again on the same ``out`` resumes
    exactly; ``stop_at`` / ``time_limit`` (seconds) stop early with a checkpoint. ``data`` skips data loading."""
    d = init_distributed(device)
    if d.device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if data is None:
        data = prepare_data(
            cfg, data_root, pairs_csv=pairs_csv, train_keypoints=train_keypoints, progress=progress and d.is_main
        )
    run_dir = Path(out) if out is not None else default_run_dir(data.fingerprint, cfg.name)
    trainer = DeformableTrainer(cfg, data, run_dir, d.device, d, progress=progress)
    return run_training(trainer, resume=resume, stop_at=stop_at, time_limit=time_limit, write_info=_write_run_info)


def _write_run_info(trainer: ResumableTrainer) -> None:
    assert isinstance(trainer, DeformableTrainer)
    write_run_info(trainer, parameter_counts(trainer))


def _load(path: Path, device: str) -> DeformableGenerator:
    return load_generator(path, device=device)


def _train(
    preset: str | Path, overrides: Mapping[str, Any] | None, data_root: str | Path | None = None, **options: Any
) -> TrainResult:
    """``options``: the keyword arguments of :func:`train_generator`."""
    return train_generator(load_preset(preset, overrides), data_root, **options)


PLUGIN = GeneratorPlugin(
    name=GENERATOR_NAME,
    load=_load,
    train=_train,
    presets=preset_names,
    default_preset="cpu",
    load_config=load_preset,
    description="Deformable GAN (Siarohin et al. 2018): part-wise deformable skips, nearest-neighbour loss, "
    "started from the training-free warp",
)
