"""The single-query Market-1501 protocol, exactly as torchreid's ``eval_market1501`` scores it.

Per query ``q``:

* gallery items with the same pid *and* the same camera as ``q`` are removed
  ("junk"); items of the same pid seen by another camera are the correct
  matches; every other item, distractors (pid 0) included, is a wrong match;
* a query with no correct match left is skipped and counted (torchreid skips
  it silently); if no query at all has a match, that is an error, not a 0;
* CMC: a query counts as a hit at rank ``r`` when its first correct match is
  among the first ``r`` kept items;
* AP: by default the non-interpolated average precision torchreid computes,
  ``mean_k(k / rank_k)`` over the correct matches ``k = 1..n`` at 1-based
  ranks ``rank_k``; optionally the trapezoidal AP of the official Market-1501
  MATLAB code (``compute_AP.m``);
* INP (inverse negative penalty, Ye et al., "Deep Learning for Person
  Re-identification: A Survey and Outlook", TPAMI 2021, as fast-reid and the
  AGW code compute it): ``n / rank_n``, the number of correct matches over the
  1-based rank of the last (hardest) correct match among the kept items; mINP
  is its mean over the valid queries. It does not depend on the AP mode.

Ties: items are ordered by distance, then by gallery index (a stable sort).
torchreid's ``np.argsort`` is not stable, so with exact distance ties its
result is arbitrary; without ties the two agree exactly.

Instead of sorting gallery indices (``argsort``, then looking up labels for the
whole ranking, as torchreid does in Python), only the *values* of each
distance row are sorted and the rank of each same-pid item is found by binary
search. That needs one sorted copy of one block of rows at a time, and the
sort runs in numpy's SIMD code with the GIL released, so blocks are ranked on
several threads.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Callable, Iterable

import numpy as np

from augreid.errors import AugreidError
from augreid.progress import progress_bar

AP_MODES = ("torchreid", "trapezoid")
AP_LABELS = {
    "torchreid": "non-interpolated AP (torchreid eval_market1501)",
    "trapezoid": "trapezoidal AP (official Market-1501 MATLAB compute_AP)",
}
TIE_RULE = "distance ascending, then gallery index ascending (stable)"
DEFAULT_BLOCK = 256


class EvaluationError(AugreidError):
    """Evaluation inputs are inconsistent (lengths, empty sets, no valid query)."""


@dataclass
class PerQueryResult:
    """Per-query outcome of the protocol; the unit a bootstrap resamples.

    ``first_rank`` is the 0-based rank of the first correct match among the
    kept gallery items (-1: the query has no correct match and is skipped).
    ``ap``, ``ap_trapezoid`` and ``inp`` (inverse negative penalty) are NaN
    for skipped queries.
    """

    q_pids: np.ndarray
    first_rank: np.ndarray
    num_matches: np.ndarray
    ap: np.ndarray
    ap_trapezoid: np.ndarray
    inp: np.ndarray
    num_gallery: int

    @property
    def valid(self) -> np.ndarray:
        return self.first_rank >= 0

    @property
    def num_valid(self) -> int:
        return int(self.valid.sum())

    @property
    def num_skipped(self) -> int:
        return int(len(self.first_rank) - self.num_valid)

    def ap_values(self, mode: str = "torchreid") -> np.ndarray:
        check_ap_mode(mode)
        return self.ap if mode == "torchreid" else self.ap_trapezoid

    def hits(self, rank: int) -> np.ndarray:
        """1.0 where the first correct match is within the top ``rank`` (NaN for skipped queries)."""
        out = ((self.first_rank >= 0) & (self.first_rank < rank)).astype(np.float64)
        out[~self.valid] = np.nan
        return out

    @staticmethod
    def concat(parts: list["PerQueryResult"]) -> "PerQueryResult":
        return PerQueryResult(
            q_pids=np.concatenate([p.q_pids for p in parts]),
            first_rank=np.concatenate([p.first_rank for p in parts]),
            num_matches=np.concatenate([p.num_matches for p in parts]),
            ap=np.concatenate([p.ap for p in parts]),
            ap_trapezoid=np.concatenate([p.ap_trapezoid for p in parts]),
            inp=np.concatenate([p.inp for p in parts]),
            num_gallery=parts[0].num_gallery,
        )


@dataclass
class Metrics:
    """Aggregate scores of one run: CMC (float32, like torchreid), mAP and mINP."""

    cmc: np.ndarray
    mAP: float
    num_valid: int
    num_skipped: int
    ap_mode: str = "torchreid"
    ranks: dict[int, float] = field(default_factory=dict)
    mINP: float = float("nan")

    def rank(self, r: int) -> float:
        return float(self.cmc[min(r, len(self.cmc)) - 1])


def check_ap_mode(mode: str) -> str:
    if mode not in AP_MODES:
        raise EvaluationError(f"unknown AP mode {mode!r}: choose one of {', '.join(AP_MODES)}")
    return mode


# ---------------------------------------------------------------- input checks


def as_labels(values, what: str) -> np.ndarray:
    """A 1-D int64 array of pids or camids, or an error naming ``what``."""
    if hasattr(values, "detach"):
        values = values.detach().cpu().numpy()
    arr = np.asarray(values)
    if arr.ndim != 1:
        raise EvaluationError(f"{what} must be 1-D, got shape {arr.shape}")
    if arr.size and not np.issubdtype(arr.dtype, np.integer):
        if not np.issubdtype(arr.dtype, np.floating) or not np.all(np.equal(np.mod(arr, 1), 0)):
            raise EvaluationError(f"{what} must hold integers, got dtype {arr.dtype}")
    return arr.astype(np.int64, copy=False)


def check_sets(
    num_query: int, num_gallery: int, q_pids, g_pids, q_camids, g_camids, what: str = "distance matrix"
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validate lengths of labels against ``num_query x num_gallery``; return int64 label arrays."""
    q_pids, g_pids = as_labels(q_pids, "q_pids"), as_labels(g_pids, "g_pids")
    q_camids, g_camids = as_labels(q_camids, "q_camids"), as_labels(g_camids, "g_camids")
    if num_query == 0:
        raise EvaluationError(f"the query set is empty ({what} has 0 query rows)")
    if num_gallery == 0:
        raise EvaluationError(f"the gallery is empty ({what} has 0 gallery columns)")
    for name, arr, expected, side in (
        ("q_pids", q_pids, num_query, "query"),
        ("q_camids", q_camids, num_query, "query"),
        ("g_pids", g_pids, num_gallery, "gallery"),
        ("g_camids", g_camids, num_gallery, "gallery"),
    ):
        if len(arr) != expected:
            raise EvaluationError(f"{name} has {len(arr)} entries but the {what} has {expected} {side} items")
    return q_pids, g_pids, q_camids, g_camids


def as_distmat(distmat) -> np.ndarray:
    if hasattr(distmat, "detach"):
        distmat = distmat.detach().cpu().numpy()
    dist = np.asarray(distmat)
    if dist.ndim != 2:
        raise EvaluationError(f"distance matrix must be 2-D (num_query x num_gallery), got shape {dist.shape}")
    if not np.issubdtype(dist.dtype, np.floating):
        dist = dist.astype(np.float64)  # integers compare exactly in float64
    return dist


def check_finite_block(block: np.ndarray, start: int) -> None:
    if np.isnan(block).any():
        row = start + int(np.argwhere(np.isnan(block))[0, 0])
        raise EvaluationError(f"distance matrix has NaN values (first in query row {row}); check the features")


# ---------------------------------------------------------------- the ranking of one block


def rank_block(dist: np.ndarray, q_pids, g_pids, q_camids, g_camids) -> PerQueryResult:
    """Apply the protocol to ``dist`` (``B x G``) for ``B`` queries against the whole gallery."""
    num_q, num_g = dist.shape
    rows, cols = same_pid_pairs(q_pids, g_pids)
    values = dist[rows, cols]
    junk = q_camids[rows] == g_camids[cols]
    bounds = np.searchsorted(rows, np.arange(num_q + 1))
    before = items_before(dist, rows, cols, values, bounds)

    # Same-pid items of each row in (distance, index) order: how many junk
    # items precede each correct match, and which match (k = 1..n) it is.
    order = np.lexsort((cols, values, rows))
    rows, junk, before = rows[order], junk[order], before[order]
    seg_start = bounds[rows]
    junk_cum = np.concatenate([[0], np.cumsum(junk)])
    good_cum = np.concatenate([[0], np.cumsum(~junk)])
    idx = np.arange(len(rows))
    junk_before = junk_cum[idx] - junk_cum[seg_start]
    k = (good_cum[idx] - good_cum[seg_start] + 1)[~junk]
    good_rows = rows[~junk]
    rank0 = (before - junk_before)[~junk]  # 0-based rank among kept items

    n = np.bincount(good_rows, minlength=num_q)
    k = k.astype(np.float64)
    precision = k / (rank0 + 1)
    previous = np.where(rank0 > 0, (k - 1) / np.maximum(rank0, 1), 1.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        ap = np.bincount(good_rows, weights=precision, minlength=num_q) / n
        ap_trap = np.bincount(good_rows, weights=(previous + precision) / 2, minlength=num_q) / n
    first = np.full(num_q, -1, dtype=np.int64)
    is_first = k == 1
    first[good_rows[is_first]] = rank0[is_first]
    # INP: the precision at the last correct match (k == n), n / (1-based rank of the hardest match).
    inp = np.full(num_q, np.nan)
    is_last = k == n[good_rows]
    inp[good_rows[is_last]] = precision[is_last]
    return PerQueryResult(q_pids.copy(), first, n.astype(np.int64), ap, ap_trap, inp, num_g)


def same_pid_pairs(q_pids: np.ndarray, g_pids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """All (query row, gallery column) pairs with equal pids, row-major, columns ascending.

    Built from the gallery grouped by pid rather than a ``B x G`` comparison:
    a query has tens of same-pid items among tens of thousands.
    """
    order = np.argsort(g_pids, kind="stable")
    sorted_pids = g_pids[order]
    starts = np.searchsorted(sorted_pids, q_pids, side="left")
    counts = np.searchsorted(sorted_pids, q_pids, side="right") - starts
    rows = np.repeat(np.arange(len(q_pids)), counts)
    offsets = np.arange(len(rows)) - np.repeat(np.cumsum(counts) - counts, counts)
    cols = order[np.repeat(starts, counts) + offsets]
    return rows, cols


def items_before(dist: np.ndarray, rows, cols, values, bounds) -> np.ndarray:
    """For each (row, col) item, how many items of its row precede it in (distance, index) order."""
    ordered = np.sort(dist, axis=1)
    less = np.empty(len(rows), dtype=np.int64)
    tied = np.empty(len(rows), dtype=np.int64)
    for b in range(dist.shape[0]):
        lo, hi = bounds[b], bounds[b + 1]
        if lo == hi:
            continue
        less[lo:hi] = np.searchsorted(ordered[b], values[lo:hi], side="left")
        tied[lo:hi] = np.searchsorted(ordered[b], values[lo:hi], side="right") - less[lo:hi]
    # Exact ties with other items are rare with real features; break them by index.
    for t in np.nonzero(tied > 1)[0]:
        less[t] += np.count_nonzero(dist[rows[t], : cols[t]] == values[t])
    return less


# ---------------------------------------------------------------- whole matrices, block by block


def default_workers() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def rank_blocks(
    num_query: int,
    block_size: int,
    make_block: Callable[[int, int], np.ndarray],
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    workers: int | None = None,
    progress: bool = False,
) -> PerQueryResult:
    """Rank query rows block by block on ``workers`` threads.

    ``make_block(start, stop)`` returns rows ``[start, stop)`` of the distance
    matrix. It runs inside the worker, so computing distances and sorting them
    proceed in parallel and at most ``workers`` blocks exist at a time.
    """
    workers = workers or default_workers()
    starts = list(range(0, num_query, block_size))

    def job(start: int) -> PerQueryResult:
        stop = min(start + block_size, num_query)
        block = make_block(start, stop)
        check_finite_block(block, start)
        return rank_block(block, q_pids[start:stop], g_pids, q_camids[start:stop], g_camids)

    bar = None
    if progress:
        bar = progress_bar(total=len(starts), desc="ranking", unit="block", leave=False)
    parts: list[PerQueryResult] = []
    try:
        if workers == 1:
            for start in starts:
                parts.append(job(start))
                if bar is not None:
                    bar.update()
        else:
            with ThreadPoolExecutor(max_workers=workers) as pool:
                for part in pool.map(job, starts):
                    parts.append(part)
                    if bar is not None:
                        bar.update()
    finally:
        if bar is not None:
            bar.close()
    return PerQueryResult.concat(parts)


def evaluate_distmat(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    block_size: int = DEFAULT_BLOCK,
    workers: int | None = None,
    progress: bool = False,
) -> PerQueryResult:
    """Per-query protocol results for a full distance matrix (numpy or torch)."""
    dist = as_distmat(distmat)
    labels = check_sets(dist.shape[0], dist.shape[1], q_pids, g_pids, q_camids, g_camids)
    return rank_blocks(
        dist.shape[0], block_size, lambda start, stop: dist[start:stop], *labels, workers=workers, progress=progress
    )


# ---------------------------------------------------------------- aggregate scores


def summarize(
    result: PerQueryResult, max_rank: int = 50, ap_mode: str = "torchreid", ranks: Iterable[int] = (1, 5, 10, 20)
) -> Metrics:
    """CMC, mAP and mINP over the valid queries, in torchreid's form.

    The CMC has ``min(max_rank, num_gallery)`` entries. torchreid fails when a
    valid query keeps fewer than ``max_rank`` gallery items; here such a query
    simply stays a hit at every later rank.
    """
    check_ap_mode(ap_mode)
    valid = result.valid
    num_valid = int(valid.sum())
    if num_valid == 0:
        raise EvaluationError(
            f"no valid query: none of the {len(valid)} queries has a correct match in the gallery "
            "(same person, another camera); check that query and gallery come from the same dataset"
        )
    length = min(int(max_rank), result.num_gallery)
    first = result.first_rank[valid]
    counts = np.bincount(first[first < length], minlength=length)[:length]
    # float32 sums divided by a float, as torchreid does, so the values match bit for bit.
    cmc = np.cumsum(counts).astype(np.float32) / float(num_valid)
    mAP = float(np.mean(result.ap_values(ap_mode)[valid]))
    mINP = float(np.mean(result.inp[valid]))
    metrics = Metrics(cmc, mAP, num_valid, result.num_skipped, ap_mode, mINP=mINP)
    metrics.ranks = {int(r): metrics.rank(int(r)) for r in ranks}
    return metrics


def evaluate_rank(
    distmat,
    q_pids,
    g_pids,
    q_camids,
    g_camids,
    max_rank: int = 50,
    use_metric_cuhk03: bool = False,
    use_cython: bool = True,
):
    """Drop-in replacement for ``torchreid.reid.metrics.evaluate_rank`` (Market-1501 metric).

    Returns ``(cmc, mAP)``: a float32 array of ``min(max_rank, num_gallery)``
    entries and a float. ``use_cython`` is accepted and ignored; the CUHK03
    single-shot metric (random gallery sampling) is not offered.
    """
    if use_metric_cuhk03:
        raise EvaluationError("the CUHK03 single-gallery-shot metric is not supported; use the Market-1501 protocol")
    result = evaluate_distmat(distmat, q_pids, g_pids, q_camids, g_camids)
    metrics = summarize(result, max_rank=max_rank)
    return metrics.cmc, np.float64(metrics.mAP)
