"""Process setup shared by train-gen, synth and train-reid: device, ``torchrun`` process group, seeds, RNG state.

A plain run is world size 1; under ``torchrun`` (``WORLD_SIZE`` > 1) every rank
joins one process group. This module sits below every layer (it imports only
torch, numpy and ``augreid.errors``) so that generators can use it too.
"""

from __future__ import annotations

import os
import platform
import random
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
import torch.distributed as dist

from augreid.errors import ConfigError


@dataclass
class DistInfo:
    rank: int = 0
    world: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # we initialised the process group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto``, ``cpu``, ``cuda`` (this rank's GPU) or ``cuda:N``, or a ``ConfigError`` saying why not."""
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(preference)
    except RuntimeError:
        raise ConfigError(f"--device {preference!r}: expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", local_rank)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"--device {preference}: no CUDA device is available here; use --device cpu (or auto)")
    if device.type == "cuda" and (device.index or 0) >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


def init_distributed(preference: str = "auto") -> DistInfo:
    """Pick the device and join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(preference, local_rank)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    owns = False
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, timeout=timedelta(minutes=60))
        owns = True
    if dist.is_available() and dist.is_initialized():
        rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank, world, local_rank, device, owns)


def barrier(info: DistInfo) -> None:
    if info.world > 1:
        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def any_rank(info: DistInfo, flag: bool) -> bool:
    """True on every rank when ``flag`` is true on at least one, so that all ranks stop together."""
    if info.world == 1:
        return flag
    box = torch.tensor([1.0 if flag else 0.0], device=info.device)
    dist.all_reduce(box, op=dist.ReduceOp.MAX)
    return bool(box.item())


def broadcast_error(info: DistInfo, message: str | None) -> str | None:
    """Rank 0's error message (or None) on every rank, so that all ranks stop together."""
    if info.world == 1:
        return message
    box = [message]
    dist.broadcast_object_list(box, src=0, device=info.device if info.device.type == "cuda" else None)
    return box[0]


def all_gather_objects(info: DistInfo, obj: Any) -> list[Any]:
    if info.world == 1:
        return [obj]
    gathered: list[Any] = [None] * info.world
    dist.all_gather_object(gathered, obj)
    return gathered


def finish(info: DistInfo) -> None:
    if info.owns_group:
        dist.destroy_process_group()


# ---------------------------------------------------------------- seeds and RNG state


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def rng_state() -> dict[str, Any]:
    """Python, NumPy, torch (and CUDA) generator states as they are; needs ``torch.load(weights_only=False)``."""
    state = {"python": random.getstate(), "numpy": np.random.get_state(), "torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved."""
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def rng_state_tensors() -> dict[str, Any]:
    """Python, NumPy and torch CPU generator states in types that ``torch.load(weights_only=True)`` accepts."""
    legacy = cast(tuple[str, np.ndarray, int, int, float], np.random.get_state())  # the legacy tuple form
    kind, keys, pos, has_gauss, cached = legacy
    return {
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype("int64")), pos, has_gauss, cached],
        "torch": torch.get_rng_state(),
    }


def set_rng_state_tensors(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state_tensors` saved (``weights_only`` loading turns tuples into lists)."""
    py = state["python"]
    random.setstate((py[0], tuple(py[1]), py[2]))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype("uint32"), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])


# Environment variables that change which CPU kernels PyTorch runs, and so the last bits of every result.
KERNEL_ENV = ("OMP_NUM_THREADS", "ATEN_CPU_CAPABILITY", "ONEDNN_MAX_CPU_ISA")


def cpu_model() -> str:
    """The CPU's model name: two machines with the same kernels can still differ in speed, and a
    report's timings and numbers are read against the machine that produced them."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def numerics(workers: int | None = None) -> dict[str, Any]:
    """What, besides settings and seed, decides a training's exact numbers (bench/results/reproducibility.md).

    Same values here, same settings and seed: same weights. The thread count, the
    number of loader workers and the CPU kernels (AVX-512 vs AVX2 vectorisation in
    ATen and oneDNN, chosen from the machine's CPU unless pinned by the variables
    in ``KERNEL_ENV``) each change them.
    """
    record: dict[str, Any] = {
        "threads": torch.get_num_threads(),
        "cpu": cpu_model(),
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "deterministic_algorithms": torch.are_deterministic_algorithms_enabled(),
        "env": {name: os.environ[name] for name in KERNEL_ENV if name in os.environ},
    }
    if workers is not None:
        record["workers"] = workers
    return record
