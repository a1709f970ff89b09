"""Write a comparison as JSON (machine-readable), Markdown (for people) and PNG plots.

JSON values are fractions in [0, 1] as torchreid returns them; the Markdown
report and the printed table use percentage points.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from augreid.evaluation.compare import ComparisonResult, Difference, GroupScore
from augreid.evaluation.plots import plot_cmc, retrieval_strip
from augreid.io import atomic_write_json, atomic_write_text

JSON_NAME, MARKDOWN_NAME, CMC_NAME = "comparison.json", "report.md", "cmc.png"
SUMMARY_KEYS = ("rank1", "rank5", "mAP", "mINP")  # the columns of the summary and differences tables


def metric_title(key: str) -> str:
    return key if key in ("mAP", "mINP") else f"rank-{key.removeprefix('rank')}"


def pct(value: float | None, digits: int = 1) -> str:
    return "n/a" if value is None else f"{100 * value:.{digits}f}"


def signed(value: float, digits: int = 1) -> str:
    return f"{100 * value:+.{digits}f}"


def mean_cell(group: GroupScore, key: str) -> str:
    std = group.std[key]
    return pct(group.mean[key]) if std is None else f"{pct(group.mean[key])} ± {pct(std)}"


def difference_cell(diff: Difference | None) -> str:
    if diff is None:
        return "—"
    ci = diff.ci
    return f"{signed(ci.estimate)} [{signed(ci.low)}, {signed(ci.high)}]"


def summary_table(result: ComparisonResult, keys: tuple[str, ...] = SUMMARY_KEYS) -> str:
    """The headline table: scores per configuration and differences to the first one."""
    keys = tuple(k for k in keys if k in result.metric_keys())
    level = int(round(result.options.ci_level * 100))
    header = ["run", "seeds"] + [metric_title(k) for k in keys]
    header += [f"Δ {metric_title(k)} [{level}% CI]" for k in keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    first = result.groups[0].name
    diffs = {(d.group, d.metric): d for d in result.differences if d.baseline == first}
    for group in result.groups:
        cells = [group.name, str(len(group.runs))] + [mean_cell(group, k) for k in keys]
        cells += [difference_cell(diffs.get((group.name, k))) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def other_differences_table(result: ComparisonResult, keys: tuple[str, ...] = SUMMARY_KEYS) -> str:
    """Differences between the groups after the first (e.g. generator − copy control); empty with two groups."""
    keys = tuple(k for k in keys if k in result.metric_keys())
    first = result.groups[0].name
    pairs = list(dict.fromkeys((d.group, d.baseline) for d in result.differences if d.baseline != first))
    if not pairs:
        return ""
    level = int(round(result.options.ci_level * 100))
    diffs = {(d.group, d.baseline, d.metric): d for d in result.differences}
    header = ["difference"] + [f"Δ {metric_title(k)} [{level}% CI]" for k in keys]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for group, baseline in pairs:
        cells = [f"{group} − {baseline}"] + [difference_cell(diffs.get((group, baseline, k))) for k in keys]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def runs_table(result: ComparisonResult) -> str:
    keys = result.metric_keys()
    header = ["run", "seed", "epoch"] + [metric_title(k) for k in keys] + ["checkpoint", "features"]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for run in result.runs:
        epoch = str(run.info.get("epoch", "")) + (f" ({run.info['unfinished']})" if run.info.get("unfinished") else "")
        cells = [run.label, str(run.info.get("seed", "")), epoch]
        cells += [pct(run.value(k), 2) for k in keys]
        cells += [f"`{run.path}` ({(run.checkpoint_sha256 or '')[:12]})", "cached" if run.from_cache else "extracted"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def bootstrap_sentence(result: ComparisonResult) -> str:
    o = result.options
    ids = len({int(p) for p in result.groups[0].runs[0].per_query.q_pids[result.groups[0].runs[0].per_query.valid]})
    return (
        f"Differences are to `{result.groups[0].name}` unless named (percentage points), with a {int(round(o.ci_level * 100))}% "
        f"percentile interval from a paired bootstrap over the {ids} query identities "
        f"({o.resamples} resamples, seed {o.seed}); with several seeds per run, per-query values are averaged "
        "over seeds first, so the interval covers the choice of query people and the ± column the seed spread "
        "(sample standard deviation)."
    )


def strip_file(group: str) -> str:
    return "strip-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", group) + ".png"


def _in_dataset(path: str) -> str:
    """``query/0001_c1s1_000151_01.jpg``: an image named relative to its dataset root (portable)."""
    parts = Path(path).parts
    return "/".join(parts[-2:])


def result_to_dict(result: ComparisonResult) -> dict[str, Any]:
    """Everything needed to re-read the comparison without the models (fractions, not percent)."""

    def run_dict(run) -> dict[str, Any]:
        m = run.metrics
        return {
            "label": run.label,
            "group": run.group,
            "path": str(run.path) if run.path else None,
            "checkpoint_sha256": run.checkpoint_sha256,
            "features_from_cache": run.from_cache,
            "info": {
                k: v for k, v in run.info.items() if isinstance(v, (str, int, float, bool, list, dict, type(None)))
            },
            "mAP": m.mAP,
            "mINP": m.mINP,
            "ranks": {str(k): v for k, v in m.ranks.items()},
            "cmc": [float(x) for x in m.cmc],
            "num_valid_queries": m.num_valid,
            "num_skipped_queries": m.num_skipped,
        }

    return {
        "format": "augreid-eval-v1",
        "dataset": result.dataset,
        "protocol": result.options.protocol(),
        "options": result.options.to_dict(),
        "versions": result.versions,
        "groups": [
            {
                "name": g.name,
                "runs": [r.label for r in g.runs],
                "num_seeds": len(g.runs),
                "mean": g.mean,
                "std": g.std,
                "ci": {k: ci.to_dict() for k, ci in g.ci.items()},
                "cmc": [float(x) for x in g.cmc],
            }
            for g in result.groups
        ],
        "differences": [
            {"group": d.group, "baseline": d.baseline, "metric": d.metric, **d.ci.to_dict()} for d in result.differences
        ],
        "runs": [run_dict(r) for r in result.runs],
        "strips": [
            {
                "group": s.group,
                "run": s.run_label,
                "queries": [_in_dataset(result.query_paths[q]) for q in s.query_indices],
                "top": [[_in_dataset(result.gallery_paths[i]) for i in row] for row in s.top],
                "correct": s.correct,
            }
            for s in result.strips
        ],
        "notes": result.notes,
    }


def markdown_report(result: ComparisonResult, images: dict[str, str]) -> str:
    p = result.options.protocol()
    d = result.dataset
    lines = [
        "# augreid evaluation",
        "",
        f"Dataset `{d['root']}` (fingerprint `{d['fingerprint']}`): {d['num_query']} queries, "
        f"{d['num_gallery']} gallery images ({d['num_distractors']} distractors); "
        f"{d['num_valid_queries']} queries scored, {d['num_skipped_queries']} skipped (no correct match).",
        "",
        "## Protocol",
        "",
        f"- {p['protocol']}",
        f"- AP: **{p['ap_label']}**",
        "- mINP: mean inverse negative penalty (Ye et al., TPAMI 2021): per query, the number of correct matches "
        "over the rank of the last one",
        f"- distance: {p['metric_label']}; re-ranking: **{p['rerank']}**",
        f"- features: flip averaging {'on' if p['flip'] else 'off'}, L2 normalisation "
        f"{'on' if p['normalize'] else 'off'}",
        f"- ties: {p['tie_rule']}",
        "",
        "## Summary",
        "",
        summary_table(result),
        "",
        *([other, ""] if (other := other_differences_table(result)) else []),
        bootstrap_sentence(result),
        "",
        "## Runs",
        "",
        runs_table(result),
        "",
    ]
    if images:
        lines += ["## Plots", ""]
        lines += [f"![{name}]({file})" for name, file in images.items()]
        lines += [""]
    if result.notes:
        lines += ["## Notes", ""] + [f"- {note}" for note in result.notes] + [""]
    lines += ["## Versions", "", ", ".join(f"{k} {v}" for k, v in result.versions.items()), ""]
    return "\n".join(lines)


def write_comparison_report(
    result: ComparisonResult, out_dir: str | Path, plots: bool | None = None
) -> dict[str, Path]:
    """Write ``comparison.json``, ``report.md`` and the PNG plots into ``out_dir``; return the paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    plots = result.options.plots if plots is None else plots
    written: dict[str, Path] = {}
    images: dict[str, str] = {}
    if plots:
        curves = {
            f"{g.name}: rank-1 {pct(g.mean['rank1'] if 'rank1' in g.mean else g.cmc[0])}%, "
            f"mAP {pct(g.mean['mAP'])}%" + (f" (mean of {len(g.runs)} seeds)" if len(g.runs) > 1 else ""): g.cmc
            for g in result.groups
        }
        label = result.options.protocol()
        title = f"CMC, {label['metric_label']}; re-ranking: {label['rerank']}\nmAP: {label['ap_label']}"
        written["cmc"] = plot_cmc(curves, out_dir / CMC_NAME, title=title, max_rank=min(20, result.options.max_rank))
        images["CMC curves"] = CMC_NAME
        for strip in result.strips:
            name = strip_file(strip.group)
            written[f"strip:{strip.group}"] = retrieval_strip(
                [result.query_paths[q] for q in strip.query_indices],
                [[result.gallery_paths[i] for i in row] for row in strip.top],
                strip.correct,
                out_dir / name,
                title=f"{strip.run_label}: top-{result.options.strip_topk} (green correct, red wrong)",
            )
            images[f"retrieval strip {strip.group}"] = name
    written["json"] = atomic_write_json(out_dir / JSON_NAME, result_to_dict(result))
    written["markdown"] = atomic_write_text(out_dir / MARKDOWN_NAME, markdown_report(result, images))
    return written
