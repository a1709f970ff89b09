"""``augreid train-gen``: two-stage PG2 training (+ optional joint fine-tuning).

Stages, by global step:

1. ``[0, stage1)``: G1 alone, pose-mask L1.
2. ``[stage1, stage1 + stage2)``: G2 + D, G1 frozen. G: adversarial +
   lambda * pose-mask L1 of the refined image (+ feature matching with the
   multi-scale discriminator); D: real (I_A, I_B) vs fake (I_A, refined) pairs.
   D is PG2's DCGAN with BCE by default, or pix2pixHD's multi-scale PatchGANs
   with LSGAN / hinge (presets ``*-hd``; see ``generators.pg2.multiscale``).
3. ``joint_steps`` more: G1 + G2 + D together; the G loss adds G1's own L1 so
   that G1 stays a meaningful coarse image.

Runs on CPU or one GPU, or under ``torchrun`` with DistributedDataParallel
(NCCL on CUDA, gloo on CPU). Resumes exactly from the latest checkpoint in the
run folder: weights, D, optimizers and RNG states are restored and the batch
order is a function of the step (see ``data.StepBatchSampler``).

The code lives in ``train_data`` (pairs, image cache), ``trainer`` (the loop) and
``augreid.runtime`` (devices, processes, RNG, shared with synth and train-reid);
this module is the entry point.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch

from augreid.errors import ConfigError
from augreid.io import atomic_write_json
from augreid.runtime import DistInfo, barrier, init_distributed, numerics
from augreid.versions import git_revision
from generators.pg2.checkpoint import FORMAT, list_checkpoints
from generators.pg2.config import PG2Config
from generators.pg2.model import count_parameters
from generators.pg2.train_data import TrainData, prepare_data
from generators.pg2.trainer import GENERATOR_NAME, Trainer, TrainingDiverged


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path | None
    step: int
    finished: bool
    history: list[dict[str, float]] = field(default_factory=list)
    total_steps: int | None = None


def default_run_dir(fingerprint: str, preset: str, root: str | Path = "runs") -> Path:
    return Path(root) / "train-gen" / fingerprint / preset


def train_generator(
    cfg: PG2Config,
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
    """Train PG2 with ``cfg`` on a dataset (``None`` = the demo dataset); see the module docstring.

    ``stop_at`` / ``time_limit`` (seconds) end the run early with a checkpoint
    from which a later call resumes. ``data`` skips :func:`prepare_data`.
    """
    d = init_distributed(device)
    dev = d.device
    if dev.type == "cuda":
        torch.backends.cudnn.benchmark = True
    if data is None:
        data = prepare_data(
            cfg, data_root, pairs_csv=pairs_csv, train_keypoints=train_keypoints, progress=progress and d.is_main
        )
    run_dir = Path(out) if out is not None else default_run_dir(data.fingerprint, cfg.name)
    trainer = Trainer(cfg, data, run_dir, dev, d, progress=progress)
    if resume:
        trainer.resume()
    elif list_checkpoints(trainer.ckpt_dir):
        raise ConfigError(f"{run_dir} already holds checkpoints; resume (the default) or choose another --out")
    if d.is_main:
        write_run_info(trainer)
    if trainer.step >= trainer.total:
        return TrainResult(run_dir, trainer.last_checkpoint, trainer.step, True, total_steps=trainer.total)
    trainer.open_writer()
    try:
        finished = trainer.fit(stop_at=stop_at, time_limit=time_limit)
    finally:
        if trainer.writer is not None:
            trainer.writer.close()
    barrier(d)
    return TrainResult(run_dir, trainer.last_checkpoint, trainer.step, finished, trainer.history, trainer.total)


def write_run_info(trainer: Trainer) -> None:
    cfg = trainer.cfg
    atomic_write_json(
        trainer.run_dir / "run.json",
        {
            "format": FORMAT,
            "generator": GENERATOR_NAME,
            "preset": cfg.name,
            "dataset_fingerprint": trainer.data.fingerprint,
            "dataset_root": str(trainer.data.root),
            "pairs": int(len(trainer.data.pairs)),
            "images": len(trainer.data.cache.names),
            "pair_source": trainer.data.pair_source,
            "parameters": {
                "g1": count_parameters(trainer.net.g1),
                "g2": count_parameters(trainer.net.g2),
                "d": count_parameters(trainer.disc),
            },
            "device": str(trainer.device),
            "world_size": trainer.dist.world,
            "resumed_at_step": trainer.step,
            "runtime": numerics(),
            "git": git_revision(),
            "config": cfg.to_dict(),
        },
    )


__all__ = [
    "DistInfo",
    "TrainData",
    "TrainResult",
    "TrainingDiverged",
    "Trainer",
    "default_run_dir",
    "prepare_data",
    "train_generator",
]
