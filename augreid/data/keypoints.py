"""OpenPose-18 keypoints in the pose-transfer CSV format.

File format (pose-gan / Pose-Transfer / PATN)::

    name:keypoints_y:keypoints_x
    0224_c6s1_055726_02.jpg: [8, 23, ...18 ints]: [39, 37, ...18 ints]

y (row) first, then x (column); integer pixels of the stored image; ``-1`` = missing.
In memory one pose is an ``int32`` array of shape ``(18, 2)`` holding ``(y, x)``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augreid.errors import KeypointError
from augreid.io import atomic_write_text

NUM_KEYPOINTS = 18
MISSING = -1
# fmt: off
KEYPOINT_NAMES: tuple[str, ...] = (
    "nose", "neck", "Rsho", "Relb", "Rwri", "Lsho", "Lelb", "Lwri", "Rhip", "Rkne", "Rank", "Lhip", "Lkne",
    "Lank", "Reye", "Leye", "Rear", "Lear",
)
# fmt: on
KP = {name: i for i, name in enumerate(KEYPOINT_NAMES)}

# The skeleton drawn in pictures (pose_utils.LIMB_SEQ of the pose-transfer code, 0-based).
# fmt: off
LIMBS: tuple[tuple[int, int], ...] = (
    (1, 2), (1, 5), (2, 3), (3, 4), (5, 6), (6, 7), (1, 8), (8, 9), (9, 10), (1, 11),
    (11, 12), (12, 13), (1, 0), (0, 14), (14, 16), (0, 15), (15, 17), (2, 16), (5, 17),
)
# fmt: on

# Horizontal flip swaps the person's left and right joints.
FLIP_ORDER: tuple[int, ...] = (0, 1, 5, 6, 7, 2, 3, 4, 11, 12, 13, 8, 9, 10, 15, 14, 17, 16)

HEADER = "name:keypoints_y:keypoints_x"
SHOWN_PROBLEMS = 10  # problems spelled out in the message of a KeypointProblems; all are in .problems


def empty_pose() -> np.ndarray:
    return np.full((NUM_KEYPOINTS, 2), MISSING, dtype=np.int32)


def visible(pose: np.ndarray) -> np.ndarray:
    """Boolean mask of present joints, shape ``(18,)`` (or ``(..., 18)`` for stacks)."""
    return (pose[..., 0] >= 0) & (pose[..., 1] >= 0)


def _parse_list(text: str, path: Path, lineno: int, what: str) -> list[int]:
    try:
        values = json.loads(text)
    except json.JSONDecodeError:
        raise KeypointError(f"{path}:{lineno}: {what} is not a list of integers: {text.strip()[:60]!r}") from None
    if not isinstance(values, list) or len(values) != NUM_KEYPOINTS or not all(isinstance(v, int) for v in values):
        raise KeypointError(f"{path}:{lineno}: {what} must be a list of {NUM_KEYPOINTS} integers")
    return values


def parse_keypoints_line(line: str, path: Path, lineno: int) -> tuple[str, np.ndarray]:
    parts = line.rstrip("\n").split(":")
    if len(parts) != 3:
        raise KeypointError(f"{path}:{lineno}: expected 'name: [18 y]: [18 x]', got {line.strip()[:80]!r}")
    name = parts[0].strip()
    if not name:
        raise KeypointError(f"{path}:{lineno}: empty image name")
    ys = _parse_list(parts[1], path, lineno, "keypoints_y")
    xs = _parse_list(parts[2], path, lineno, "keypoints_x")
    pose = np.array([ys, xs], dtype=np.int32).T
    pose[(pose[:, 0] < 0) | (pose[:, 1] < 0)] = MISSING  # y and x go missing together
    return name, pose


class KeypointProblems(KeypointError):
    """Every problem of one keypoint file, raised together; ``problems`` holds them, each ``path:line: what``."""

    def __init__(self, path: Path, problems: list[str]) -> None:
        self.path = path
        self.problems = list(problems)
        if len(self.problems) == 1:
            text = self.problems[0]
        else:
            prefix = f"{path}:"
            shown = [f"line {p[len(prefix) :]}" if p.startswith(prefix) else p for p in self.problems[:SHOWN_PROBLEMS]]
            more = len(self.problems) - SHOWN_PROBLEMS
            text = (
                f"{path}: {len(self.problems)} problems: "
                + "; ".join(shown)
                + (f"; and {more} more" if more > 0 else "")
            )
        super().__init__(text)


def scan_keypoints_csv(path: str | Path) -> tuple[dict[str, np.ndarray], list[str]]:
    """Every row that parses, and one message per problem (``path:line: what``) without stopping at the first.

    Problems: a wrong header, a malformed row (not three ``:``-separated fields, an
    empty name, lists that are not 18 integers), a duplicate name (the first row is
    kept), text that is not UTF-8. A missing file is a ``KeypointError`` at once.
    """
    path = Path(path)
    if not path.is_file():
        raise KeypointError(f"keypoint file {path} does not exist")
    table: dict[str, np.ndarray] = {}
    first_line: dict[str, int] = {}
    problems: list[str] = []
    # surrogateescape: bytes that are not UTF-8 become a problem of their line, not a crash of the whole read.
    with open(path, encoding="utf-8", errors="surrogateescape") as handle:
        header = handle.readline().strip()
        if header.replace(" ", "") != HEADER:
            problems.append(f"{path}:1: header must be {HEADER!r}, got {header[:80]!r}")
        for lineno, line in enumerate(handle, start=2):
            if not line.strip():
                continue
            try:
                _check_utf8(line, path, lineno)
                name, pose = parse_keypoints_line(line, path, lineno)
            except KeypointError as err:
                problems.append(str(err))
                continue
            if name in table:
                problems.append(f"{path}:{lineno}: duplicate row for {name} (first on line {first_line[name]})")
                continue
            table[name] = pose
            first_line[name] = lineno
    return table, problems


def _check_utf8(line: str, path: Path, lineno: int) -> None:
    try:
        line.encode("utf-8")
    except UnicodeEncodeError:
        raise KeypointError(f"{path}:{lineno}: not UTF-8 text") from None


def read_keypoints_csv(path: str | Path) -> dict[str, np.ndarray]:
    """Read a pose-transfer keypoint CSV into ``{image name: (18, 2) int32 (y, x)}``.

    Any problem is a :class:`KeypointProblems` listing all of them (see :func:`scan_keypoints_csv`).
    """
    table, problems = scan_keypoints_csv(path)
    if problems:
        raise KeypointProblems(Path(path), problems)
    return table


def format_keypoints_line(name: str, pose: np.ndarray) -> str:
    pose = np.asarray(pose, dtype=np.int64)
    if pose.shape != (NUM_KEYPOINTS, 2):
        raise KeypointError(f"pose of {name} has shape {pose.shape}, expected ({NUM_KEYPOINTS}, 2)")
    ys = ", ".join(str(int(v)) for v in pose[:, 0])
    xs = ", ".join(str(int(v)) for v in pose[:, 1])
    return f"{name}: [{ys}]: [{xs}]"


def write_keypoints_csv(path: str | Path, table: Mapping[str, np.ndarray]) -> Path:
    """Write ``{name: pose}`` atomically, rows sorted by name."""
    lines = [HEADER] + [format_keypoints_line(name, table[name]) for name in sorted(table)]
    return atomic_write_text(path, "\n".join(lines) + "\n")


@dataclass
class KeypointJoin:
    """Keypoints matched to an image list by file name."""

    poses: dict[str, np.ndarray]
    missing: list[str] = field(default_factory=list)  # images without a row
    unknown: list[str] = field(default_factory=list)  # rows naming no listed image

    def report(self, limit: int = 5) -> str:
        lines = [f"{len(self.poses)} images with keypoints"]
        for label, names in (("images lacking keypoints", self.missing), ("rows naming unknown images", self.unknown)):
            if names:
                shown = ", ".join(names[:limit]) + (" ..." if len(names) > limit else "")
                lines.append(f"{len(names)} {label}: {shown}")
        return "\n".join(lines)


def join_keypoints(names: Iterable[str], table: Mapping[str, np.ndarray]) -> KeypointJoin:
    """Join keypoint rows to image names."""
    names = list(names)
    wanted = set(names)
    poses = {n: table[n] for n in names if n in table}
    missing = [n for n in names if n not in table]
    unknown = sorted(n for n in table if n not in wanted)
    return KeypointJoin(poses, missing, unknown)


def find_keypoint_csvs(root: str | Path) -> dict[str, Path]:
    """Locate ``*annotation-train.csv`` / ``*annotation-test.csv`` beside a dataset.

    Looks in ``root`` and its parent (cuhk03-market keeps them beside
    ``Market-1501-v15.09.15``). Returns a dict with keys ``train`` and/or ``test``.
    """
    candidates = keypoint_candidates(root)
    for kind, matches in candidates.items():
        if len(matches) > 1:
            raise ambiguous_keypoints(kind, matches)
    return {kind: matches[0] for kind, matches in candidates.items()}


def keypoint_candidates(root: str | Path) -> dict[str, list[Path]]:
    """Every ``*annotation-{train,test}.csv`` of the first folder (``root``, then its parent) holding one.

    Unlike :func:`find_keypoint_csvs` this never raises: several candidates only
    matter to a command that needs that kind of keypoints and was not given a file.
    """
    root = Path(root)
    found: dict[str, list[Path]] = {}
    for folder in (root, root.parent):
        for kind in ("train", "test"):
            if kind not in found:
                matches = sorted(folder.glob(f"*annotation-{kind}.csv"))
                if matches:
                    found[kind] = matches
    return found


def ambiguous_keypoints(kind: str, matches: list[Path]) -> KeypointError:
    option = "--train-keypoints" if kind == "train" else "--test-keypoints"
    return KeypointError(
        f"several {kind} keypoint files in {matches[0].parent}: "
        + ", ".join(m.name for m in matches)
        + f"; pass one with {option}"
    )
