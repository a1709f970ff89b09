"""The fractional-real protocol in ``augreid run``: ``[protocol] fractions = [0.2, ...]``.

For each fraction p the recipe's whole plan (check -> train-gen -> eval-gen ->
synth -> train-reid, both arms and every seed -> eval) runs on the p % subset
of the real training images (``augreid.data.subset``, seed
``protocol.subset_seed``). Every stage of fraction p is given the subset's view
as its dataset, so the generator is trained, and the synthetic set made, from
the subset only, and both arms train on the same subset. Stage names get the
suffix ``-p020`` (for p = 0.2). One report stage then gathers every fraction:
a table fraction x arm (rank-1 and mAP, mean ± std over seeds) with the
paired-bootstrap difference and its CI (the eval stage's, ``augreid.evaluation``),
and one plot of rank-1 and mAP against fraction with the CI bands.

Subset views are built when the plan is made (symbolic links: cheap) under
``$AUGREID_HOME/subsets/``; they are a function of the data and the recipe,
rebuilt the same on any machine, and each one's ``subset.json`` is copied into
the report folder.
"""

from __future__ import annotations

import copy
import dataclasses
import functools
import math
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from augreid.data.imaging import write_figure
from augreid.data.sources import resolve_source
from augreid.data.subset import subset_view
from augreid.errors import ConfigError
from augreid.io import atomic_write_json, atomic_write_text, augreid_home
from augreid.pipeline.document import Code, Document, Heading, Image, Paragraph, Table
from augreid.pipeline.recipe import DEMO, Recipe, fraction_label
from augreid.pipeline.reid_section import ARMS
from augreid.pipeline.report import (
    recipe_text,
    design_sentence,
    reproducibility_section,
    software_versions,
    timings_section,
    verdict,
)
from augreid.pipeline.run_records import (
    RUN_COLUMNS,
    curve_rows,
    last_quarter_gain,
    plot_learning_curve,
    run_cells,
    run_rows,
    steps_sentence,
)
from augreid.pipeline.runner import Stage
from augreid.pose_estimation import pckh

FORMAT = "augreid-fractions-v2"  # v2: three arms, differences by pair

METRICS = (("rank1", "rank-1"), ("mAP", "mAP"))  # with differences and a plot
SCORES = (*METRICS, ("mINP", "mINP"))  # each arm's scores (mINP: absent from records made before it existed)


def fraction_stages(recipe, build: Callable) -> list:
    """The plan of a fractions recipe; ``build(recipe)`` makes one full-data plan (``build_stages``)."""
    ds, protocol = recipe.section("dataset"), recipe.section("protocol")
    source = resolve_source(None if ds["root"] == DEMO else ds["root"], ds["train_keypoints"], ds["test_keypoints"])
    stages: list[Stage] = []
    parts: list[dict[str, Any]] = []  # the report stage's settings, one per fraction
    for fraction in sorted(protocol["fractions"]):
        view = subset_view(source, float(fraction), protocol["subset_seed"], augreid_home() / "subsets")
        settings = copy.deepcopy(recipe.settings)
        settings["dataset"].update(
            root=str(view.root), train_keypoints=_str(view.train_keypoints), test_keypoints=_str(view.test_keypoints)
        )
        settings["protocol"]["fractions"] = None
        label = fraction_label(fraction)
        part = [s for s in build(Recipe(recipe.path, settings)) if s.kind != "report"]
        names = {s.name: f"{s.name}-{label}" for s in part}
        for s in part:
            s.name, s.depends = names[s.name], tuple(names[d] for d in s.depends)
            s.run = functools.partial(_with_plain_input_names, s.run, f"-{label}")
        stages += part
        parts.append(
            {
                "fraction": float(fraction),
                "label": label,
                "subset_file": str(view.root / "subset.json"),
                "subset_digest": view.subset.digest,
                "images": len(view.subset.names),
                "identities": view.subset.identities,
                "total_images": view.subset.total_images,
                "stages": {kind: names[kind] for kind in ("check", "train-gen", "eval-gen", "synth", "eval")},
                "runs": [s.name for s in part if s.kind == "train-reid"],
            }
        )
    depends = tuple(name for p in parts for name in p["stages"].values())
    stages.append(
        Stage(
            "report", "report", {"recipe": recipe.settings, "fractions": parts}, run_fractions_report, depends=depends
        )
    )
    return stages


def _with_plain_input_names(run: Callable, suffix: str, ctx) -> dict[str, Any]:
    """Stage bodies look their inputs up by plain names ("train-gen", "synth"): strip the fraction's suffix."""
    inputs = {name.removesuffix(suffix): result for name, result in ctx.inputs.items()}
    return run(dataclasses.replace(ctx, inputs=inputs))


def _str(path) -> str | None:
    return None if path is None else str(path)


# ---------------------------------------------------------------- results


def fraction_rows(parts: list[dict[str, Any]], history: dict) -> list[dict[str, Any]]:
    """Per fraction: subset size, each arm's mean/std/CI, the differences, generator and synth figures."""
    rows = []
    for part in parts:
        names = part["stages"]
        comparison = history[names["eval"]].summary["comparison"]
        arms = {
            g["name"]: {
                "seeds": g["num_seeds"],
                "mean": {k: g["mean"].get(k) for k, _ in SCORES},
                "std": {k: g["std"].get(k) for k, _ in SCORES},
                "ci": {k: g["ci"].get(k) for k, _ in SCORES},
            }
            for g in comparison["groups"]
        }
        diffs: dict[str, dict[str, Any]] = {}
        for d in comparison["differences"]:
            if d["metric"] in dict(METRICS):
                diffs.setdefault(pair_key(d["group"], d["baseline"]), {})[d["metric"]] = {
                    k: d[k] for k in ("estimate", "low", "high", "level", "resamples", "seed")
                }
        synth = history[names["synth"]].summary.get("counts", {}) if names["synth"] in history else {}
        quality = history[names["eval-gen"]].summary if names["eval-gen"] in history else {}
        rows.append(
            {
                **{k: part[k] for k in ("fraction", "label", "images", "identities", "total_images", "subset_digest")},
                "arms": arms,
                "differences": diffs,
                "synthetic": {k: synth.get(k) for k in ("planned", "kept", "removed_by_filter")},
                "generator_quality": quality.get("methods"),
                "pose_fidelity": quality.get("pose_fidelity"),
                "identity": quality.get("identity"),
            }
        )
    return rows


def _pct(value: float | None) -> str:
    return "-" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:.1f}"


def pair_key(group: str, baseline: str) -> str:
    return f"{group} − {baseline}"


# The differences the fractions table shows: every arm against the baseline, the generator against the copy control.
TABLE_PAIRS = (("copy", "baseline"), ("augmented", "baseline"), ("augmented", "copy"))


def _diff_cell(d: dict[str, Any] | None) -> str:
    return f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]" if d else ""


def table_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    out = []
    for row in rows:
        for arm in ARMS:
            a = row["arms"].get(arm)
            if a is None:
                continue
            cells = [f"{_pct(a['mean'].get(k))} ± {_pct(a['std'].get(k))}" for k, _ in SCORES]
            diffs = [
                _diff_cell(row["differences"].get(pair_key(arm, ref), {}).get(k))
                for ref in ("baseline", "copy")
                for k, _ in METRICS
            ]
            out.append([f"{100 * row['fraction']:.0f} %", row["images"], arm, a["seeds"], *cells, *diffs])
    return out


def plot_fractions(rows: list[dict[str, Any]], path: Path) -> Path:
    """rank-1 and mAP against fraction, both arms, 95 % bootstrap CI of each arm's seed-averaged score as bands."""
    fig = Figure(figsize=(9, 3.6))  # a bare Figure, not pyplot: no global backend or figure list
    axes = fig.subplots(1, 2)
    for ax, (key, title) in zip(axes, METRICS):
        for arm, colour in zip(ARMS, ("tab:blue", "tab:grey", "tab:orange")):
            pts = [(r["fraction"], r["arms"][arm]) for r in rows if arm in r["arms"]]
            if not pts:
                continue
            x = [100 * f for f, _ in pts]
            ax.plot(x, [100 * a["mean"][key] for _, a in pts], "o-", color=colour, label=arm)
            cis = [a["ci"][key] for _, a in pts]
            if all(ci for ci in cis):
                means = [100 * a["mean"][key] for _, a in pts]
                spread = [
                    [m - 100 * c["low"] for m, c in zip(means, cis)],
                    [100 * c["high"] - m for m, c in zip(means, cis)],
                ]
                # Error bars as well as bands: a band over a single fraction has no width to show.
                ax.errorbar(x, means, yerr=spread, fmt="none", ecolor=colour, capsize=4, alpha=0.8)
                ax.fill_between(
                    x, [100 * c["low"] for c in cis], [100 * c["high"] for c in cis], color=colour, alpha=0.2
                )
        ax.set_xlabel("real training images used (%)")
        ax.set_ylabel(f"{title} (%)")
        ax.set_title(title)
        ax.grid(alpha=0.3)
    axes[0].legend()
    fig.tight_layout()
    return write_figure(path, fig, dpi=110)


def build_fractions_report(
    recipe: dict[str, Any],
    rows: list[dict[str, Any]],
    runs: list[dict[str, Any]],
    curve: list[dict[str, Any]],
    plots: dict[str, Path],
    history: dict,
):
    doc = Document(f"augreid report: {recipe['name']}")
    if recipe.get("description"):
        doc.add(Paragraph(recipe["description"]))
    doc.add(Heading("The answer"), Paragraph(_answer(rows, recipe)))
    doc.add(
        Heading("Protocol"),
        Paragraph(
            f"Seeded subsets of the real training images (subset seed {recipe['protocol']['subset_seed']}; every identity "
            "keeps at least one image; fractions of one seed are nested). For each fraction the generator is trained on "
            "the subset only, the synthetic set is made from it, and every arm trains on the same subset. Re-ID seeds: "
            f"{recipe['seeds']}. " + steps_sentence(recipe["reid"])
        ),
        Paragraph(design_sentence()),
    )
    doc.add(
        Heading("Re-identification by fraction"),
        Table(
            [
                "fraction",
                "real images",
                "arm",
                "seeds",
                "rank-1",
                "mAP",
                "mINP",
                "Δ rank-1 vs baseline",
                "Δ mAP vs baseline",
                "Δ rank-1 vs copy",
                "Δ mAP vs copy",
            ],
            table_rows(rows),
            caption="Mean ± std over seeds (percent); Δ: this arm minus the named one in points, with the 95% CI "
            "of a paired bootstrap over query identities",
        ),
    )
    doc.add(Heading("Trained models"), Table(list(RUN_COLUMNS), run_cells(runs)))
    doc.add(
        Image(
            plots["fractions"], "rank-1 and mAP against the fraction of real training images; bands: 95% bootstrap CI"
        )
    )
    if "curve" in plots:
        doc.add(
            Heading("Learning curves"),
            Paragraph(
                "The first seed's baseline scored on query/gallery as it trained (euclidean distance, no flip: "
                "the end-of-training evaluator, so its level differs slightly from the table's). mAP gained over "
                "the last quarter of the steps (converged: under 1 point): "
                + "; ".join(
                    f"{100 * f:.0f} %: {gain:+.2f}"
                    if (gain := last_quarter_gain([c for c in curve if c["fraction"] == f])) is not None
                    else f"{100 * f:.0f} %: -"
                    for f in sorted({c["fraction"] for c in curve})
                )
                + "."
            ),
            Image(plots["curve"], "rank-1 and mAP against optimizer steps, baseline, first seed"),
        )
    doc.add(
        Heading("Subsets and synthetic sets"),
        Table(
            [
                "fraction",
                "real images",
                "identities",
                "subset digest",
                "synthetic kept",
                "planned",
                "removed by filter",
            ],
            [
                [
                    f"{100 * r['fraction']:.0f} %",
                    r["images"],
                    r["identities"],
                    r["subset_digest"],
                    r["synthetic"]["kept"],
                    r["synthetic"]["planned"],
                    _filters(r["synthetic"]["removed_by_filter"]),
                ]
                for r in rows
            ],
        ),
    )
    doc.add(
        Heading("Generator by fraction"),
        Table(
            ["fraction", "method", "mask-SSIM ↑", "masked L1 ↓", *pckh.summary_columns(), "identity rank-1 % ↑"],
            generator_rows(rows),
            caption="eval-gen on held-out pairs of test identities; the generator of each fraction saw its subset only. "
            "Identity rank-1: synthetic images of the subset's identities found among its real images by the "
            "fraction's first real-only re-ID model",
        ),
    )
    timings_section(doc, history)
    reproducibility_section(doc, history)
    doc.add(Heading("Software"), Table(["package", "version"], [[k, v] for k, v in software_versions().items()]))
    doc.add(Heading("Recipe"), Code(recipe_text(recipe)))
    return doc


def generator_rows(rows: list[dict[str, Any]]) -> list[list[Any]]:
    """Per fraction and method: eval-gen's pixel scores and, where it ran, pose fidelity."""
    out = []
    for row in rows:
        pose = (row.get("pose_fidelity") or {}).get("methods", {})
        identity = (row.get("identity") or {}).get("methods", {})
        for method, m in (row.get("generator_quality") or {}).items():
            p = pose.get(method, {})
            kept = identity.get(method, {}).get("rank1")
            out.append(
                [
                    f"{100 * row['fraction']:.0f} %",
                    method,
                    f"{m['mask_ssim']['mean']:.3f}",
                    f"{m['masked_l1']['mean']:.4f}",
                    *pckh.summary_cells(p),
                    _pct(kept),
                ]
            )
    return out


def _filters(removed: dict[str, int] | None) -> str:
    return ", ".join(f"{name} {count}" for name, count in (removed or {}).items()) or "-"


def _answer(rows: list[dict[str, Any]], recipe: dict[str, Any]) -> str:
    parts = []
    for r in rows:
        said = []
        for ref in ("baseline", "copy"):
            d = r["differences"].get(pair_key("augmented", ref), {}).get("rank1")
            if d is not None:
                said.append(
                    f"{100 * d['estimate']:+.2f} [{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] vs {ref} "
                    f"({verdict(d['low'], d['high'])})"
                )
        if said:
            parts.append(f"{100 * r['fraction']:.0f} %: " + ", ".join(said))
    if not parts:
        return "No fraction has the arms evaluated."
    return (
        "Augmented minus baseline and minus the copy control, rank-1 points with 95% CI: "
        + "; ".join(parts)
        + f". Seeds {recipe['seeds']}. New poses help only where the augmented arm beats the copy control."
    )


def merge_fraction_records(recipe: dict[str, Any], records: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows of several runs' fractions.json (``{name: record}``), by fraction, for one report.

    A recipe may be run one fraction at a time, on different machines, and stage
    folders stay where they were made: the committed records are what remains. Records of
    another subset seed or other re-ID seeds, or two that disagree on a shared
    fraction, are refused together in one ConfigError.
    """
    problems: list[str] = []
    rows: dict[float, dict[str, Any]] = {}
    for name, data in records.items():
        if data.get("format") != FORMAT:
            problems.append(f"{name}: format {data.get('format')!r}, expected {FORMAT!r}")
            continue
        if data["protocol"].get("subset_seed") != recipe["protocol"]["subset_seed"]:
            problems.append(
                f"{name}: subset_seed {data['protocol'].get('subset_seed')}, the recipe's is {recipe['protocol']['subset_seed']}"
            )
        if data["seeds"] != recipe["seeds"]:
            problems.append(f"{name}: seeds {data['seeds']}, the recipe's are {recipe['seeds']}")
        for row in data["fractions"]:
            if rows.get(row["fraction"], row) != row:
                problems.append(f"{name}: fraction {row['fraction']} differs from an earlier record's")
            rows[row["fraction"]] = row
    if problems:
        raise ConfigError("cannot merge fractions records:\n  " + "\n  ".join(problems))
    return [rows[f] for f in sorted(rows)]


def fractions_record(recipe: dict[str, Any], rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"format": FORMAT, "protocol": recipe["protocol"], "seeds": recipe["seeds"], "fractions": rows}


def run_fractions_report(ctx) -> dict[str, Any]:
    """Writes fractions.json, fractions.png, report.md/html and the subset files; copies the report to the run folder."""
    parts = ctx.stage.settings["fractions"]
    recipe = ctx.stage.settings["recipe"]
    rows = fraction_rows(parts, ctx.history)
    runs = [row for part in parts for row in run_rows(part, ctx.history)]
    curve = [row for part in parts for row in curve_rows(part, ctx.history)]
    plots = {"fractions": plot_fractions(rows, ctx.folder / "fractions.png")}
    if curve:
        plots["curve"] = plot_learning_curve(curve, ctx.folder / "learning_curve.png")
    atomic_write_json(ctx.folder / "fractions.json", fractions_record(recipe, rows))
    atomic_write_json(ctx.folder / "runs.json", runs)
    atomic_write_json(ctx.folder / "learning_curve.json", curve)
    for part in parts:
        shutil.copyfile(part["subset_file"], ctx.folder / f"subset-{part['label']}.json")
    doc = build_fractions_report(recipe, rows, runs, curve, plots, ctx.history)
    md = atomic_write_text(ctx.folder / "report.md", doc.to_markdown(ctx.folder))
    html = atomic_write_text(ctx.folder / "report.html", doc.to_html())
    top = ctx.folder.parent
    shutil.copyfile(html, top / "report.html")
    atomic_write_text(top / "report.md", doc.to_markdown(top))
    return {
        "markdown": ctx.record(md),
        "html": ctx.record(html),
        "fractions_json": ctx.record(ctx.folder / "fractions.json"),
        "plot": ctx.record(plots["fractions"]),
        "runs_json": ctx.record(ctx.folder / "runs.json"),
        "learning_curve_json": ctx.record(ctx.folder / "learning_curve.json"),
    }
