"""k-means over normalised poses with missing joints, and cluster medoids.

Missing joints are handled by *impute-then-iterate* (the "k-POD" scheme):
missing coordinates start at the mean of that joint over the poses that have
it; scikit-learn's ``KMeans`` clusters the completed vectors; every missing
coordinate is replaced by the same coordinate of its pose's cluster centre;
and the two steps repeat, warm-started from the previous centres, until the
assignment stops changing. A missing joint therefore never pulls a pose
towards a cluster (it always agrees with its own centre), unlike zero-filling,
which would make "wrist missing" look like "wrist at the torso centre".

The medoid of a cluster is a real training pose: among the members that are
complete enough to render, the one closest to the centre, where a present
joint costs its squared distance to the centre's joint and a missing joint
costs ``missing_penalty`` (in squared torso lengths). The penalty makes the
medoid prefer complete poses among near-equally central ones.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.cluster import KMeans
from threadpoolctl import threadpool_limits

from augreid.errors import ConfigError


@dataclass
class PoseClusters:
    """Result of ``cluster_poses`` for ``N`` poses and ``K`` clusters."""

    labels: np.ndarray  # (N,) int, cluster of each pose
    centres: np.ndarray  # (K, 18, 2) normalised centre coordinates
    sizes: np.ndarray  # (K,) members per cluster
    completed: np.ndarray  # (N, 18, 2) coordinates with missing joints imputed
    iterations: int  # impute/cluster rounds run
    inertia: float  # k-means objective on the completed data


def cluster_poses(
    coords: np.ndarray, mask: np.ndarray, k: int, *, seed: int = 0, n_init: int = 10, max_rounds: int = 20
) -> PoseClusters:
    """Masked k-means of normalised poses ``coords (N, 18, 2)`` (NaN where ``~mask``)."""
    coords = np.asarray(coords, dtype=np.float64)
    mask = np.asarray(mask, dtype=bool)
    n = len(coords)
    if k < 1:
        raise ConfigError(f"number of target poses must be at least 1, got {k}")
    if n < k:
        raise ConfigError(f"cannot make {k} pose clusters from {n} usable training poses; lower --num-poses")
    if max_rounds < 1:
        raise ConfigError(f"k-means needs at least one round, got kmeans_max_rounds={max_rounds}")
    flat_mask = np.repeat(mask, 2, axis=1)  # (N, 36): y and x of a joint go missing together
    data = coords.reshape(n, -1).copy()
    observed = np.where(flat_mask, data, 0.0)
    counts = flat_mask.sum(axis=0)
    col_mean = np.where(counts > 0, observed.sum(axis=0) / np.maximum(counts, 1), 0.0)
    data = np.where(flat_mask, data, col_mean[None, :])

    labels: np.ndarray | None = None
    model: Any = None
    rounds = 0
    for rounds in range(1, max_rounds + 1):  # noqa: B007 (the count is reported after the loop)
        if model is None:
            model = KMeans(n_clusters=k, n_init=n_init, random_state=seed)
        else:
            model = KMeans(n_clusters=k, init=model.cluster_centers_, n_init=1, random_state=seed)
        # One thread: the data are tiny, and OpenMP threads competing with
        # other work on a busy machine make k-means many times slower.
        with threadpool_limits(limits=1):
            new_labels = model.fit_predict(data)
        data = np.where(flat_mask, data, model.cluster_centers_[new_labels])
        if labels is not None and np.array_equal(new_labels, labels):
            labels = new_labels
            break
        labels = new_labels
    assert labels is not None  # the loop ran: max_rounds >= 1 was checked above
    # Canonical order: biggest cluster first, ties by the centre's coordinates, so
    # that pose ids do not depend on k-means' arbitrary numbering.
    centres = model.cluster_centers_
    sizes = np.bincount(labels, minlength=k)
    order = sorted(range(k), key=lambda c: (-sizes[c], tuple(np.round(centres[c], 6))))
    remap = np.empty(k, dtype=np.int64)
    remap[order] = np.arange(k)
    return PoseClusters(
        labels=remap[labels],
        centres=centres[order].reshape(k, -1, 2),
        sizes=sizes[order],
        completed=data.reshape(coords.shape),
        iterations=rounds,
        inertia=float(model.inertia_),
    )


def medoid_costs(coords: np.ndarray, mask: np.ndarray, centre: np.ndarray, missing_penalty: float) -> np.ndarray:
    """Distance of each pose to ``centre`` (18, 2): squared error on present joints + penalty per missing one."""
    diff = np.where(mask[..., None], np.asarray(coords) - centre[None], 0.0)
    return (diff**2).sum(axis=(1, 2)) + missing_penalty * (~mask).sum(axis=1)


def cluster_medoids(
    coords: np.ndarray,
    mask: np.ndarray,
    clusters: PoseClusters,
    renderable: np.ndarray,
    *,
    missing_penalty: float = 1.0,
) -> list[int | None]:
    """Index (into the N poses) of each cluster's medoid, or ``None`` when no member is renderable."""
    medoids: list[int | None] = []
    for c in range(len(clusters.centres)):
        members = np.flatnonzero((clusters.labels == c) & renderable)
        if len(members) == 0:
            medoids.append(None)
            continue
        cost = medoid_costs(coords[members], mask[members], clusters.centres[c], missing_penalty)
        medoids.append(int(members[np.argmin(cost)]))  # argmin takes the first of ties: stable
    return medoids
