"""``augreid data check``: a whole-dataset report that does not stop at the first problem."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path

from augreid.data.keypoints import ambiguous_keypoints, join_keypoints, keypoint_candidates, scan_keypoints_csv, visible
from augreid.data.market import SPLITS, TRAIN, list_split, read_image, resolve_market_root
from augreid.errors import AugreidError
from augreid.io import atomic_write_json
from augreid.progress import progress_bar

# Person crops: Market-1501 is 128x64; smaller or flatter images are almost surely a mistake.
MIN_HEIGHT, MIN_WIDTH = 32, 16
MIN_ASPECT, MAX_ASPECT = 1.0, 5.0  # height / width
KEYPOINT_SLACK = 2  # pixels a keypoint may lie beyond the border (estimators round outwards)


@dataclass
class SplitStats:
    images: int = 0
    ids: int = 0
    cameras: list[int] = field(default_factory=list)
    distractor_images: int = 0
    with_keypoints: int = 0
    empty_poses: int = 0


@dataclass
class DatasetReport:
    root: str
    splits: dict[str, SplitStats] = field(default_factory=dict)
    keypoint_files: dict[str, str] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def format(self, limit: int = 10) -> str:
        lines = [f"dataset: {self.root}"]
        lines.append(f"{'split':<20}{'ids':>6}{'images':>8}{'cameras':>16}{'keypoints':>11}{'empty':>7}")
        for split, s in self.splits.items():
            cams = ",".join(map(str, s.cameras)) or "-"
            lines.append(f"{split:<20}{s.ids:>6}{s.images:>8}{cams:>16}{s.with_keypoints:>11}{s.empty_poses:>7}")
        for kind, path in self.keypoint_files.items():
            lines.append(f"keypoints ({kind}): {path}")
        for label, items in (("error", self.errors), ("warning", self.warnings)):
            for item in items[:limit]:
                lines.append(f"{label}: {item}")
            if len(items) > limit:
                lines.append(f"... {len(items) - limit} more {label}s (see --json)")
        lines.append("OK" if not self.errors else f"{len(self.errors)} error(s)")
        return "\n".join(lines)

    def write_json(self, path: str | Path) -> Path:
        return atomic_write_json(path, asdict(self))


def check_dataset(
    root: str | Path,
    *,
    train_keypoints: str | Path | None = None,
    test_keypoints: str | Path | None = None,
    verify_images: bool = True,
) -> DatasetReport:
    """Collect counts and all problems of a Market-layout dataset and its keypoint files."""
    try:
        base = resolve_market_root(root)
    except AugreidError as err:
        return DatasetReport(str(root), errors=[str(err)])
    report = DatasetReport(str(base))
    names: dict[str, list[str]] = {}
    pids: dict[str, set[int]] = {}
    sizes: dict[str, tuple[int, int]] = {}  # image name -> (height, width), when images are verified
    for split in SPLITS:
        split_dir = base / split
        if not split_dir.is_dir():
            report.errors.append(f"{base}: missing split folder {split}/")
            continue
        records, problems = list_split(split_dir, split)
        report.errors.extend(problems)
        if verify_images:
            _verify_images(report, records, split, sizes)
        report.splits[split] = SplitStats(
            images=len(records),
            ids=len({r.pid for r in records if r.pid != 0}),
            cameras=sorted({r.camid for r in records}),
            distractor_images=sum(r.pid == 0 for r in records),
        )
        names[split] = [r.name for r in records]
        pids[split] = {r.pid for r in records if r.pid > 0}
        if not records:
            report.errors.append(f"{split_dir}: no images")
    _check_identities(report, pids)
    _check_keypoints(report, base, names, train_keypoints, test_keypoints, sizes)
    return report


def _verify_images(report: DatasetReport, records: list, split: str, sizes: dict[str, tuple[int, int]]) -> None:
    """Open every image; unreadable, tiny or strangely shaped ones are errors (they would be resized silently)."""
    odd: list[str] = []
    for record in progress_bar(records, desc=f"verify {split}", unit="img", leave=False, mininterval=1.0):
        try:
            width, height = read_image(record.path).size
        except AugreidError as err:
            report.errors.append(str(err))
            continue
        sizes[record.name] = (height, width)
        if height < MIN_HEIGHT or width < MIN_WIDTH or not MIN_ASPECT <= height / width <= MAX_ASPECT:
            odd.append(f"{record.path} ({width}x{height})")
    if odd:
        report.errors.append(
            f"{split}: {len(odd)} image(s) are too small or not person-shaped (need at least "
            f"{MIN_WIDTH}x{MIN_HEIGHT} px, height/width {MIN_ASPECT}-{MAX_ASPECT}): {', '.join(odd[:3])}"
            + (" ..." if len(odd) > 3 else "")
        )
    common = Counter(sizes[r.name] for r in records if r.name in sizes).most_common(1)
    if common:
        (h, w), count = common[0]
        if count < len([r for r in records if r.name in sizes]):
            others = sum(1 for r in records if r.name in sizes and sizes[r.name] != (h, w))
            report.warnings.append(
                f"{split}: {others} image(s) differ from the common size {w}x{h} and will be resized"
            )


def _keypoints_outside(poses: dict, sizes: dict[str, tuple[int, int]]) -> list[str]:
    """Images whose visible keypoints lie outside the image by more than ``KEYPOINT_SLACK`` pixels."""
    outside = []
    for name, pose in poses.items():
        if name not in sizes:
            continue
        height, width = sizes[name]
        seen = visible(pose)
        ys, xs = pose[seen, 0], pose[seen, 1]
        if ys.size and (ys.max() >= height + KEYPOINT_SLACK or xs.max() >= width + KEYPOINT_SLACK):
            outside.append(f"{name} (y up to {int(ys.max())}, x up to {int(xs.max())} in {width}x{height})")
    return outside


def _check_identities(report: DatasetReport, pids: dict[str, set[int]]) -> None:
    if "query" in pids and "bounding_box_test" in pids:
        lonely = sorted(pids["query"] - pids["bounding_box_test"])
        if lonely:
            report.warnings.append(f"{len(lonely)} query identities have no gallery image (e.g. {lonely[:5]})")


def _check_keypoints(
    report: DatasetReport,
    base: Path,
    names: dict[str, list[str]],
    train_keypoints: str | Path | None,
    test_keypoints: str | Path | None,
    sizes: dict[str, tuple[int, int]],
) -> None:
    found = keypoint_candidates(base)
    given = {"train": train_keypoints, "test": test_keypoints}
    groups = {"train": [TRAIN], "test": ["query", "bounding_box_test"]}
    for kind in ("train", "test"):
        matches = found.get(kind, [])
        path = given[kind] or (matches[0] if len(matches) == 1 else None)
        if path is None and matches:
            report.errors.append(str(ambiguous_keypoints(kind, matches)))
            continue
        if path is None:
            report.warnings.append(f"no {kind} keypoint CSV found beside {base} (generator training needs one)")
            continue
        report.keypoint_files[kind] = str(path)
        try:
            table, problems = scan_keypoints_csv(path)
        except AugreidError as err:
            report.errors.append(str(err))
            continue
        report.errors.extend(problems)  # every malformed row; the rows that parse are still counted below
        wanted = [n for split in groups[kind] for n in names.get(split, [])]
        join = join_keypoints(wanted, table)
        for split in groups[kind]:
            stats = report.splits.get(split)
            if stats is None:
                continue
            split_names = names.get(split, [])
            stats.with_keypoints = sum(n in join.poses for n in split_names)
            stats.empty_poses = sum(n in join.poses and not visible(join.poses[n]).any() for n in split_names)
        outside = _keypoints_outside(join.poses, sizes)
        if outside:
            report.errors.append(
                f"{Path(path).name}: {len(outside)} image(s) have keypoints outside the image "
                f"(a CSV made for another image size?): {', '.join(outside[:3])}" + (" ..." if len(outside) > 3 else "")
            )
        if join.missing:
            report.warnings.append(
                f"{Path(path).name}: {len(join.missing)} images lack keypoints (e.g. {', '.join(join.missing[:3])})"
            )
        # Junk (-1) images are skipped by the reader but keep their CSV rows in
        # the public files, so they are not "unknown".
        unknown = [n for n in join.unknown if not n.startswith("-1")]
        if unknown:
            report.warnings.append(
                f"{Path(path).name}: {len(unknown)} rows name images not in the dataset (e.g. {', '.join(unknown[:3])})"
            )
