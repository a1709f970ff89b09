"""Score several trained models on the same query/gallery and compare them.

Runs are grouped by name: several runs under one name are seeds of one
configuration, reported as mean and standard deviation across seeds. The
first group is the baseline; every other group gets its difference to it with
a paired bootstrap CI over query identities, computed on the seed-averaged
per-query values (so the CI covers the choice of query people; the seed
spread is the separate ``std`` column).
"""

from __future__ import annotations

import glob
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from augreid.data.market import MarketDataset
from augreid.errors import AugreidError
from augreid.evaluation.bootstrap import BootstrapCI, IdentityResampler
from augreid.evaluation.distance import evaluate_features, rerank_distances, torch_threads
from augreid.evaluation.features import run_features
from augreid.evaluation.options import EvalOptions
from augreid.evaluation.protocol import EvaluationError, Metrics, PerQueryResult, evaluate_distmat, summarize
from augreid.evaluation.search import top_matches, top_matches_from_distances
from augreid.io import portable_path
from augreid.reid.checkpoint import checkpoint_info, resolve_checkpoint_path
from augreid.reid.methods import method_of
from augreid.versions import package_versions

# "method" (bot, softmax, triplet), not the derived "loss": bot and triplet runs both record loss "triplet".
CONFIG_KEYS = ("model_name", "num_classes", "height", "width", "method", "label_scheme")
# The metrics after the rank-k hits, in report order; each is a ``Metrics`` attribute of the same name.
AGGREGATE_KEYS = ("mAP", "mINP")


# ---------------------------------------------------------------- run specs


def parse_run_specs(specs: list[str]) -> dict[str, list[Path]]:
    """``NAME=PATH`` (PATH may be a glob) -> ``{name: [paths]}`` in the order given.

    A spec without ``NAME=`` is named after its folder. Every path must exist.
    """
    runs: dict[str, list[Path]] = {}
    for spec in specs:
        name, sep, pattern = spec.partition("=")
        if not sep:
            name, pattern = "", spec
        name, pattern = name.strip(), pattern.strip()
        if not pattern:
            raise AugreidError(f"--run {spec!r}: expected NAME=PATH")
        paths = expand_run_path(pattern)
        if not name:
            name = paths[0].name if paths[0].is_dir() else paths[0].parent.name
        runs.setdefault(name, [])
        runs[name] += [p for p in paths if p not in runs[name]]
    if not runs:
        raise AugreidError("no run to evaluate: pass at least one --run NAME=PATH")
    return runs


def expand_run_path(pattern: str) -> list[Path]:
    path = Path(pattern).expanduser()
    if glob.has_magic(pattern):
        matches = sorted(Path(p) for p in glob.glob(str(path)))
        if not matches:
            raise AugreidError(f"no run folder or checkpoint matches {pattern!r}")
        return matches
    if not path.exists():
        raise AugreidError(f"{path}: run folder or checkpoint not found")
    return [path]


def training_progress(path: Path) -> tuple[int | None, int | None]:
    """``(finished epochs, planned epochs)`` of a re-ID run; ``None`` where the run does not record it."""
    info = checkpoint_info(resolve_checkpoint_path(path))
    planned = (info.get("config") or {}).get("epochs") if isinstance(info.get("config"), dict) else None
    done = info.get("epoch")
    return (done if isinstance(done, int) else None), (planned if isinstance(planned, int) else None)


def check_finished(runs: dict[str, list[Path]], allow_unfinished: bool) -> dict[Path, str]:
    """``{path: "unfinished: 1 of 3 epochs"}`` for runs stopped early; refused unless ``allow_unfinished``.

    A killed run's checkpoint scores like a finished one; without a mark its
    numbers would be mistaken for the configuration's.
    """
    marks: dict[Path, str] = {}
    for paths in runs.values():
        for path in paths:
            done, planned = training_progress(path)
            if done is not None and planned is not None and done < planned:
                marks[Path(path)] = f"unfinished: {done} of {planned} epochs"
    if marks and not allow_unfinished:
        path, mark = next(iter(marks.items()))
        more = f" (and {len(marks) - 1} more)" if len(marks) > 1 else ""
        raise AugreidError(
            f"{path}: run is {mark}{more}; finish it by running its train-reid command again (it resumes), "
            "or pass --allow-unfinished to score it marked as unfinished"
        )
    return marks


PATH_KEYS = ("checkpoint", "data", "dataset_root", "synthetic", "pretrained", "run_dir", "path")


def portable_info(info: dict[str, Any]) -> dict[str, Any]:
    """A run description whose paths are relative to the working folder where possible.

    Comparison files are committed; an absolute path names only the machine that made them.
    """
    out = dict(info)
    for key in PATH_KEYS:
        value = out.get(key)
        if isinstance(value, str):
            out[key] = portable_path(value)
        elif isinstance(value, dict) and isinstance(value.get("path"), str):
            out[key] = {**value, "path": portable_path(value["path"])}
    return out


# ---------------------------------------------------------------- scores


@dataclass
class RunScore:
    """One trained model's per-query results and aggregate scores."""

    group: str
    label: str
    path: Path | None
    per_query: PerQueryResult
    metrics: Metrics
    info: dict[str, Any] = field(default_factory=dict)
    checkpoint_sha256: str | None = None
    from_cache: bool = False

    def value(self, key: str) -> float:
        if key in AGGREGATE_KEYS:
            return float(getattr(self.metrics, key))
        return self.metrics.ranks[int(key.removeprefix("rank"))]


@dataclass
class GroupScore:
    """The runs (seeds) of one configuration."""

    name: str
    runs: list[RunScore]
    mean: dict[str, float]
    std: dict[str, float | None]
    ci: dict[str, BootstrapCI]  # CI of the seed-averaged score over query identities
    cmc: np.ndarray  # mean CMC across seeds


@dataclass
class Difference:
    group: str
    baseline: str
    metric: str
    ci: BootstrapCI


@dataclass
class StripData:
    """Top-k gallery items of a few queries, as one run ranks them."""

    group: str
    run_label: str
    query_indices: list[int]
    top: list[list[int]]
    correct: list[list[bool]]


@dataclass
class ComparisonResult:
    groups: list[GroupScore]
    differences: list[Difference]
    options: EvalOptions
    dataset: dict[str, Any]
    versions: dict[str, str]
    strips: list[StripData] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    query_paths: list[str] = field(default_factory=list)
    gallery_paths: list[str] = field(default_factory=list)

    @property
    def runs(self) -> list[RunScore]:
        return [run for group in self.groups for run in group.runs]

    def metric_keys(self) -> list[str]:
        return all_metric_keys(self.options)


def all_metric_keys(options: EvalOptions) -> list[str]:
    """``rank1``, ``rank5``, ... for ``options.ranks``, then ``mAP`` and ``mINP``."""
    return [f"rank{r}" for r in options.ranks] + list(AGGREGATE_KEYS)


def per_query_values(result: PerQueryResult, key: str, ap_mode: str) -> np.ndarray:
    """Per-query values of a metric over the valid queries (AP, INP, or 0/1 rank-k hits)."""
    valid = result.valid
    if key == "mAP":
        return result.ap_values(ap_mode)[valid]
    if key == "mINP":
        return result.inp[valid]
    return result.hits(int(key.removeprefix("rank")))[valid]


def score_run(group: str, label: str, per_query: PerQueryResult, options: EvalOptions, **extra) -> RunScore:
    metrics = summarize(per_query, max_rank=options.max_rank, ap_mode=options.ap, ranks=options.ranks)
    return RunScore(group, label, extra.pop("path", None), per_query, metrics, **extra)


def group_scores(runs: dict[str, list[RunScore]], options: EvalOptions) -> tuple[list[GroupScore], list[Difference]]:
    """Mean/std across seeds, bootstrap CIs, and the paired difference of every group to every group before it
    (with groups baseline, control, generator: control − baseline, generator − baseline, generator − control)."""
    all_runs = [r for rs in runs.values() for r in rs]
    if not all_runs:
        raise EvaluationError("no run to compare")
    reference = all_runs[0].per_query
    for run in all_runs[1:]:
        if not (
            np.array_equal(run.per_query.q_pids, reference.q_pids)
            and np.array_equal(run.per_query.valid, reference.valid)
        ):
            raise EvaluationError(
                f"run {run.label!r} was scored on other queries than {all_runs[0].label!r}; "
                "a paired comparison needs the same query/gallery"
            )
    resampler = IdentityResampler.create(reference.q_pids, reference.valid, options.resamples, options.seed)
    keys = all_metric_keys(options)
    groups: list[GroupScore] = []
    averaged: dict[str, dict[str, np.ndarray]] = {}
    for name, members in runs.items():
        values = {k: np.array([m.value(k) for m in members]) for k in keys}
        averaged[name] = {
            k: np.mean([per_query_values(m.per_query, k, options.ap) for m in members], axis=0) for k in keys
        }
        groups.append(
            GroupScore(
                name=name,
                runs=members,
                mean={k: float(v.mean()) for k, v in values.items()},
                std={k: (float(v.std(ddof=1)) if len(v) > 1 else None) for k, v in values.items()},
                ci={k: resampler.mean_ci(averaged[name][k], options.ci_level) for k in keys},
                cmc=np.mean([m.metrics.cmc for m in members], axis=0),
            )
        )
    differences = [
        Difference(
            g.name, ref.name, k, resampler.difference_ci(averaged[ref.name][k], averaged[g.name][k], options.ci_level)
        )
        for i, g in enumerate(groups)
        for ref in groups[:i]
        for k in keys
    ]
    return groups, differences


# ---------------------------------------------------------------- trained models


def check_group_configs(name: str, runs: list[RunScore]) -> None:
    """Seeds of one configuration must share the model and its input; otherwise the grouping is a mistake."""
    first = runs[0]
    for run in runs[1:]:
        for key in CONFIG_KEYS:
            a, b = (
                (method_of(first.info), method_of(run.info))
                if key == "method"
                else (first.info.get(key), run.info.get(key))
            )
            if a != b:
                raise AugreidError(
                    f"runs grouped as {name!r} differ in {key}: {first.path} has {a!r}, {run.path} has {b!r}; "
                    "give runs of different configurations different names"
                )


def choose_strip_queries(valid: np.ndarray, count: int, seed: int) -> list[int]:
    candidates = np.nonzero(valid)[0]
    count = min(count, len(candidates))
    if count == 0:
        return []
    rng = np.random.default_rng(seed)
    return sorted(int(i) for i in rng.choice(candidates, size=count, replace=False))


def compare_runs(
    runs: dict[str, list[Path]], dataset: MarketDataset, options: EvalOptions | None = None, progress: bool = True
) -> ComparisonResult:
    """Extract features of every run, score them under one protocol and compare the groups."""
    options = options or EvalOptions()
    with torch_threads(options.threads or None):
        return _compare_runs(runs, dataset, options, progress)


def _compare_runs(
    runs: dict[str, list[Path]], dataset: MarketDataset, options: EvalOptions, progress: bool
) -> ComparisonResult:
    workers = options.threads or None
    if not runs or not any(runs.values()):
        raise AugreidError("no run to evaluate")
    query, gallery = dataset.query, dataset.gallery
    if not query:
        raise AugreidError(f"{dataset.root}: the query split is empty")
    if not gallery:
        raise AugreidError(f"{dataset.root}: the gallery split (bounding_box_test) is empty")
    q_pids, q_camids = np.array([r.pid for r in query]), np.array([r.camid for r in query])
    g_pids, g_camids = np.array([r.pid for r in gallery]), np.array([r.camid for r in gallery])
    labels = (q_pids, g_pids, q_camids, g_camids)
    fingerprint = dataset.fingerprint()
    scored: dict[str, list[RunScore]] = {}
    strips: list[StripData] = []
    notes: list[str] = []
    strip_rows: list[int] | None = None
    unfinished = check_finished(runs, options.allow_unfinished)
    for group, paths in runs.items():
        if not paths:
            raise AugreidError(f"run group {group!r} has no run")
        scored[group] = []
        for i, path in enumerate(paths):
            label = group if len(paths) == 1 else f"{group}#{i + 1}"
            feats = run_features(
                path,
                dataset,
                flip=options.flip,
                normalize=options.normalize,
                batch_size=options.batch_size,
                device=options.device,
                cache_dir=options.cache_dir,
                use_cache=options.cache,
                progress=progress,
                name=label,
            )
            dist = None
            rerank = options.rerank_options()  # None without --rerank
            if rerank is not None:
                dist = rerank_distances(feats.query, feats.gallery, options.metric, rerank, device=options.device)
                per_query = evaluate_distmat(dist, *labels, block_size=options.block_size, workers=workers)
            else:
                per_query = evaluate_features(
                    feats.query,
                    feats.gallery,
                    *labels,
                    metric=options.metric,
                    block_size=options.block_size,
                    device=options.device,
                    workers=workers,
                    progress=progress,
                )
            run = score_run(
                group,
                label,
                per_query,
                options,
                path=Path(path),
                info=portable_info(feats.info),
                checkpoint_sha256=feats.checkpoint_sha256,
                from_cache=feats.from_cache,
            )
            scored[group].append(run)
            if Path(path) in unfinished:
                run.info["unfinished"] = unfinished[Path(path)]
                notes.append(f"{label}: {unfinished[Path(path)]} (scored with --allow-unfinished)")
            trained_on = feats.info.get("dataset_fingerprint")
            if trained_on and trained_on != fingerprint:
                notes.append(f"{label}: trained on data with fingerprint {trained_on}, evaluated on {fingerprint}")
            if i == 0 and options.plots and options.strip_queries > 0:
                if strip_rows is None:
                    strip_rows = choose_strip_queries(per_query.valid, options.strip_queries, options.seed)
                rows = np.array(strip_rows, dtype=np.int64)
                if dist is not None:
                    top = top_matches_from_distances(
                        dist[rows], q_pids[rows], q_camids[rows], g_pids, g_camids, options.strip_topk
                    )
                else:
                    top = top_matches(
                        feats.query[rows],
                        feats.gallery,
                        q_pids[rows],
                        q_camids[rows],
                        g_pids,
                        g_camids,
                        options.strip_topk,
                        options.metric,
                    )
                strips.append(
                    StripData(
                        group,
                        label,
                        list(strip_rows),
                        [t.tolist() for t in top],
                        [(g_pids[t] == q_pids[r]).tolist() for r, t in zip(rows, top)],
                    )
                )
        check_group_configs(group, scored[group])
    groups, differences = group_scores(scored, options)
    reference = groups[0].runs[0].per_query
    dataset_info = {
        "root": portable_path(dataset.root),
        "fingerprint": fingerprint,
        "num_query": len(query),
        "num_gallery": len(gallery),
        "num_query_ids": int(len(np.unique(q_pids))),
        "num_gallery_ids": int(len(np.unique(g_pids))),
        "num_distractors": int((g_pids == 0).sum()),
        "num_valid_queries": reference.num_valid,
        "num_skipped_queries": reference.num_skipped,
    }
    return ComparisonResult(
        groups,
        differences,
        options,
        dataset_info,
        package_versions(),
        strips,
        notes,
        [str(r.path) for r in query],
        [str(r.path) for r in gallery],
    )
