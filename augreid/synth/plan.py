"""What a synth run generates: condition images per identity, jobs, batches.

Everything here is a pure function of the training records, the training
keypoints, the target poses and the settings, so that every rank of a
``torchrun`` job, and a resumed run, computes the same plan.

Output names follow Market-1501 (``PPPP_cCsS_FFFFFF_NN.jpg``): ``PPPP`` is the
real pid, ``C`` a camera number no real camera uses (the highest real one + 1,
so torchreid sees the synthetic images as a camera of their own), ``S`` the
condition image's rank within its identity (1 = most complete pose) and
``FFFFFF`` the target pose id.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from augreid.data.keypoints import visible
from augreid.data.market import ImageRecord
from augreid.data.pairs import is_pose_usable


@dataclass(frozen=True)
class Job:
    """One image to generate."""

    file: str  # output file name in bounding_box_train/
    pid: int
    source: str  # condition image name in the real bounding_box_train/
    rank: int  # 0 = the identity's most complete condition image
    target: int  # target pose index


@dataclass
class Conditions:
    """Condition images chosen per identity, and the identities that had none."""

    by_pid: dict[int, list[str]]
    skipped_pids: list[int]  # identities whose images all lack keypoints

    @property
    def count(self) -> int:
        return sum(len(v) for v in self.by_pid.values())


def condition_key(name: str, pose: np.ndarray) -> tuple:
    """Sort key: torso complete first, then more joints, then name (deterministic ties)."""
    return (not is_pose_usable(pose), -int(visible(pose).sum()), name)


def choose_conditions(
    records: Iterable[ImageRecord], poses: Mapping[str, np.ndarray], per_id: int, *, max_ids: int | None = None
) -> Conditions:
    """Up to ``per_id`` condition images per training identity, preferring the most complete poses.

    An image without a keypoint row, or whose row has no joint, is never a
    condition; an identity with no such image is skipped and listed.
    """
    by_pid: dict[int, list[str]] = defaultdict(list)
    for record in records:
        by_pid[record.pid].append(record.name)
    pids = sorted(by_pid)
    if max_ids is not None:
        pids = pids[:max_ids]
    chosen: dict[int, list[str]] = {}
    skipped: list[int] = []
    for pid in pids:
        candidates = [n for n in by_pid[pid] if n in poses and visible(poses[n]).any()]
        if not candidates:
            skipped.append(pid)
            continue
        candidates.sort(key=lambda n: condition_key(n, poses[n]))
        chosen[pid] = candidates[:per_id]
    return Conditions(chosen, skipped)


def output_name(pid: int, camera: int, rank: int, target: int) -> str:
    return f"{pid:04d}_c{camera}s{rank + 1}_{target:06d}_00.jpg"


def make_jobs(conditions: Conditions, num_targets: int, camera: int) -> list[Job]:
    """Every (condition image, target pose) combination, ordered by pid, rank, target."""
    jobs = []
    for pid in sorted(conditions.by_pid):
        for rank, source in enumerate(conditions.by_pid[pid]):
            for target in range(num_targets):
                jobs.append(Job(output_name(pid, camera, rank, target), pid, source, rank, target))
    return jobs


def make_batches(jobs: Sequence[Job], batch_size: int) -> list[list[Job]]:
    """Fixed chunks of the job list. A batch is the unit of work and of resumption:
    recomputing a whole batch keeps its composition, hence bit-identical outputs."""
    return [list(jobs[i : i + batch_size]) for i in range(0, len(jobs), batch_size)]


def shard(batches: Sequence[list[Job]], rank: int, world: int) -> list[int]:
    """Indices of the batches of one rank: disjoint, together all of them."""
    return list(range(rank, len(batches), world))


def jobs_digest(jobs: Sequence[Job]) -> str:
    digest = hashlib.sha256()
    for job in jobs:
        digest.update((json.dumps(asdict(job), sort_keys=True) + "\n").encode())
    return digest.hexdigest()
