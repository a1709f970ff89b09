"""``augreid train-reid``: torchreid training on real, or real + synthetic, images.

A run folder holds::

    config.toml       the exact resolved settings (feed back with --config)
    checkpoint.pth    weights + optimizer/scheduler/RNG state, saved every epoch
    run.json          model, input size, normalisation, dataset fingerprint,
                      synthetic manifest hash, seed, epoch times, final metrics
    tensorboard/      Train/loss*, Train/acc, Train/lr (torchreid), Epoch/*, Test/*

Everything that can be wrong with the input (unknown model, missing weights
file, a synthetic folder from another dataset or empty) is checked before the
first batch. An interrupted run resumes from its last finished epoch when
started again with the same settings.
"""

from __future__ import annotations

import contextlib
import io
import random
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augreid.errors import ConfigError
from augreid.io import atomic_write_text
from augreid.reid.checkpoint import (
    CHECKPOINT_NAME,
    build_reid_model,
    check_model_name,
    read_checkpoint,
    restore_training_state,
    save_reid_checkpoint,
    update_run_json,
)
from augreid.reid.config import ReidConfig

CONFIG_NAME = "config.toml"
TENSORBOARD_DIR = "tensorboard"


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
    """Load and validate the real dataset and the synthetic folder (no torch needed)."""
    from augreid.data.sources import resolve_source
    from augreid.reid.datasets import load_synthetic_set

    source = resolve_source(config.data)
    market = source.load()
    synthetic = None
    if config.uses_synthetic:
        synthetic = load_synthetic_set(config.synthetic, market, config.max_synthetic_per_id, config.seed)
    return PreparedData(market, market.fingerprint(), source.is_demo, synthetic)


def use_cuda(config: ReidConfig) -> bool:
    import torch

    if config.device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("device: cuda was asked for but torch sees no CUDA device")
    return config.device != "cpu" and torch.cuda.is_available()


def check_before_training(config: ReidConfig) -> None:
    """Settings errors that need no data: model name, weights file, device."""
    check_model_name(config.model)
    use_cuda(config)
    if config.pretrained is not None and not Path(config.pretrained).expanduser().is_file():
        raise ConfigError(f"pretrained weights {config.pretrained} not found (augreid never downloads weights)")


def prepare_run_dir(run_dir: Path, config: ReidConfig, resume: bool, overwrite: bool) -> bool:
    """Create ``run_dir`` or check it holds this very run; return True when there is a checkpoint to resume."""
    config_path = run_dir / CONFIG_NAME
    checkpoint = run_dir / CHECKPOINT_NAME
    if config_path.is_file() and not overwrite:
        if config_path.read_text(encoding="utf-8") != config.to_toml():
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({config_path}); choose another --out, "
                "or pass --overwrite to start it again"
            )
        if checkpoint.is_file() and not resume:
            raise ConfigError(f"{run_dir} already has a checkpoint; pass --resume to continue it or --overwrite")
    elif run_dir.is_dir() and any(run_dir.iterdir()) and not overwrite:
        raise ConfigError(f"{run_dir} is not empty and holds no augreid re-ID run; choose another --out")
    if overwrite:
        for name in (CHECKPOINT_NAME, "run.json", CONFIG_NAME):
            (run_dir / name).unlink(missing_ok=True)
        if (run_dir / TENSORBOARD_DIR).is_dir():
            import shutil

            shutil.rmtree(run_dir / TENSORBOARD_DIR)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(config_path, config.to_toml())
    return resume and checkpoint.is_file()


def load_pretrained(model, path: str) -> None:
    """Local ImageNet weights through torchreid's ``load_pretrained_weights``; no match is an error."""
    import pickle

    from torchreid.reid.utils import load_pretrained_weights

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            load_pretrained_weights(model, str(Path(path).expanduser()))
        except (pickle.UnpicklingError, RuntimeError, EOFError) as err:
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise ConfigError(f"pretrained weights {path}: cannot be read ({first})") from None
    if any("cannot be loaded" in str(w.message) for w in caught):
        raise ConfigError(f"pretrained weights {path}: no layer matches model; wrong architecture?")


def rng_state() -> dict[str, Any]:
    import numpy as np
    import torch

    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict[str, Any]) -> None:
    import numpy as np
    import torch

    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


class ProgressLoader:
    """A DataLoader seen through tqdm, so torchreid's epoch loop shows a progress bar."""

    def __init__(self, loader, description: str, enabled: bool) -> None:
        self.loader, self.description, self.enabled = loader, description, enabled

    def __len__(self) -> int:
        return len(self.loader)

    def __iter__(self):
        from tqdm import tqdm

        return iter(tqdm(self.loader, desc=self.description, leave=False, disable=not self.enabled, file=sys.stderr,
                         mininterval=2.0))


def run_info(config: ReidConfig, data: PreparedData, num_classes: int) -> dict[str, Any]:
    """What ``load_reid_model`` and ``augreid eval`` need to know about the run."""
    import torch
    import torchreid

    return {
        "model_name": config.model,
        "num_classes": num_classes,
        "loss": config.loss,
        "height": config.height,
        "width": config.width,
        "norm_mean": list(config.norm_mean),
        "norm_std": list(config.norm_std),
        "dataset_fingerprint": data.fingerprint,
        "dataset_root": str(data.market.root),
        "dataset_is_demo": data.is_demo,
        "seed": config.seed,
        "label_scheme": config.label_scheme,
        "synthetic": data.synthetic.provenance() if data.synthetic is not None else None,
        "config": config.to_dict(),
        "versions": {"torch": torch.__version__, "torchreid": torchreid.__version__},
    }


def train_reid(
    config: ReidConfig,
    out: str | Path,
    *,
    resume: bool = True,
    overwrite: bool = False,
    progress: bool = True,
) -> TrainResult:
    """Train one re-ID model as ``config`` says and write the run folder ``out``."""
    check_before_training(config)
    data = prepare_data(config)
    run_dir = Path(out).expanduser()
    can_resume = prepare_run_dir(run_dir, config, resume, overwrite)

    import torch

    threads_before = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        return _train(config, data, run_dir, can_resume, progress)
    finally:
        torch.set_num_threads(threads_before)


def _train(config: ReidConfig, data: PreparedData, run_dir: Path, can_resume: bool, progress: bool) -> TrainResult:
    from torch.utils.tensorboard import SummaryWriter
    from torchreid.reid import optim
    from torchreid.reid.utils import set_random_seed

    from augreid.reid.engine import ReidDataManager, build_engine, evaluate_with_torchreid

    set_random_seed(config.seed)
    gpu = use_cuda(config)
    with contextlib.redirect_stdout(io.StringIO()):  # torchreid prints its transform list
        datamanager = ReidDataManager(data.market, data.synthetic, config, use_gpu=gpu)
    model = build_reid_model(config.model, datamanager.num_train_pids, loss=config.loss)
    if config.pretrained is not None:
        load_pretrained(model, config.pretrained)
    if gpu:
        model = model.cuda()
    optimizer = optim.build_optimizer(model, optim=config.optimizer, lr=config.lr, weight_decay=config.weight_decay)
    stepsize = list(config.stepsize) if config.lr_scheduler == "multi_step" else config.stepsize[-1]
    scheduler = optim.build_lr_scheduler(
        optimizer, lr_scheduler=config.lr_scheduler, stepsize=stepsize, gamma=config.gamma, max_epoch=config.epochs
    )
    engine = build_engine(config, datamanager, model, optimizer, scheduler, use_gpu=gpu)
    info = run_info(config, data, datamanager.num_train_pids)
    info["train_images"] = {"real": datamanager.num_real_images, "synthetic": datamanager.num_synthetic_images,
                            "synthetic_per_batch": datamanager.synthetic_per_batch}

    start, epoch_seconds = 0, []
    if can_resume:
        payload = read_checkpoint(run_dir)
        model.load_state_dict({k: v.to(next(model.parameters()).device) for k, v in payload["state_dict"].items()})
        start = restore_training_state(payload, optimizer, scheduler)
        if "rng" in payload:
            set_rng_state(payload["rng"])
        from augreid.reid.checkpoint import read_run_json

        epoch_seconds = list(read_run_json(run_dir / "run.json").get("epoch_seconds", []))[:start]

    writer = SummaryWriter(log_dir=str(run_dir / TENSORBOARD_DIR))
    engine.writer = writer
    engine.max_epoch = config.epochs
    train_loader = engine.train_loader
    quiet = 10**9  # torchreid prints every print_freq batches; the progress bar replaces that
    try:
        for epoch in range(start, config.epochs):
            engine.epoch = epoch
            engine.train_loader = ProgressLoader(train_loader, f"epoch {epoch + 1}/{config.epochs}", progress)
            began = time.perf_counter()
            engine.train(print_freq=quiet)
            epoch_seconds.append(round(time.perf_counter() - began, 3))
            writer.add_scalar("Epoch/seconds", epoch_seconds[-1], epoch + 1)
            writer.add_scalar("Epoch/lr", engine.get_current_lr(), epoch + 1)
            save_reid_checkpoint(
                run_dir, model, {**info, "epoch_seconds": epoch_seconds}, epoch + 1,
                optimizer=optimizer, scheduler=scheduler, extra={"rng": rng_state()},
            )
        metrics = None
        if config.evaluate:
            metrics = evaluate_with_torchreid(model, datamanager)
            if metrics is not None:
                writer.add_scalar("Test/rank1", metrics["rank1"], config.epochs)
                writer.add_scalar("Test/mAP", metrics["mAP"], config.epochs)
                update_run_json(run_dir, {"torchreid_eval": metrics})
    finally:
        writer.close()
    if not (run_dir / CHECKPOINT_NAME).is_file():  # epochs already done and no checkpoint: cannot happen
        raise ConfigError(f"{run_dir}: training produced no checkpoint")
    return TrainResult(run_dir, run_dir / CHECKPOINT_NAME, info, epoch_seconds, metrics, start)
