"""The generation loop of ``augreid synth``: batches of condition images through a
generator (``generators.base.Generator``), scored and written by a thread pool.

DataLoader workers decode condition images, the model runs batch after batch
(bfloat16 autocast on CUDA), and writer threads score and write the JPEGs of
finished batches while the model runs the next one.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from augreid.data.imaging import encode_jpeg
from augreid.data.market import read_image
from augreid.errors import DatasetError
from augreid.progress import progress_bar
from augreid.runtime import DistInfo
from augreid.synth import output as outdir
from augreid.synth.config import SynthConfig
from augreid.synth.plan import Job
from augreid.synth.quality import IdentityScorer, TargetScores, failed_filters
from generators.base import to_tensor_image, to_uint8_image


def load_condition(path: Path, shape: tuple[int, int]):
    """A condition image as a ``[3, H, W]`` float tensor in [-1, 1]."""
    img = read_image(path)
    if (img.size[1], img.size[0]) != tuple(shape):
        raise DatasetError(
            f"{path}: image is {img.size[1]}x{img.size[0]} (HxW) but the generator works at {shape[0]}x{shape[1]}"
        )
    return to_tensor_image(np.asarray(img, dtype=np.uint8))


class ConditionBatches(Dataset[tuple[int, torch.Tensor, torch.Tensor, torch.Tensor]]):
    """Map-style dataset: item i = (i, condition images [B, 3, H, W], target ids [B], condition
    keypoints [B, 18, 2]) of batch i. The keypoints are the dataset's, in the images' own coordinates
    (which are the generator's: :func:`load_condition` refuses any other size)."""

    def __init__(
        self, batches: list[list[Job]], image_dir: Path, shape: tuple[int, int], poses: Mapping[str, np.ndarray]
    ) -> None:
        self.batches = batches
        self.image_dir = image_dir
        self.shape = shape
        self.poses = poses

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int):
        cache: dict[str, Any] = {}  # a batch repeats each condition image K times
        images, targets, poses = [], [], []
        for job in self.batches[i]:
            if job.source not in cache:
                cache[job.source] = load_condition(self.image_dir / job.source, self.shape)
            images.append(cache[job.source])
            targets.append(job.target)
            poses.append(np.asarray(self.poses[job.source], dtype=np.int64))
        return i, torch.stack(images), torch.tensor(targets, dtype=torch.long), torch.from_numpy(np.stack(poses))


def score_and_write(
    items: list[tuple[int, Job]],
    images: np.ndarray,
    identity: list[float] | None,
    masks: TargetScores,
    config: SynthConfig,
    image_dir: Path,
) -> list[dict]:
    """Runs in a writer thread: quality scores, filter, atomic JPEG write; returns journal records."""
    records = []
    for i, job in items:
        quality = masks.score(images[i], job.target)
        if identity is not None:
            quality["identity"] = round(float(identity[i]), 4)
        failed = failed_filters(quality, config.min_quality)
        if not failed:
            outdir.write_image(image_dir / job.file, encode_jpeg(images[i], config.jpeg_quality))
        records.append({"file": job.file, "quality": quality, "kept": not failed, "failed": failed})
    return records


def loader_workers(requested: int, device) -> int:
    """``-1`` = auto: one worker on CPU (the model already uses the cores; decoding a
    small JPEG is cheap, bench/results/synth_cpu.md found 0 and 2 workers within
    noise of each other), up to 4 on CUDA to keep the GPU fed."""
    if requested >= 0:
        return requested
    if device.type != "cuda":
        return 1
    return max(1, min(4, (os.cpu_count() or 2) - 1))


@dataclass
class GenerationStats:
    images: int = 0
    batches: int = 0
    seconds: float = 0.0
    model_seconds: float = 0.0
    wait_seconds: float = 0.0  # main thread blocked on the data loader


def generate_batches(
    generator,
    batches: list[list[Job]],
    mine: list[int],
    done: set[str],
    target_maps,
    masks: TargetScores,
    config: SynthConfig,
    dist: DistInfo,
    real_dir: Path,
    out: Path,
    shape: tuple[int, int],
    scorer: IdentityScorer | None,
    progress: bool,
    condition_poses: Mapping[str, np.ndarray],
) -> GenerationStats:
    """Generate the batches ``mine`` (indices into ``batches``), skipping finished images;
    ``condition_poses``: the dataset's keypoints of every condition image, handed to the generator."""
    stats = GenerationStats()
    todo = sum(1 for b in mine for job in batches[b] if job.file not in done)
    if not mine:
        return stats
    device = dist.device
    use_amp = config.amp and device.type == "cuda"
    workers = loader_workers(config.num_workers, device)
    loader = DataLoader(
        ConditionBatches([batches[b] for b in mine], real_dir, shape, condition_poses),
        batch_size=None,
        shuffle=False,
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers > 0 else None,
    )
    journal = outdir.Journal(out, dist.rank)
    image_dir = out / outdir.IMAGES
    image_dir.mkdir(parents=True, exist_ok=True)
    pending: deque = deque()
    bar = progress_bar(
        total=todo,
        unit="img",
        desc=f"synth rank {dist.rank}" if dist.world > 1 else "synth",
        disable=not progress,
        dynamic_ncols=True,
    )

    def collect(block: bool) -> None:
        while pending and (block or pending[0].done()):
            records = pending.popleft().result()
            journal.append(records)
            bar.update(len(records))
            stats.images += len(records)

    start = time.perf_counter()
    torch.manual_seed(config.seed)
    try:
        with ThreadPoolExecutor(max_workers=max(1, config.writer_threads), thread_name_prefix="synth-writer") as pool:
            try:
                fetch = time.perf_counter()
                for i, conditions, targets, poses in loader:
                    stats.wait_seconds += time.perf_counter() - fetch
                    jobs = batches[mine[i]]
                    conditions = conditions.to(device, non_blocking=True)
                    maps = target_maps[targets.to(device, non_blocking=True)]
                    tick = time.perf_counter()
                    autocast = torch.autocast("cuda", dtype=torch.bfloat16) if use_amp else contextlib.nullcontext()
                    with torch.no_grad(), autocast:
                        generated = generator.generate(conditions, maps, condition_poses=poses.numpy())
                    images = to_uint8_image(generated)  # the copy to the CPU waits for the GPU
                    identity = scorer.score(generated, [j.pid for j in jobs]) if scorer is not None else None
                    stats.model_seconds += time.perf_counter() - tick
                    stats.batches += 1
                    items = [(k, job) for k, job in enumerate(jobs) if job.file not in done]
                    pending.append(pool.submit(score_and_write, items, images, identity, masks, config, image_dir))
                    collect(block=False)
                    while len(pending) > 2 * max(1, config.writer_threads):
                        pending[0].result()
                        collect(block=False)
                    fetch = time.perf_counter()
            finally:
                # Record whatever was written before an error or an interrupt, so a resume redoes less.
                collect(block=True)
    finally:
        bar.close()
        journal.close()
        stats.seconds = time.perf_counter() - start
    return stats
