"""``augreid train-reid``: re-ID training on real, or real + synthetic, images with a method plug-in.

A run folder holds::

    config.toml       the exact resolved settings (feed back with --config)
    checkpoint.pth    weights + optimizer/scheduler/RNG state, saved every epoch
    run.json          model, method, initial weights (sha256), input size, normalisation,
                      dataset fingerprint, synthetic manifest hash, seed, threads,
                      real and synthetic images per batch, optimizer steps with the
                      learning rate of the first and last one, epoch times, the
                      learning curve (``eval_every``), final metrics
    tensorboard/      Train/loss*, Train/acc, Train/lr, Epoch/*, Test/*

Everything that can be wrong with the input (unknown model or method, missing
weights, unreadable images, a synthetic folder from another dataset) is checked
before the first batch. An interrupted run resumes from its last finished epoch
when started again with the same settings. Under ``torchrun`` (methods with
``supports_ddp``) every rank trains on its share of the same seeded batches and
rank 0 writes the folder.
"""

from __future__ import annotations

import contextlib
import importlib.metadata as metadata
import io
import math
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter

from augreid.data.sources import resolve_source
from augreid.errors import AugreidError, ConfigError, DatasetError
from augreid.io import portable_path
from augreid.progress import progress_bar
from augreid.reid.checkpoint import (
    CHECKPOINT_NAME,
    check_model_name,
    read_checkpoint,
    read_run_json,
    restore_training_state,
    save_reid_checkpoint,
    update_run_json,
)
from augreid.reid.config import ReidConfig
from augreid.reid.datasets import load_synthetic_set, unreadable_images
from augreid.reid.engine import ReidDataManager, evaluate_end_of_training, in_memory_format
from augreid.reid.methods import get_method
from augreid.reid.methods.base import ReidMethod
from augreid.reid.pretrained import initialise, resolve_pretrained
from augreid.reid.rundir import TENSORBOARD_DIR, prepare_run_dir
from augreid.runtime import (
    DistInfo,
    barrier,
    init_distributed,
    numerics,
    rng_state_tensors,
    seed_everything,
    set_rng_state_tensors,
)

EvaluateRank = Callable[..., tuple[Any, float]]


class TrainingDiverged(AugreidError):
    """The loss became NaN or infinite."""


@dataclass
class PreparedData:
    market: Any  # augreid.data.MarketDataset
    fingerprint: str
    is_demo: bool
    synthetic: Any = None  # augreid.reid.datasets.SyntheticSet | None


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path
    info: dict[str, Any]
    epoch_seconds: list[float] = field(default_factory=list)
    metrics: dict[str, Any] | None = None
    resumed_from: int = 0


def prepare_data(config: ReidConfig) -> PreparedData:
    """Load and validate the real dataset and the synthetic folder."""
    source = resolve_source(config.data)
    market = source.load()
    synthetic = None
    if config.uses_synthetic:
        assert config.synthetic is not None  # uses_synthetic checks it
        synthetic = load_synthetic_set(config.synthetic, market, config.max_synthetic_per_id, config.seed)
    return PreparedData(market, market.fingerprint(), source.is_demo, synthetic)


def use_cuda(config: ReidConfig) -> bool:
    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but torch sees no CUDA device")
    return config.device != "cpu" and torch.cuda.is_available()


def check_before_training(config: ReidConfig) -> tuple[ReidMethod, str]:
    """Settings errors that need no data (model, method, weights, device); the method and the initial weights."""
    check_model_name(config.model)
    method = get_method(config.method)
    use_cuda(config)
    return method, resolve_pretrained(config.pretrained, config.model)


def check_images(data: PreparedData) -> None:
    """Every training image decodes, before the first batch (one error listing the broken files)."""
    paths = [str(r.path) for r in data.market.train]
    if data.synthetic is not None:
        paths += [str(r.path) for r in data.synthetic.records]
    broken = unreadable_images(paths)
    if broken:
        more = f" (and {len(broken) - 5} more)" if len(broken) > 5 else ""
        raise DatasetError(f"{len(broken)} training image(s) cannot be read: " + "; ".join(broken[:5]) + more)


class ProgressLoader:
    """A DataLoader seen through a progress bar (augreid.progress), so the epoch loop shows its progress."""

    def __init__(self, loader, description: str, enabled: bool) -> None:
        self.loader, self.description, self.enabled = loader, description, enabled

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        return iter(
            progress_bar(
                self.loader,
                desc=self.description,
                leave=False,
                disable=not self.enabled,
                file=sys.stderr,
                mininterval=2.0,
            )
        )


def run_info(
    config: ReidConfig,
    data: PreparedData,
    num_classes: int,
    method: ReidMethod,
    pretrained: dict[str, Any] | None,
    dist: DistInfo,
) -> dict[str, Any]:
    """What ``load_reid_model`` and ``augreid eval`` need to know about the run, and how it ran."""
    return {
        "model_name": config.model,
        "num_classes": num_classes,
        "method": method.name,
        "method_options": method.model_options(config),
        "pretrained": pretrained,
        "height": config.height,
        "width": config.width,
        "norm_mean": list(config.norm_mean),
        "norm_std": list(config.norm_std),
        "dataset_fingerprint": data.fingerprint,
        "dataset_root": portable_path(data.market.root),
        "dataset_is_demo": data.is_demo,
        "seed": config.seed,
        "label_scheme": config.label_scheme,
        "synthetic": data.synthetic.provenance() if data.synthetic is not None else None,
        "config": config.to_dict(),
        "runtime": {**numerics(config.workers), "world_size": dist.world, "device": str(dist.device)},
        "versions": {"torch": torch.__version__, "torchreid": metadata.version("torchreid")},
    }


def train_reid(
    config: ReidConfig,
    out: str | Path,
    *,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    evaluate_rank: EvaluateRank | None = None,
) -> TrainResult:
    """Train one re-ID model as ``config`` says and write the run folder ``out``.

    ``evaluate_rank`` scores the end-of-training evaluation (``augreid.evaluation.evaluate_rank``
    in the CLI and the pipeline); without it, ``config.evaluate`` is ignored.
    """
    method, choice = check_before_training(config)
    dist = init_distributed("cpu" if config.device == "cpu" else "auto")
    if dist.world > 1 and not method.supports_ddp:
        raise ConfigError(
            f"method {config.method} runs in one process (torchreid's engine); use a method that supports "
            "torchrun (bot)"
        )
    data = prepare_data(config)
    check_images(data)
    run_dir = Path(out).expanduser()
    can_resume = prepare_run_dir(run_dir, config, resume, overwrite) if dist.is_main else False
    barrier(dist)  # the other ranks read what rank 0 decided from the folder
    if not dist.is_main:
        can_resume = resume and (run_dir / CHECKPOINT_NAME).is_file()
    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(config, method, choice, data, run_dir, can_resume, progress, dist, evaluate_rank)
    finally:
        torch.set_num_threads(threads_before)


@dataclass
class StepLog:
    """Optimizer steps taken and the learning rate of the first and the last one (kept in run.json)."""

    optimizer_steps: int = 0
    lr_first: float | None = None
    lr_last: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"optimizer_steps": self.optimizer_steps, "lr_first": self.lr_first, "lr_last": self.lr_last}


def _watch_steps(engine, run_dir: Path, log: StepLog) -> None:
    """Count every optimizer step with its learning rate, and stop at the first non-finite loss
    (the checkpoint of the last finished epoch stays as it was)."""
    inner = engine.forward_backward

    def checked(data):
        lr = float(engine.optimizer.param_groups[0]["lr"])
        summary = inner(data)
        if not math.isfinite(summary["loss"]):
            raise TrainingDiverged(
                f"loss became {summary['loss']} in epoch {engine.epoch + 1}, batch "
                f"{getattr(engine, 'batch_idx', 0) + 1}; lower --lr. {run_dir} keeps the last "
                "finished epoch"
            )
        log.optimizer_steps += 1
        log.lr_first = lr if log.lr_first is None else log.lr_first
        log.lr_last = lr
        return summary

    engine.forward_backward = checked


def _build(config: ReidConfig, method: ReidMethod, choice: str, data: PreparedData, dist: DistInfo):
    gpu = dist.device.type == "cuda"
    with contextlib.redirect_stdout(io.StringIO()):  # torchreid prints its transform list
        datamanager = ReidDataManager(
            data.market,
            data.synthetic,
            config,
            use_gpu=gpu,
            identity=method.identity_batches,
            rank=dist.rank,
            world=dist.world,
        )
    model = method.build_model(config.model, datamanager.num_train_pids, method.model_options(config))
    pretrained = initialise(method.backbone(model), config.model, choice)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    model = model.to(dist.device).to(memory_format=memory_format)
    optimizer = method.build_optimizer(model, config)
    scheduler = method.build_scheduler(optimizer, config)
    trained = DistributedDataParallel(model) if dist.world > 1 else model
    engine = method.build_engine(config, datamanager, trained, optimizer, scheduler, use_gpu=gpu)
    in_memory_format(engine, memory_format)
    return datamanager, model, optimizer, scheduler, engine, pretrained


def _train(
    config: ReidConfig,
    method: ReidMethod,
    choice: str,
    data: PreparedData,
    run_dir: Path,
    can_resume: bool,
    progress: bool,
    dist: DistInfo,
    evaluate_rank: EvaluateRank | None,
) -> TrainResult:
    seed_everything(config.seed)
    datamanager, model, optimizer, scheduler, engine, pretrained = _build(config, method, choice, data, dist)
    info = run_info(config, data, datamanager.num_train_pids, method, pretrained, dist)
    info["train_images"] = {
        "real": datamanager.num_real_images,
        "synthetic": datamanager.num_synthetic_images,
        "real_per_batch": config.batch_size,
        "synthetic_per_batch": datamanager.synthetic_per_batch,
        "steps_per_epoch": len(datamanager.train_loader),
    }
    start, epoch_seconds, epoch_cpu_seconds, steps, curve = 0, [], [], StepLog(), []
    if can_resume:
        payload = read_checkpoint(run_dir)
        model.load_state_dict({k: v.to(dist.device) for k, v in payload["state_dict"].items()})
        start = restore_training_state(payload, optimizer, scheduler)
        if "rng" in payload:
            set_rng_state_tensors(payload["rng"])
        before = read_run_json(run_dir / "run.json")
        epoch_seconds = list(before.get("epoch_seconds", []))[:start]
        epoch_cpu_seconds = list(before.get("epoch_cpu_seconds", []))[:start]
        steps = StepLog(**before.get("schedule", {})) if start else steps
        curve = [point for point in before.get("learning_curve", []) if point["epoch"] <= start]
    writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR)) if dist.is_main else None
    engine.writer, engine.max_epoch = writer, config.epochs
    _watch_steps(engine, run_dir, steps)
    train_loader = engine.train_loader
    quiet = 10**9  # torchreid prints every print_freq batches; the progress bar replaces that
    metrics = None
    try:
        for epoch in range(start, config.epochs):
            engine.epoch = epoch
            engine.train_loader = ProgressLoader(
                train_loader, f"epoch {epoch + 1}/{config.epochs}", progress and dist.is_main
            )
            began, cpu_began = time.perf_counter(), time.process_time()
            engine.train(print_freq=quiet)
            epoch_seconds.append(round(time.perf_counter() - began, 3))
            epoch_cpu_seconds.append(round(time.process_time() - cpu_began, 3))
            if dist.is_main:
                assert writer is not None  # the main rank made one
                writer.add_scalar("Epoch/seconds", epoch_seconds[-1], epoch + 1)
                writer.add_scalar("Epoch/lr", engine.get_current_lr(), epoch + 1)
                curve += _curve_point(config, model, datamanager, evaluate_rank, writer, epoch + 1, steps)
                save_reid_checkpoint(
                    run_dir,
                    model,
                    {
                        **info,
                        "epoch_seconds": epoch_seconds,
                        # CPU time of this process (loader workers excluded): comparable on a busy machine
                        "epoch_cpu_seconds": epoch_cpu_seconds,
                        "schedule": steps.to_dict(),
                        "learning_curve": curve,
                    },
                    epoch + 1,
                    optimizer=optimizer,
                    scheduler=scheduler,
                    extra={"rng": rng_state_tensors()},
                )
            barrier(dist)
        if dist.is_main:
            metrics = _evaluate(config, model, datamanager, evaluate_rank, writer, run_dir)
    finally:
        if writer is not None:
            writer.close()
    if not (run_dir / CHECKPOINT_NAME).is_file():
        raise ConfigError(f"{run_dir}: training produced no checkpoint")
    return TrainResult(run_dir, run_dir / CHECKPOINT_NAME, info, epoch_seconds, metrics, start)


def _curve_point(
    config: ReidConfig, model, datamanager, evaluate_rank: EvaluateRank | None, writer, epoch: int, steps: StepLog
) -> list[dict[str, Any]]:
    """With ``eval_every``, rank-1 and mAP after ``epoch`` (every N epochs and the last) as a learning-curve point.

    Training goes on exactly as without it: the random state is put back (iterating the test loader draws
    from torch's generator) and the next epoch sets the model back to training mode."""
    if not config.eval_every or evaluate_rank is None:
        return []
    if epoch % config.eval_every and epoch != config.epochs:
        return []
    state = rng_state_tensors()
    try:
        metrics = evaluate_end_of_training(model, datamanager, evaluate_rank)
    finally:
        set_rng_state_tensors(state)
    if metrics is None:
        return []
    writer.add_scalar("Test/rank1", metrics["rank1"], steps.optimizer_steps)
    writer.add_scalar("Test/mAP", metrics["mAP"], steps.optimizer_steps)
    return [{"epoch": epoch, "step": steps.optimizer_steps, "rank1": metrics["rank1"], "mAP": metrics["mAP"]}]


def _evaluate(
    config: ReidConfig, model, datamanager, evaluate_rank: EvaluateRank | None, writer, run_dir: Path
) -> dict[str, Any] | None:
    if not config.evaluate or evaluate_rank is None:
        return None
    metrics = evaluate_end_of_training(model, datamanager, evaluate_rank)
    if metrics is None:
        note = "no query/gallery split in this dataset: end-of-training evaluation skipped"
        print(f"note: {note}", file=sys.stderr)
        update_run_json(run_dir, {"end_of_training_eval": {"skipped": note}})
        return None
    writer.add_scalar("Test/rank1", metrics["rank1"], config.epochs)
    writer.add_scalar("Test/mAP", metrics["mAP"], config.epochs)
    update_run_json(run_dir, {"end_of_training_eval": metrics})
    return metrics
