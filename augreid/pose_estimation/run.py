"""Estimate keypoints for every image of a Market-layout dataset, resumably.

Output, beside the dataset by default (where ``find_keypoint_csvs`` looks)::

    OUT/PREFIX-annotation-train.csv   bounding_box_train rows
    OUT/PREFIX-annotation-test.csv    query + bounding_box_test rows
    OUT/PREFIX-run.json               estimator settings, versions, counts, timing

While a CSV is being made, every finished image is appended to a hidden
progress file ``OUT/.PREFIX-annotation-KIND.csv.progress.jsonl``; an
interrupted run continues from it. The CSV itself is written once, atomically,
when all its images are done, so a half CSV never exists. Rows already in an
existing CSV count as done (``--split query`` then ``--split gallery`` builds
the test CSV in two steps); ``overwrite=True`` re-estimates the selected splits.
"""

from __future__ import annotations

import json
import multiprocessing
import platform
import time
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from augreid import __version__
from augreid.data.keypoints import NUM_KEYPOINTS, read_keypoints_csv, write_keypoints_csv
from augreid.data.market import GALLERY, MARKET_DIRNAME, QUERY, SPLITS, TRAIN, ImageRecord, load_market, read_image
from augreid.errors import ConfigError
from augreid.io import atomic_write_json, atomic_write_text
from augreid.pose_estimation.base import EstimatorSpec, PoseEstimate, PoseEstimator
from augreid.pose_estimation.mediapipe_estimator import mediapipe_version
from augreid.progress import progress_bar

PROGRESS_FORMAT = 1
FLUSH_EVERY = 32  # progress lines buffered at most; a crash loses at most this many images

# Which splits each CSV holds (the pose-transfer convention: test = query + gallery).
CSV_KINDS: dict[str, tuple[str, ...]] = {"train": (TRAIN,), "test": (QUERY, GALLERY)}
SPLIT_ALIASES: dict[str, tuple[str, ...]] = {
    "train": (TRAIN,),
    TRAIN: (TRAIN,),
    "query": (QUERY,),
    "gallery": (GALLERY,),
    GALLERY: (GALLERY,),
    "test": (QUERY, GALLERY),
    "all": SPLITS,
}


def parse_splits(values: Iterable[str] | None) -> tuple[str, ...]:
    """Split folder names from user words (train, query, gallery, test, all, or folder names)."""
    if not values:
        return SPLITS
    chosen: set[str] = set()
    for value in values:
        if value not in SPLIT_ALIASES:
            raise ConfigError(f"unknown split {value!r}; use one of: {', '.join(SPLIT_ALIASES)}")
        chosen.update(SPLIT_ALIASES[value])
    return tuple(s for s in SPLITS if s in chosen)


def default_out_dir(market_root: Path) -> Path:
    """Where ``find_keypoint_csvs`` will look: beside ``Market-1501-v15.09.15``, or in the root itself."""
    return market_root.parent if market_root.name == MARKET_DIRNAME else market_root


# ---------------------------------------------------------------- estimation of an image list


def estimate_file(estimator: PoseEstimator, path: Path) -> PoseEstimate:
    return estimator.estimate(np.asarray(read_image(path)))


_worker_estimator: PoseEstimator | None = None


def _init_worker(spec: EstimatorSpec) -> None:
    global _worker_estimator
    _worker_estimator = spec.build()


def _estimate_in_worker(item: tuple[str, Path]) -> tuple[str, PoseEstimate]:
    name, path = item
    assert _worker_estimator is not None, "the pool's initializer (_init_worker) builds it"
    return name, estimate_file(_worker_estimator, path)


def _estimate_stream(
    todo: Sequence[tuple[str, Path]], spec: EstimatorSpec, workers: int
) -> Iterator[tuple[str, PoseEstimate]]:
    if workers <= 1 or len(todo) < 2:
        with spec.build() as estimator:
            for name, path in todo:
                yield name, estimate_file(estimator, path)
        return
    # spawn, not fork: MediaPipe and the BLAS libraries start threads that a fork would copy in a broken state.
    context = multiprocessing.get_context("spawn")
    chunksize = max(1, min(16, len(todo) // (workers * 8)))
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_init_worker, initargs=(spec,)) as pool:
        try:
            yield from pool.map(_estimate_in_worker, todo, chunksize=chunksize)
        except BaseException:
            pool.shutdown(wait=False, cancel_futures=True)
            raise


def _progress_line(name: str, estimate: PoseEstimate) -> str:
    pose = estimate.pose
    return json.dumps({"name": name, "y": pose[:, 0].tolist(), "x": pose[:, 1].tolist(), "detected": estimate.detected})


def _parse_progress_line(line: str) -> tuple[str, PoseEstimate] | None:
    try:
        row = json.loads(line)
        pose = np.array([row["y"], row["x"]], dtype=np.int32).T
        if pose.shape != (NUM_KEYPOINTS, 2):
            return None
        return str(row["name"]), PoseEstimate(pose, bool(row["detected"]))
    except (ValueError, KeyError, TypeError):
        return None  # the line a crash cut short


def load_progress(path: Path, settings: dict, restart: bool = False) -> dict[str, PoseEstimate]:
    """Finished images of an interrupted run, or ``{}``; refuses progress made with other settings."""
    if not path.is_file():
        return {}
    lines = path.read_text(encoding="utf-8").splitlines()
    try:
        header = json.loads(lines[0]) if lines else {}
    except ValueError:
        header = {}
    if header.get("settings") != settings or header.get("format") != PROGRESS_FORMAT:
        if restart:
            path.unlink()
            return {}
        raise ConfigError(
            f"{path} holds the progress of an interrupted run with other settings "
            f"({header.get('settings')}); rerun with the same options, or pass --restart to discard it"
        )
    done: dict[str, PoseEstimate] = {}
    for line in lines[1:]:
        parsed = _parse_progress_line(line)
        if parsed is not None:
            done[parsed[0]] = parsed[1]
    return done


def _start_progress(path: Path, settings: dict, done: dict[str, PoseEstimate]) -> None:
    """Rewrite the progress file with only complete lines, so appends never follow a cut line."""
    lines = [json.dumps({"format": PROGRESS_FORMAT, "settings": settings})]
    lines += [_progress_line(name, est) for name, est in done.items()]
    atomic_write_text(path, "\n".join(lines) + "\n")


def estimate_images(
    items: Sequence[tuple[str, Path]],
    spec: EstimatorSpec,
    progress_path: str | Path,
    *,
    settings: dict | None = None,
    workers: int = 1,
    restart: bool = False,
    show_progress: bool = True,
    desc: str = "pose",
) -> tuple[dict[str, PoseEstimate], int]:
    """Estimate ``(name, path)`` items; returns ``({name: estimate}, number taken from progress)``.

    Results are appended to ``progress_path`` as they come; a second call with the
    same ``settings`` (default: the estimator spec) estimates only what is missing.
    The progress file is left in place: the caller deletes it once its output is written.
    """
    progress_path = Path(progress_path)
    settings = settings if settings is not None else {"estimator": spec.describe()}
    wanted = {name for name, _ in items}
    done = {n: e for n, e in load_progress(progress_path, settings, restart).items() if n in wanted}
    resumed = len(done)
    todo = [(name, Path(path)) for name, path in items if name not in done]
    if todo:
        spec.check()
    _start_progress(progress_path, settings, done)
    bar = progress_bar(
        total=len(items), initial=resumed, desc=desc, unit="img", disable=not show_progress, dynamic_ncols=True
    )
    with open(progress_path, "a", encoding="utf-8") as handle, bar:
        for count, (name, estimate) in enumerate(_estimate_stream(todo, spec, workers), start=1):
            done[name] = estimate
            handle.write(_progress_line(name, estimate) + "\n")
            if count % FLUSH_EVERY == 0:
                handle.flush()
            bar.update(1)
    return done, resumed


# ---------------------------------------------------------------- a whole dataset


@dataclass
class PoseRun:
    """What :func:`estimate_dataset` did."""

    out_dir: Path
    csv_paths: dict[str, Path]  # "train" / "test" -> CSV
    records: list[ImageRecord]  # images of the selected splits
    poses: dict[str, np.ndarray]  # name -> pose, for every selected image
    detected: dict[str, bool] = field(default_factory=dict)  # only images estimated by this run or its resumed part
    estimated: int = 0  # images estimated in this call
    resumed: int = 0  # images taken from an interrupted run's progress
    kept: int = 0  # images whose row already existed in the CSV
    rows: dict[str, int] = field(default_factory=dict)  # "train" / "test" -> rows in the CSV
    seconds: float = 0.0

    def split_names(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for record in self.records:
            out.setdefault(record.split, []).append(record.name)
        return out


def _check_neighbours(out_dir: Path, kind: str, csv_path: Path) -> None:
    others = [p for p in sorted(out_dir.glob(f"*annotation-{kind}.csv")) if p.name != csv_path.name]
    if others:
        raise ConfigError(
            f"{out_dir} already holds {others[0].name}; writing {csv_path.name} beside it would make keypoint "
            f"discovery ambiguous. Pass --out DIR (another folder) or --prefix {others[0].name.split('-annotation')[0]} "
            "to fill in that file"
        )


def _run_record_path(out_dir: Path, prefix: str) -> Path:
    return out_dir / f"{prefix}-run.json"


def _check_settings(record_path: Path, settings: dict, overwrite: bool) -> None:
    if overwrite or not record_path.is_file():
        return
    try:
        previous = json.loads(record_path.read_text(encoding="utf-8")).get("estimator")
    except ValueError:
        previous = None
    if previous is not None and previous != settings["estimator"]:
        raise ConfigError(
            f"the keypoints in {record_path.parent} were made with other settings ({previous}, see {record_path.name}); "
            "adding rows made differently would mix them: pass --overwrite to re-estimate, or --out DIR"
        )


def _versions() -> dict[str, str | None]:
    return {"augreid": __version__, "mediapipe": mediapipe_version(), "python": platform.python_version()}


def estimate_dataset(
    root: str | Path,
    out_dir: str | Path | None = None,
    *,
    splits: Iterable[str] | None = None,
    spec: EstimatorSpec | None = None,
    prefix: str = "pose",
    workers: int = 1,
    overwrite: bool = False,
    restart: bool = False,
    show_progress: bool = True,
) -> PoseRun:
    """Write ``PREFIX-annotation-{train,test}.csv`` for the selected splits of a Market-layout dataset."""
    spec = spec or EstimatorSpec()
    if workers < 1:
        raise ConfigError(f"workers must be at least 1, got {workers}")
    chosen = parse_splits(splits)
    spec.check()  # a missing extra is reported before anything is read or written
    dataset = load_market(root, require_eval_splits=False)
    out = Path(out_dir) if out_dir is not None else default_out_dir(dataset.root)
    out.mkdir(parents=True, exist_ok=True)
    by_split = {TRAIN: dataset.train, QUERY: dataset.query, GALLERY: dataset.gallery}
    records = [r for split in chosen for r in by_split[split]]
    settings = {"estimator": spec.describe()}
    record_path = _run_record_path(out, prefix)
    run = PoseRun(out, {}, records, {})
    started = time.perf_counter()
    for kind, kind_splits in CSV_KINDS.items():
        group = [r for r in records if r.split in kind_splits]
        if not group:
            continue
        csv_path = out / f"{prefix}-annotation-{kind}.csv"
        _check_neighbours(out, kind, csv_path)
        existing = read_keypoints_csv(csv_path) if csv_path.is_file() else {}
        todo = group if overwrite else [r for r in group if r.name not in existing]
        if todo:
            _check_settings(record_path, settings, overwrite)
            progress = out / f".{csv_path.name}.progress.jsonl"
            results, resumed = estimate_images(
                [(r.name, r.path) for r in todo],
                spec,
                progress,
                settings={**settings, "csv": csv_path.name},
                workers=workers,
                restart=restart,
                show_progress=show_progress,
                desc=f"pose {kind}",
            )
            table = {**existing, **{name: est.pose for name, est in results.items()}}
            write_keypoints_csv(csv_path, table)
            progress.unlink(missing_ok=True)
            run.detected.update({name: est.detected for name, est in results.items()})
            run.estimated += len(results) - resumed
            run.resumed += resumed
            existing = table
        run.kept += len(group) - len(todo)
        run.csv_paths[kind] = csv_path
        run.rows[kind] = len(existing)
        run.poses.update({r.name: existing[r.name] for r in group})
    run.seconds = time.perf_counter() - started
    _write_run_record(record_path, run, settings, chosen, dataset.root)
    return run


def _write_run_record(path: Path, run: PoseRun, settings: dict, splits: Sequence[str], root: Path) -> None:
    previous = {}
    if path.is_file():
        try:
            previous = json.loads(path.read_text(encoding="utf-8"))
        except ValueError:
            previous = {}
    if run.estimated == 0 and run.resumed == 0 and previous:
        return  # nothing new: keep the record of the run that made the rows
    atomic_write_json(
        path,
        {
            "dataset": str(root),
            "estimator": settings["estimator"],
            "splits": list(splits),
            "csv": {kind: p.name for kind, p in run.csv_paths.items()},
            "rows": run.rows,
            "estimated": run.estimated,
            "resumed": run.resumed,
            "kept": run.kept,
            "seconds": round(run.seconds, 2),
            "versions": _versions(),
        },
    )
