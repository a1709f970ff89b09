"""``torchrun`` support: rank, world size, device, barriers; a plain run is world size 1."""

from __future__ import annotations

import os
from dataclasses import dataclass
from datetime import timedelta

from augreid.errors import ConfigError


@dataclass
class DistInfo:
    rank: int
    world: int
    local_rank: int
    device: "object"  # torch.device
    owns_group: bool  # we initialised the process group and must destroy it

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def pick_device(preference: str, local_rank: int = 0):
    import torch

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
    if device.type == "cuda" and device.index >= torch.cuda.device_count():
        raise ConfigError(f"--device {device}: only {torch.cuda.device_count()} CUDA device(s) are visible")
    return device


def init_distributed(preference: str = "auto") -> DistInfo:
    """Join the process group when launched by ``torchrun`` (``WORLD_SIZE`` > 1)."""
    import torch
    import torch.distributed as dist

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
        import torch.distributed as dist

        if info.device.type == "cuda":
            dist.barrier(device_ids=[info.device.index])
        else:
            dist.barrier()


def broadcast_error(info: DistInfo, message: str | None) -> str | None:
    """Rank 0's error message (or None) on every rank, so that all ranks stop together."""
    if info.world == 1:
        return message
    import torch.distributed as dist

    box = [message]
    dist.broadcast_object_list(box, src=0, device=info.device if info.device.type == "cuda" else None)
    return box[0]


def all_gather_objects(info: DistInfo, obj):
    if info.world == 1:
        return [obj]
    import torch.distributed as dist

    gathered = [None] * info.world
    dist.all_gather_object(gathered, obj)
    return gathered


def finish(info: DistInfo) -> None:
    if info.owns_group:
        import torch.distributed as dist

        dist.destroy_process_group()
