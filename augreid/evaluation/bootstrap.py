"""Paired bootstrap over query identities.

Queries of one person are not independent (same clothes, same gallery
matches), so the unit that is resampled is the query *identity*: each
resample draws identities with replacement and takes every valid query of a
drawn identity as many times as it was drawn. "Paired": both runs are scored
on the same resampled identities, so the spread reflects how much the
*difference* depends on which people happen to be in the query set.

Seed-to-seed training noise is a different source of variance; it is
reported separately (mean and standard deviation across seeds).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from augreid.evaluation.protocol import EvaluationError


@dataclass(frozen=True)
class BootstrapCI:
    """A point estimate with a percentile bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float
    resamples: int
    seed: int

    def contains(self, value: float) -> bool:
        return self.low <= value <= self.high

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class IdentityResampler:
    """Multinomial counts of how often each query identity is drawn, shared by all metrics and runs."""

    identities: np.ndarray  # unique pids of the valid queries
    inverse: np.ndarray  # identity index of each valid query
    weights: np.ndarray  # resamples x identities draw counts
    resamples: int
    seed: int

    @classmethod
    def create(cls, q_pids: np.ndarray, valid: np.ndarray, resamples: int = 1000, seed: int = 0) -> "IdentityResampler":
        if resamples < 1:
            raise EvaluationError(f"the number of bootstrap resamples must be at least 1, got {resamples}")
        pids = np.asarray(q_pids)[np.asarray(valid, dtype=bool)]
        if len(pids) == 0:
            raise EvaluationError("cannot bootstrap: no valid query")
        identities, inverse = np.unique(pids, return_inverse=True)
        rng = np.random.default_rng(seed)
        n = len(identities)
        weights = rng.multinomial(n, np.full(n, 1.0 / n), size=resamples)
        return cls(identities, inverse, weights, resamples, seed)

    def resampled_means(self, values: np.ndarray) -> np.ndarray:
        """Mean of per-query ``values`` (valid queries only) in every resample."""
        values = np.asarray(values, dtype=np.float64)
        if len(values) != len(self.inverse):
            raise EvaluationError(f"bootstrap got {len(values)} per-query values for {len(self.inverse)} valid queries")
        sums = np.bincount(self.inverse, weights=values, minlength=len(self.identities))
        counts = np.bincount(self.inverse, minlength=len(self.identities)).astype(np.float64)
        return (self.weights @ sums) / (self.weights @ counts)

    def interval(self, draws: np.ndarray, estimate: float, level: float) -> BootstrapCI:
        tail = (1.0 - level) / 2.0 * 100.0
        low, high = np.percentile(draws, [tail, 100.0 - tail])
        return BootstrapCI(float(estimate), float(low), float(high), level, self.resamples, self.seed)

    def mean_ci(self, values: np.ndarray, level: float = 0.95) -> BootstrapCI:
        values = np.asarray(values, dtype=np.float64)
        return self.interval(self.resampled_means(values), float(values.mean()), level)

    def difference_ci(self, baseline: np.ndarray, other: np.ndarray, level: float = 0.95) -> BootstrapCI:
        """CI of ``mean(other) - mean(baseline)`` (per-query values of the valid queries)."""
        baseline = np.asarray(baseline, dtype=np.float64)
        other = np.asarray(other, dtype=np.float64)
        if baseline.shape != other.shape:
            raise EvaluationError(
                f"paired bootstrap needs the same queries in both runs: got {baseline.shape} and {other.shape}"
            )
        draws = self.resampled_means(other - baseline)
        return self.interval(draws, float(other.mean() - baseline.mean()), level)


def paired_bootstrap(
    baseline: np.ndarray,
    other: np.ndarray,
    q_pids: np.ndarray,
    valid: np.ndarray | None = None,
    resamples: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> BootstrapCI:
    """CI of the difference ``other - baseline`` of a per-query metric, resampling query identities.

    ``baseline`` and ``other`` hold one value per query (all queries, with
    ``valid`` marking the scored ones, or the valid ones only when ``valid``
    is None).
    """
    baseline = np.asarray(baseline, dtype=np.float64)
    other = np.asarray(other, dtype=np.float64)
    if valid is None:
        valid = np.ones(len(baseline), dtype=bool)
    valid = np.asarray(valid, dtype=bool)
    if not (len(baseline) == len(other) == len(q_pids) == len(valid)):
        raise EvaluationError(
            f"paired bootstrap: lengths differ (baseline {len(baseline)}, other {len(other)}, "
            f"q_pids {len(q_pids)}, valid {len(valid)})"
        )
    resampler = IdentityResampler.create(q_pids, valid, resamples, seed)
    return resampler.difference_ci(baseline[valid], other[valid], level)
