"""``augreid data check``: a whole-dataset report that does not stop at the first problem."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path

from tqdm import tqdm

from augreid.data.keypoints import find_keypoint_csvs, join_keypoints, read_keypoints_csv, visible
from augreid.data.market import SPLITS, TRAIN, list_split, read_image, resolve_market_root
from augreid.errors import AugreidError
from augreid.io import atomic_write_json


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
    for split in SPLITS:
        split_dir = base / split
        if not split_dir.is_dir():
            report.errors.append(f"{base}: missing split folder {split}/")
            continue
        records, problems = list_split(split_dir, split)
        report.errors.extend(problems)
        if verify_images:
            for record in tqdm(records, desc=f"verify {split}", unit="img", leave=False, mininterval=1.0):
                try:
                    read_image(record.path)
                except AugreidError as err:
                    report.errors.append(str(err))
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
    _check_keypoints(report, base, names, train_keypoints, test_keypoints)
    return report


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
) -> None:
    found = find_keypoint_csvs(base)
    files = {"train": train_keypoints or found.get("train"), "test": test_keypoints or found.get("test")}
    groups = {"train": [TRAIN], "test": ["query", "bounding_box_test"]}
    for kind, path in files.items():
        if path is None:
            report.warnings.append(f"no {kind} keypoint CSV found beside {base} (generator training needs one)")
            continue
        report.keypoint_files[kind] = str(path)
        try:
            table = read_keypoints_csv(path)
        except AugreidError as err:
            report.errors.append(str(err))
            continue
        wanted = [n for split in groups[kind] for n in names.get(split, [])]
        join = join_keypoints(wanted, table)
        for split in groups[kind]:
            stats = report.splits.get(split)
            if stats is None:
                continue
            split_names = names.get(split, [])
            stats.with_keypoints = sum(n in join.poses for n in split_names)
            stats.empty_poses = sum(n in join.poses and not visible(join.poses[n]).any() for n in split_names)
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
