"""Distances between query and gallery features, one block of query rows at a time.

The formulas are torchreid's (``torchreid.reid.metrics.distance``): squared
euclidean ``|q|^2 + |g|^2 - 2 q.g`` and cosine ``1 - q.g / (|q| |g|)``, so a
score computed here equals torchreid's ``compute_distance_matrix`` followed by
``evaluate_rank``. The matrix products run in torch (on a GPU when asked);
only one ``block_size x num_gallery`` block exists at a time per worker.

k-reciprocal re-ranking (torchreid's ``re_ranking``) needs the query-query,
gallery-gallery and query-gallery matrices at once, so it is the one path that
holds full matrices in memory.
"""

from __future__ import annotations

from contextlib import contextmanager

import numpy as np
import torch
import torch.nn.functional as F

# augreid.reid first: its __init__ silences the Cython warning torchreid prints on import.
import augreid.reid  # noqa: F401, I001
from torchreid.reid.utils.rerank import re_ranking

from augreid.evaluation.options import METRICS, RerankOptions
from augreid.evaluation.protocol import (
    DEFAULT_BLOCK,
    EvaluationError,
    PerQueryResult,
    check_sets,
    default_workers,
    evaluate_distmat,
    rank_blocks,
)


def check_device(device: str) -> str:
    """A torch device this machine has, or an error saying which is missing."""
    try:
        parsed = torch.device(device)
    except RuntimeError as err:
        raise EvaluationError(f"device {device!r} is not a torch device ({err})") from None
    if parsed.type == "cuda" and not torch.cuda.is_available():
        raise EvaluationError(f"device {device!r} was requested but torch sees no CUDA GPU; use --device cpu")
    return device


def check_metric(metric: str) -> str:
    if metric not in METRICS:
        raise EvaluationError(f"unknown distance metric {metric!r}: choose one of {', '.join(METRICS)}")
    return metric


def as_features(features, what: str):
    """A 2-D float32 torch tensor, or an error naming ``what``."""
    tensor = features if isinstance(features, torch.Tensor) else torch.from_numpy(np.asarray(features))
    if tensor.ndim != 2:
        raise EvaluationError(f"{what} features must be 2-D (num_items x dim), got shape {tuple(tensor.shape)}")
    if tensor.shape[0] == 0:
        raise EvaluationError(f"the {what} set is empty (0 feature rows)")
    if not torch.isfinite(tensor).all():
        raise EvaluationError(f"{what} features contain NaN or infinite values")
    return tensor.detach().to(torch.float32)


def check_features(qf, gf):
    qf, gf = as_features(qf, "query"), as_features(gf, "gallery")
    if qf.shape[1] != gf.shape[1]:
        raise EvaluationError(f"query features have dimension {qf.shape[1]} but gallery features {gf.shape[1]}")
    return qf, gf


class BlockDistances:
    """Distances from blocks of query rows to the whole gallery, torchreid's formulas."""

    def __init__(self, gf, metric: str = "euclidean", device: str = "cpu"):
        self.metric = check_metric(metric)
        self.device = torch.device(check_device(device))
        gallery = gf.to(self.device)
        if metric == "cosine":
            self.gallery_t = F.normalize(gallery, p=2, dim=1).t().contiguous()
        else:
            self.gallery_t = gallery.t().contiguous()
            self.gallery_sq = torch.pow(gallery, 2).sum(dim=1)

    def __call__(self, q_block) -> np.ndarray:
        with torch.inference_mode():
            q = q_block.to(self.device)
            if self.metric == "cosine":
                dist = 1 - torch.mm(F.normalize(q, p=2, dim=1), self.gallery_t)
            else:
                dist = torch.pow(q, 2).sum(dim=1, keepdim=True) + self.gallery_sq[None, :]
                dist.addmm_(q, self.gallery_t, beta=1, alpha=-2)
            return dist.cpu().numpy()


def distance_matrix(qf, gf, metric: str = "euclidean", device: str = "cpu") -> np.ndarray:
    """The full distance matrix (small sets, re-ranking, tests)."""
    qf, gf = check_features(qf, gf)
    return BlockDistances(gf, metric, device)(qf)


@contextmanager
def torch_threads(count: int | None):
    """Temporarily set torch's intra-op thread count (None: leave it)."""
    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def evaluate_features(
    qf,
    gf,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    metric: str = "euclidean",
    block_size: int = DEFAULT_BLOCK,
    device: str = "cpu",
    workers: int | None = None,
    rerank: RerankOptions | None = None,
    progress: bool = False,
) -> PerQueryResult:
    """Per-query protocol results from query and gallery features, block by block.

    Without re-ranking, memory stays at ``workers`` blocks of
    ``block_size x num_gallery`` distances whatever the set sizes. On the CPU
    each worker computes and ranks its own block single-threaded (torch is set
    to one thread for the duration): two threads of OpenMP each inside two
    worker threads would oversubscribe the cores, and OpenMP degrades badly
    when its threads wait on a busy core.
    """
    qf, gf = check_features(qf, gf)
    labels = check_sets(qf.shape[0], gf.shape[0], q_pids, g_pids, q_camids, g_camids, what="feature set")
    if rerank is not None:
        dist = rerank_distances(qf, gf, metric, rerank, device=device)
        return evaluate_distmat(dist, *labels, block_size=block_size, workers=workers, progress=progress)
    workers = workers or default_workers()
    compute = BlockDistances(gf, metric, device)
    on_cpu = compute.device.type == "cpu"
    with torch_threads(1 if on_cpu and workers > 1 else None):
        return rank_blocks(
            qf.shape[0],
            block_size,
            lambda start, stop: compute(qf[start:stop]),
            *labels,
            workers=workers,
            progress=progress,
        )


def rerank_distances(qf, gf, metric: str, options: RerankOptions, device: str = "cpu") -> np.ndarray:
    """torchreid's k-reciprocal re-ranking of the query-gallery distances (full matrices)."""
    q_g = distance_matrix(qf, gf, metric, device)
    q_q = distance_matrix(qf, qf, metric, device)
    g_g = distance_matrix(gf, gf, metric, device)
    return re_ranking(q_g, q_q, g_g, k1=options.k1, k2=options.k2, lambda_value=options.lambda_value)
