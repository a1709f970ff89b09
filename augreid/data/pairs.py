"""Pairs (condition image, target image) of one identity for generator training.

Usability rule (Pose-Transfer's ``check_valid``, used to make the public
Market-1501 pair files): both shoulders and both hips are present. On top of
that ``min_visible`` can demand a minimum number of visible joints.
Pairs are ordered (A->B and B->A both appear), self-pairs excluded.
"""

from __future__ import annotations

import csv
import io
import itertools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from augreid.data.keypoints import KP, visible
from augreid.data.market import ImageRecord, parse_market_name
from augreid.errors import DatasetError
from augreid.io import atomic_write_text

Pair = tuple[str, str]
TORSO_JOINTS = (KP["Rsho"], KP["Lsho"], KP["Rhip"], KP["Lhip"])


def is_pose_usable(pose: np.ndarray, *, min_visible: int = 0) -> bool:
    """Both shoulders and both hips present, and at least ``min_visible`` joints."""
    vis = visible(np.asarray(pose))
    return bool(vis[list(TORSO_JOINTS)].all() and vis.sum() >= min_visible)


def build_pairs(
    records: Iterable[ImageRecord],
    poses: Mapping[str, np.ndarray],
    *,
    different_cameras: bool = False,
    min_visible: int = 0,
    max_pairs: int | None = None,
    seed: int = 0,
) -> list[Pair]:
    """All ordered same-identity pairs of usable images, optionally capped.

    The cap draws ``max_pairs`` pairs without replacement with
    ``numpy.random.RandomState(seed)``; the result is sorted so that it does not
    depend on dictionary order.
    """
    by_pid: dict[int, list[ImageRecord]] = defaultdict(list)
    for record in records:
        pose = poses.get(record.name)
        if pose is not None and is_pose_usable(pose, min_visible=min_visible):
            by_pid[record.pid].append(record)
    pairs: list[Pair] = []
    for pid in sorted(by_pid):
        group = sorted(by_pid[pid], key=lambda r: r.name)
        for a, b in itertools.permutations(group, 2):
            if different_cameras and a.camid == b.camid:
                continue
            pairs.append((a.name, b.name))
    if max_pairs is not None and len(pairs) > max_pairs:
        keep = np.random.RandomState(seed).choice(len(pairs), size=max_pairs, replace=False)
        pairs = [pairs[i] for i in sorted(keep)]
    return pairs


def read_pairs_csv(path: str | Path) -> list[Pair]:
    """Read a ``from,to`` pairs file (the pose-transfer ``market-pairs-*.csv`` format)."""
    path = Path(path)
    if not path.is_file():
        raise DatasetError(f"pairs file {path} does not exist")
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader, None)
        if header is None or [h.strip() for h in header] != ["from", "to"]:
            raise DatasetError(f"{path}:1: header must be 'from,to', got {header!r}")
        pairs: list[Pair] = []
        lines: list[int] = []
        for lineno, row in enumerate(reader, start=2):
            if not row:
                continue
            if len(row) != 2 or not row[0].strip() or not row[1].strip():
                raise DatasetError(f"{path}:{lineno}: expected two image names, got {row!r}")
            pairs.append((row[0].strip(), row[1].strip()))
            lines.append(lineno)
    check_pairs(pairs, lines, path)
    return pairs


def check_pairs(pairs: list[Pair], lines: list[int], path: Path) -> None:
    """Refuse self-pairs and pairs of two identities, naming their lines.

    A generator learns to re-render one person: a pair of two people teaches it to
    swap identities, a self-pair to copy its input. Both only lower what it learns.
    """
    problems: dict[str, list[str]] = {"self-pairs (from = to)": [], "pairs of two different identities": []}
    for (a, b), lineno in zip(pairs, lines):
        if a == b:
            problems["self-pairs (from = to)"].append(f"{lineno} ({a})")
            continue
        try:
            pid_a, pid_b = parse_market_name(a)[0], parse_market_name(b)[0]
        except DatasetError:
            continue  # unknown names are reported by the caller, which knows the dataset
        if pid_a != pid_b:
            problems["pairs of two different identities"].append(f"{lineno} ({a} -> {b})")
    found = [(label, rows) for label, rows in problems.items() if rows]
    if found:
        text = "; ".join(
            f"{len(rows)} {label} at line {', '.join(rows[:3])}{' ...' if len(rows) > 3 else ''}"
            for label, rows in found
        )
        raise DatasetError(f"{path}: {text}; every pair must be two different images of one person")


def write_pairs_csv(path: str | Path, pairs: Iterable[Pair]) -> Path:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["from", "to"])
    writer.writerows(pairs)
    return atomic_write_text(path, buffer.getvalue())
