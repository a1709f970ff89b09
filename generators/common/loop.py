"""The resumable training loop a trained generator plug-in builds on.

:class:`ResumableTrainer` owns what every generator's ``train-gen`` does the
same way: the batch order (a pure function of ``(seed, step)``,
``generators.common.data.StepBatchSampler``), logging of scalars and learning
rates to TensorBoard, preview grids every ``log.image_every`` steps (TensorBoard
and ``samples/step_*.png``), checkpoints every ``log.checkpoint_every`` steps
with pruning, a stop on a non-finite loss that keeps the last good weights,
``stop_at`` / time limits, DistributedDataParallel, and exact resumption: the
latest intact checkpoint's weights, optimizers and RNG states are restored, so
that training k steps, stopping and training on gives the weights of an
uninterrupted run bit for bit.

A plug-in subclasses it and supplies the models and one optimisation step:

* :meth:`train_step` (one batch -> logged scalars), :meth:`dataset`,
  :meth:`preview`, :meth:`meta` (the checkpoint description);
* :meth:`checkpoint_modules` (what inference loads), :meth:`training_state` and
  :meth:`restore` (what resuming needs beyond the RNG states);
* optionally :meth:`before_step` (learning-rate schedules), :meth:`after_step`
  (weight averages), :meth:`stage` and :meth:`kept_steps`.

:func:`run_training` is the entry point around it (resume or refuse, ``run.json``,
fit, close).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn.parallel import DistributedDataParallel
from torch.utils.tensorboard import SummaryWriter
from tqdm import tqdm

from augreid.errors import AugreidError, ConfigError
from augreid.io import atomic_write_json
from augreid.progress import progress_bar
from augreid.runtime import DistInfo, any_rank, barrier, numerics, rng_state, set_rng_state
from augreid.versions import git_revision
from generators.common.checkpoint import list_checkpoints, load_resumable, prune_checkpoints, save_checkpoint
from generators.common.data import StepBatchSampler
from generators.common.preview import save_png
from generators.common.train_data import TrainData


class TrainingDiverged(AugreidError):
    """A loss became NaN or infinite; training stopped."""


class NonFinite(Exception):
    """Raised by :meth:`ResumableTrainer.check_finite` inside a step; the loop turns it into :class:`TrainingDiverged`."""

    def __init__(self, values: dict[str, float]) -> None:
        super().__init__(str(values))
        self.values = values


@dataclass
class TrainResult:
    run_dir: Path
    checkpoint: Path | None
    step: int
    finished: bool
    history: list[dict[str, float]] = field(default_factory=list)
    total_steps: int | None = None


def halving_factor(step: int, every: int) -> float:
    """The learning-rate factor of a schedule that halves every ``every`` steps (0 = constant)."""
    return 0.5 ** (step // every) if every else 1.0


class ResumableTrainer:
    """Models, optimizers, loader, logging and checkpoints of one training run (see the module docstring).

    ``cfg`` is the plug-in's config: it needs ``name``, ``to_dict()``, ``train.seed``, ``train.batch_size``,
    ``data.flip``, ``log`` (``generators.common.config.LogConfig``) and ``runtime``
    (``RuntimeConfig``). Subclasses set ``generator_name`` (the registry name written into every
    checkpoint JSON), ``checkpoint_format`` and ``what`` (the generator in messages).
    """

    generator_name = ""
    checkpoint_format = ""
    what = "generator"
    preview_tag = "samples/condition|target_pose|output|target"
    lr_hint = "Lower the learning rate or check the data."

    def __init__(
        self, cfg: Any, data: TrainData, run_dir: Path, device: torch.device, d: DistInfo, *, progress: bool, total: int
    ) -> None:
        self.cfg, self.data, self.run_dir, self.device, self.dist = cfg, data, run_dir, device, d
        self.progress = progress and d.is_main
        self.ckpt_dir = run_dir / "checkpoints"
        self.total = total
        cuda = device.type == "cuda"
        self.amp = cfg.runtime.amp and cuda
        self.channels_last = cfg.runtime.channels_last and cuda
        self.step = 0
        self.writer: SummaryWriter | None = None
        self.history: list[dict[str, float]] = []
        self.last_checkpoint: Path | None = None

    # ---- what a plug-in supplies

    def train_step(self, batch: dict[str, torch.Tensor], stage: int) -> dict[str, torch.Tensor]:
        """One optimisation step on a batch already on the device; returns detached scalars to log."""
        raise NotImplementedError

    def dataset(self) -> torch.utils.data.Dataset:
        """The dataset the loader indexes with ``(pair_index, flipped)`` keys."""
        raise NotImplementedError

    def preview(self) -> torch.Tensor:
        """A (3, H, W) grid in [0, 1] of the current inference weights on fixed training pairs."""
        raise NotImplementedError

    def meta(self) -> dict[str, Any]:
        """The checkpoint description (JSON); must hold ``generator``, ``format``, ``dataset_fingerprint``, ``step``."""
        raise NotImplementedError

    def checkpoint_modules(self) -> Mapping[str, torch.nn.Module | None]:
        """``prefix -> module`` saved as the inference weights (``None`` entries are skipped)."""
        raise NotImplementedError

    def training_state(self) -> dict[str, Any]:
        """What resuming needs besides the inference weights; must hold ``config`` and ``rng`` (:func:`rng_state`)."""
        raise NotImplementedError

    def restore(self, step: int, tensors: dict[str, torch.Tensor], state: dict[str, Any]) -> None:
        """Load a checkpoint's inference ``tensors`` and training ``state`` (the RNG states are the loop's)."""
        raise NotImplementedError

    def trained_modules(self) -> Iterable[torch.nn.Module]:
        """The modules put in training mode by :meth:`fit` and checked for finite weights on divergence."""
        raise NotImplementedError

    def guarded_modules(self) -> Iterable[torch.nn.Module]:
        """Whose weights must be finite for a diverged run to still save a checkpoint (default: the trained ones)."""
        return self.trained_modules()

    def learning_rates(self) -> dict[str, float]:
        """TensorBoard tag -> current learning rate."""
        return {}

    def before_step(self) -> None:
        """Called before every step (e.g. to set this step's learning rates)."""

    def after_step(self, stage: int) -> None:
        """Called after every step, ``self.step`` already counted (e.g. to update a weight average)."""

    def stage(self, step: int) -> int:
        """The training stage of ``step`` (1 for a single-stage generator)."""
        return 1

    def kept_steps(self) -> set[int]:
        """Steps whose checkpoints are saved beyond the schedule and never pruned."""
        return set()

    # ---- shared machinery

    def wrap(self, module: torch.nn.Module | None) -> Any:
        """``module`` in DistributedDataParallel under a multi-process launch, else itself."""
        if module is None or self.dist.world == 1:
            return module
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DistributedDataParallel(module, device_ids=ids)

    def autocast(self) -> contextlib.AbstractContextManager:
        if not self.amp:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=torch.bfloat16)

    def to_device(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        fmt = torch.channels_last if self.channels_last else torch.contiguous_format
        out = {}
        for key, value in batch.items():
            value = value.to(self.device, non_blocking=True)
            out[key] = value.contiguous(memory_format=fmt) if value.ndim == 4 else value.contiguous()
        return out

    def check_finite(self, values: dict[str, torch.Tensor]) -> None:
        """Raise :class:`NonFinite` (on every rank together) when a value is NaN or infinite."""
        bad = {k: float(v.detach()) for k, v in values.items() if not torch.isfinite(v).all()}
        if any_rank(self.dist, bool(bad)):
            raise NonFinite(bad or {"(another process)": float("nan")})

    def save(self) -> Path | None:
        if not self.dist.is_main:
            return None
        self.last_checkpoint = save_checkpoint(
            self.ckpt_dir,
            self.step,
            self.checkpoint_modules(),
            self.meta(),
            self.training_state(),
            fmt=self.checkpoint_format,
        )
        prune_checkpoints(self.ckpt_dir, self.cfg.log.keep_last, keep_steps=self.kept_steps())
        return self.last_checkpoint

    def resume(self) -> bool:
        """Load the latest complete checkpoint of the run folder; False when there is none."""
        found = load_resumable(self.ckpt_dir, say=tqdm.write, tidy=self.dist.is_main, what=self.what)
        if found is None:
            return False
        step, weights, tensors, state = found
        self.restore(step, tensors, state)
        set_rng_state(state["rng"])
        self.step = step
        self.last_checkpoint = weights
        return True

    def base_state(self) -> dict[str, Any]:
        """The part of :meth:`training_state` every trainer has: step, RNG states, config."""
        return {"step": self.step, "rng": rng_state(), "config": self.cfg.to_dict()}

    # ---- logging

    def open_writer(self) -> None:
        if self.dist.is_main:
            self.writer = SummaryWriter(str(self.run_dir / "tensorboard"), purge_step=self.step or None)

    def log_scalars(self, values: dict[str, torch.Tensor], rate: float) -> None:
        record = {k: float(v) for k, v in values.items()}
        record["step"] = self.step
        record["it_per_s"] = rate
        self.history.append(record)
        if self.writer is None:
            return
        for key, value in values.items():
            self.writer.add_scalar(key, float(value), self.step)
        for tag, lr in self.learning_rates().items():
            self.writer.add_scalar(tag, lr, self.step)
        self.writer.add_scalar("perf/iterations_per_second", rate, self.step)

    def log_images(self) -> None:
        if not self.dist.is_main:
            return
        grid = self.preview()
        if self.writer is not None:
            self.writer.add_image(self.preview_tag, grid, self.step)
        save_png(grid, self.run_dir / "samples" / f"step_{self.step:08d}.png")

    # ---- the loop

    def loader(self, end: int) -> torch.utils.data.DataLoader:
        t = self.cfg.train
        sampler = StepBatchSampler(
            len(self.data.pairs),
            t.batch_size,
            self.step,
            end,
            seed=t.seed,
            flip=self.cfg.data.flip,
            rank=self.dist.rank,
            world=self.dist.world,
        )
        workers = self.cfg.runtime.num_workers
        return torch.utils.data.DataLoader(
            self.dataset(),
            batch_sampler=sampler,
            num_workers=workers,
            pin_memory=self.device.type == "cuda",
            persistent_workers=False,
            prefetch_factor=4 if workers else None,
        )

    def _should_stop(self, started: float, time_limit: float | None) -> bool:
        return any_rank(self.dist, time_limit is not None and time.monotonic() - started > time_limit)

    def fit(self, stop_at: int | None = None, time_limit: float | None = None) -> bool:
        """Train until the end (True) or until ``stop_at`` / the time limit (False)."""
        end = self.total if stop_at is None else min(stop_at, self.total)
        log = self.cfg.log
        for module in self.trained_modules():
            module.train()
        bar = progress_bar(
            total=self.total,
            initial=self.step,
            unit="it",
            desc="train-gen",
            disable=not self.progress,
            dynamic_ncols=True,
        )
        started = tick = time.monotonic()
        tick_step = self.step
        kept = self.kept_steps()
        try:
            for batch in self.loader(end):
                self.before_step()
                stage = self.stage(self.step)
                b = self.to_device(batch)
                try:
                    values = self.train_step(b, stage)
                except NonFinite as err:
                    self._diverged(err, stage)
                self.step += 1
                self.after_step(stage)
                bar.update(1)
                if self.step % log.log_every == 0 or self.step == end:
                    now = time.monotonic()
                    rate = (self.step - tick_step) / max(now - tick, 1e-9)
                    tick, tick_step = now, self.step
                    self.log_scalars(values, rate)
                    bar.set_postfix(
                        stage=stage, **{k.split("/")[-1][:10]: f"{float(v):.4f}" for k, v in list(values.items())[:2]}
                    )
                if self.step % log.image_every == 0 or self.step == end:
                    self.log_images()
                if (self.step % log.checkpoint_every == 0 or self.step in kept) and self.step != end:
                    self.save()  # the step `end` is saved once, after the loop
                if self._should_stop(started, time_limit):
                    break
        finally:
            bar.close()
        self.save()
        if self.writer is not None:
            self.writer.flush()
        return self.step >= self.total

    def _diverged(self, err: NonFinite, stage: int) -> None:
        """Save the current weights if they are still finite, then stop with a clear message."""
        finite = all(torch.isfinite(p).all() for m in self.guarded_modules() for p in m.parameters())
        if finite:
            self.save()
        where = self.last_checkpoint
        values = ", ".join(f"{k} = {v}" for k, v in err.values.items())
        raise TrainingDiverged(
            f"non-finite loss at step {self.step} (stage {stage}): {values}. Training stopped; "
            + (f"last good checkpoint: {where}" if where else "no checkpoint was written yet")
            + f". {self.lr_hint}"
        )


def refuse_changed_settings(
    saved: Mapping[str, Any], current: Mapping[str, Any], where: Path, sections: Iterable[str]
) -> None:
    """A ``ConfigError`` listing every setting of ``sections`` that differs between a run folder's checkpoints
    (``saved``) and this run (``current``); step counts (keys ending in ``steps``) may change."""
    changed = []
    for section in sections:
        for key, value in current[section].items():
            if key.endswith("steps") or saved.get(section, {}).get(key) == value:
                continue
            changed.append(f"{section}.{key}: {saved.get(section, {}).get(key)!r} -> {value!r}")
    if changed:
        raise ConfigError(
            f"{where} holds checkpoints of a different configuration ({'; '.join(changed)}); "
            "use another --out folder or --no-resume"
        )


def write_run_info(trainer: ResumableTrainer, parameters: dict[str, int]) -> None:
    """``run.json``: what was trained on what, with which settings, code and numerics."""
    cfg = trainer.cfg
    atomic_write_json(
        trainer.run_dir / "run.json",
        {
            "format": trainer.checkpoint_format,
            "generator": trainer.generator_name,
            "preset": cfg.name,
            "dataset_fingerprint": trainer.data.fingerprint,
            "dataset_root": str(trainer.data.root),
            "pairs": int(len(trainer.data.pairs)),
            "images": len(trainer.data.cache.names),
            "pair_source": trainer.data.pair_source,
            "parameters": parameters,
            "device": str(trainer.device),
            "world_size": trainer.dist.world,
            "resumed_at_step": trainer.step,
            "runtime": numerics(),
            "git": git_revision(),
            "config": cfg.to_dict(),
        },
    )


def run_training(
    trainer: ResumableTrainer,
    *,
    resume: bool,
    stop_at: int | None,
    time_limit: float | None,
    write_info: Callable[[ResumableTrainer], None],
) -> TrainResult:
    """Resume (or refuse a folder that holds checkpoints), write ``run.json``, train, close the writer."""
    if resume:
        trainer.resume()
    elif list_checkpoints(trainer.ckpt_dir):
        raise ConfigError(f"{trainer.run_dir} already holds checkpoints; resume (the default) or choose another --out")
    if trainer.dist.is_main:
        write_info(trainer)
    if trainer.step >= trainer.total:
        return TrainResult(trainer.run_dir, trainer.last_checkpoint, trainer.step, True, total_steps=trainer.total)
    trainer.open_writer()
    try:
        finished = trainer.fit(stop_at=stop_at, time_limit=time_limit)
    finally:
        if trainer.writer is not None:
            trainer.writer.close()
    barrier(trainer.dist)
    return TrainResult(trainer.run_dir, trainer.last_checkpoint, trainer.step, finished, trainer.history, trainer.total)
