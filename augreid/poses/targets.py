"""Target poses for synthesis: clustered medoids, random training poses, or a user's file.

Every target is a pose in the image frame (``(18, 2)`` int32 ``(y, x)``, -1
missing). Only the poses handed in are used; synth hands in the *training*
keypoints only, so no test pose can become a target (except through
``--poses file``, where the user chooses, and the dataset's own test CSV is
refused by the caller).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augreid.data.keypoints import read_keypoints_csv, visible
from augreid.data.pairs import is_pose_usable
from augreid.data.pose import clip_pose
from augreid.errors import ConfigError, KeypointError
from augreid.poses.cluster import cluster_medoids, cluster_poses
from augreid.poses.normalize import denormalise, normalise_poses

MODES = ("clustered", "random", "file")


@dataclass
class TargetPoses:
    """The K target poses of a synth run and how they were chosen."""

    mode: str
    poses: np.ndarray  # (K, 18, 2) int32, in the image frame
    sources: list[str]  # the training image (or file row) each pose is taken from
    shape: tuple[int, int]
    sizes: list[int] | None = None  # training poses per cluster (clustered mode)
    considered: int = 0  # poses looked at (training poses or file rows)
    unusable: int = 0  # poses too incomplete to cluster / draw from
    skipped: int = 0  # would-be targets dropped as too incomplete to render
    examples: list[np.ndarray] = field(default_factory=list)  # per target (M, 18, 2) float, aligned members
    info: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.poses)

    def summary(self) -> dict:
        return {
            "mode": self.mode,
            "count": len(self),
            "sources": list(self.sources),
            "cluster_sizes": None if self.sizes is None else [int(s) for s in self.sizes],
            "considered": int(self.considered),
            "unusable": int(self.unusable),
            "skipped_too_incomplete": int(self.skipped),
            "keypoints": [p.tolist() for p in self.poses],
            **self.info,
        }

    def describe(self) -> str:
        lines = [f"{len(self)} target poses ({self.mode}) from {self.considered} poses"]
        if self.unusable:
            lines.append(f"  {self.unusable} poses too incomplete or too small to use")
        if self.skipped:
            lines.append(f"  {self.skipped} targets skipped: too incomplete to render")
        if self.sizes is not None:
            lines.append("  cluster sizes: " + ", ".join(f"#{i}={s}" for i, s in enumerate(self.sizes)))
        return "\n".join(lines)


def in_frame(pose: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    return clip_pose(np.asarray(pose, dtype=np.int32), shape)


def is_renderable(pose: np.ndarray, min_joints: int) -> bool:
    """A usable target: both shoulders and hips present and at least ``min_joints`` joints."""
    return is_pose_usable(pose, min_visible=min_joints)


def _frame_shape(shape: tuple[int, int]) -> tuple[int, int]:
    """``(H, W)`` as a tuple of ints, whatever sequence the caller passed (a list read from JSON, numpy ints)."""
    return int(shape[0]), int(shape[1])


def _stack(poses: Mapping[str, np.ndarray], shape: tuple[int, int]) -> tuple[list[str], np.ndarray]:
    names = sorted(poses)
    if not names:
        return names, np.zeros((0, 18, 2), dtype=np.int32)
    return names, np.stack([in_frame(poses[n], shape) for n in names])


def clustered_targets(
    poses: Mapping[str, np.ndarray],
    k: int,
    shape: tuple[int, int],
    *,
    seed: int = 0,
    min_cluster_joints: int = 8,
    min_target_joints: int = 14,
    min_torso_fraction: float = 0.15,
    missing_penalty: float = 1.0,
    n_init: int = 10,
    max_rounds: int = 20,
    examples: int = 5,
) -> TargetPoses:
    """K-means medoids of the (training) ``poses``; see ``augreid.poses.cluster``."""
    names, stack = _stack(poses, shape)
    # A torso a few pixels long is a failed detection; normalising by it would
    # blow the pose up into a cluster of its own.
    norm = normalise_poses(stack, min_torso=min_torso_fraction * shape[0])
    usable = norm.valid & (visible(stack).sum(axis=1) >= min_cluster_joints)
    idx = np.flatnonzero(usable)
    if len(idx) < k:
        raise ConfigError(
            f"only {len(idx)} of {len(names)} training poses are complete enough to cluster "
            f"(need neck or both shoulders, a hip, a torso of {min_torso_fraction:.0%} of the image height "
            f"and {min_cluster_joints} joints); "
            f"cannot make {k} clusters: lower --num-poses"
        )
    coords, mask = norm.coords[idx], norm.mask[idx]
    clusters = cluster_poses(coords, mask, k, seed=seed, n_init=n_init, max_rounds=max_rounds)
    renderable = np.array([is_renderable(stack[i], min_target_joints) for i in idx])
    medoids = cluster_medoids(coords, mask, clusters, renderable, missing_penalty=missing_penalty)

    rng = np.random.RandomState(seed)
    kept, sources, sizes, example_sets = [], [], [], []
    for c, m in enumerate(medoids):
        if m is None:
            continue
        i = idx[m]
        kept.append(stack[i])
        sources.append(names[i])
        sizes.append(int(clusters.sizes[c]))
        members = np.flatnonzero((clusters.labels == c) & (np.arange(len(idx)) != m))
        pick: np.ndarray | list[int] = (
            rng.choice(members, size=min(examples, len(members)), replace=False) if len(members) else []
        )
        # Members drawn in the medoid's frame position and size, for the picture.
        aligned = [denormalise(coords[j], norm.centre[i], norm.scale[i]) for j in sorted(pick)]
        example_sets.append(np.array(aligned).reshape(-1, 18, 2))
    return TargetPoses(
        mode="clustered",
        poses=np.array(kept, dtype=np.int32).reshape(-1, 18, 2),
        sources=sources,
        shape=_frame_shape(shape),
        sizes=sizes,
        considered=len(names),
        unusable=int(len(names) - len(idx)),
        skipped=int(sum(m is None for m in medoids)),
        examples=example_sets,
        info={"kmeans_rounds": clusters.iterations, "kmeans_inertia": clusters.inertia, "clustered": int(len(idx))},
    )


def random_targets(
    poses: Mapping[str, np.ndarray], k: int, shape: tuple[int, int], *, seed: int = 0, min_target_joints: int = 14
) -> TargetPoses:
    """K poses drawn without replacement from the renderable (training) poses."""
    names, stack = _stack(poses, shape)
    ok = np.array([is_renderable(p, min_target_joints) for p in stack], dtype=bool)
    candidates = np.flatnonzero(ok)
    if len(candidates) < k:
        raise ConfigError(
            f"only {len(candidates)} training poses are complete enough to render "
            f"(both shoulders and hips, {min_target_joints} joints); cannot draw {k}: lower --num-poses"
        )
    pick = sorted(np.random.RandomState(seed).choice(candidates, size=k, replace=False))
    return TargetPoses(
        mode="random",
        poses=stack[pick].astype(np.int32),
        sources=[names[i] for i in pick],
        shape=_frame_shape(shape),
        considered=len(names),
        unusable=int(len(names) - len(candidates)),
    )


def file_targets(path: str | Path, shape: tuple[int, int], *, min_target_joints: int = 14) -> TargetPoses:
    """Every renderable pose of a keypoint CSV, in name order; joints outside the frame count as missing."""
    table = read_keypoints_csv(path)
    if not table:
        raise KeypointError(f"pose file {path} holds no poses")
    names, stack = _stack(table, shape)
    ok = [i for i, p in enumerate(stack) if is_renderable(p, min_target_joints)]
    if not ok:
        raise KeypointError(
            f"none of the {len(names)} poses in {path} is complete enough to render "
            f"(both shoulders and hips and {min_target_joints} joints inside the {shape[0]}x{shape[1]} frame)"
        )
    return TargetPoses(
        mode="file",
        poses=stack[ok].astype(np.int32),
        sources=[names[i] for i in ok],
        shape=_frame_shape(shape),
        considered=len(names),
        skipped=len(names) - len(ok),
        info={"pose_file": str(path)},
    )
