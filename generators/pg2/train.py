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

The code lives in ``generators.common`` (pairs, image cache, the resumable loop,
checkpoints), ``trainer`` (PG2's models and steps) and ``augreid.runtime``
(devices, processes, RNG, shared with synth and train-reid); this module is the
entry point.
"""

from __future__ import annotations

from pathlib import Path

import torch

from augreid.runtime import DistInfo, init_distributed
from generators.common.loop import ResumableTrainer, TrainingDiverged, TrainResult, run_training
from generators.common.loop import write_run_info as write_common_run_info
from generators.common.train_data import TrainData
from generators.pg2.config import PG2Config
from generators.pg2.model import count_parameters
from generators.pg2.train_data import prepare_data
from generators.pg2.trainer import Trainer


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
    return run_training(trainer, resume=resume, stop_at=stop_at, time_limit=time_limit, write_info=write_run_info)


def write_run_info(trainer: ResumableTrainer) -> None:
    """``run.json`` with PG2's parameter counts (G1, G2, D)."""
    assert isinstance(trainer, Trainer)
    parameters = {
        "g1": count_parameters(trainer.net.g1),
        "g2": count_parameters(trainer.net.g2),
        "d": count_parameters(trainer.disc),
    }
    write_common_run_info(trainer, parameters)


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
