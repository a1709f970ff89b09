"""Nearest-neighbour search with faiss: exact (flat) indexes, on a GPU when faiss has one.

Distances are those of the protocol: squared euclidean (``IndexFlatL2``) or
cosine distance ``1 - cos`` (``IndexFlatIP`` on L2-normalised copies). Results
are re-sorted by (distance, gallery index) so that the order of equal
distances follows the protocol's tie rule instead of faiss's heap order.
"""

from __future__ import annotations

import faiss
import numpy as np

from augreid.evaluation.distance import check_metric, distance_matrix
from augreid.evaluation.protocol import EvaluationError


def faiss_gpu_count() -> int:
    """GPUs faiss can use (0 with faiss-cpu, or faiss-gpu on a machine without a GPU)."""
    if not hasattr(faiss, "StandardGpuResources"):
        return 0
    try:
        return int(faiss.get_num_gpus())
    except RuntimeError:  # CUDA present but unusable
        return 0


def _as_float32(x, what: str) -> np.ndarray:
    if hasattr(x, "detach"):
        x = x.detach().cpu().numpy()
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float32))
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise EvaluationError(f"{what} features must be a non-empty 2-D array, got shape {arr.shape}")
    return arr


def _normalized(x: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12))  # torch F.normalize's eps


def build_index(gallery: np.ndarray, metric: str, use_gpu: bool | None = None):
    """An exact faiss index over ``gallery`` (already normalised for cosine)."""
    dim = gallery.shape[1]
    index: faiss.Index = faiss.IndexFlatL2(dim) if metric == "euclidean" else faiss.IndexFlatIP(dim)
    if use_gpu is None:
        use_gpu = faiss_gpu_count() > 0
    if use_gpu:
        if faiss_gpu_count() == 0:
            raise EvaluationError("a GPU faiss index was requested but faiss sees no GPU (install faiss-gpu)")
        index = faiss.index_cpu_to_all_gpus(index)
    index.add(gallery)
    return index


def knn_search(
    query, gallery, k: int, metric: str = "euclidean", use_gpu: bool | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """The ``k`` nearest gallery items of every query: ``(distances, indices)``, each ``Q x k``."""
    check_metric(metric)
    q = _as_float32(query, "query")
    g = _as_float32(gallery, "gallery")
    if q.shape[1] != g.shape[1]:
        raise EvaluationError(f"query features have dimension {q.shape[1]} but gallery features {g.shape[1]}")
    k = min(int(k), g.shape[0])
    if k < 1:
        raise EvaluationError(f"k must be at least 1, got {k}")
    if metric == "cosine":
        q, g = _normalized(q), _normalized(g)
    index = build_index(g, metric, use_gpu)
    scores, indices = index.search(q, k)
    distances = scores if metric == "euclidean" else 1.0 - scores
    return sort_ties(distances.astype(np.float32), indices.astype(np.int64))


def sort_ties(distances: np.ndarray, indices: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Order each row by (distance, index)."""
    rows = np.arange(distances.shape[0])[:, None]
    order = np.lexsort((indices, distances, np.broadcast_to(rows, distances.shape)), axis=-1)
    return distances[rows, order], indices[rows, order]


def brute_force_knn(query, gallery, k: int, metric: str = "euclidean") -> tuple[np.ndarray, np.ndarray]:
    """Reference search: the full distance matrix and a stable sort (tests, tiny sets)."""
    dist = distance_matrix(query, gallery, metric)
    k = min(int(k), dist.shape[1])
    order = np.argsort(dist, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(dist, order, axis=1), order.astype(np.int64)


def junk_columns(q_pid: int, q_camid: int, g_pids: np.ndarray, g_camids: np.ndarray) -> np.ndarray:
    """Gallery items the protocol removes for this query (same pid, same camera)."""
    return np.nonzero((g_pids == q_pid) & (g_camids == q_camid))[0]


def drop_junk(ranked: np.ndarray, junk: list[np.ndarray], k: int) -> list[np.ndarray]:
    return [row[~np.isin(row, drop)][:k] for row, drop in zip(ranked, junk)]


def top_matches(
    query,
    gallery,
    q_pids,
    q_camids,
    g_pids,
    g_camids,
    k: int = 10,
    metric: str = "euclidean",
    use_gpu: bool | None = None,
) -> list[np.ndarray]:
    """The first ``k`` gallery indices each query sees under the protocol (junk removed), via faiss."""
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    junk = [junk_columns(p, c, g_pids, g_camids) for p, c in zip(q_pids, q_camids)]
    extra = max((len(j) for j in junk), default=0)
    _, idx = knn_search(query, gallery, k + extra, metric, use_gpu)
    return drop_junk(idx, junk, k)


def top_matches_from_distances(dist: np.ndarray, q_pids, q_camids, g_pids, g_camids, k: int = 10) -> list[np.ndarray]:
    """Same as ``top_matches`` for rows of an explicit (e.g. re-ranked) distance matrix."""
    g_pids, g_camids = np.asarray(g_pids), np.asarray(g_camids)
    junk = [junk_columns(p, c, g_pids, g_camids) for p, c in zip(q_pids, q_camids)]
    extra = max((len(j) for j in junk), default=0)
    ranked = np.argsort(dist, axis=1, kind="stable")[:, : k + extra]
    return drop_junk(ranked, junk, k)
