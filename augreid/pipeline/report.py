"""The run report: ``report.md`` and ``report.html`` built from the stages' JSON outputs.

Nothing here recomputes a metric: every number comes from a stage summary
(``stage.json``) or a file a stage wrote, so the report cannot disagree with
the stage outputs it sits beside.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from augreid import settings
from augreid.io import atomic_write_text, portable_path
from augreid.pipeline.document import Code, Document, Heading, Image, Paragraph, Table
from augreid.pipeline.run_records import RUN_COLUMNS, run_cells, run_rows, steps_sentence
from augreid.pipeline.runner import StageContext, StageResult
from augreid.pose_estimation import pckh
from augreid.reid.checkpoint import read_run_json
from augreid.versions import git_revision, package_versions

PACKAGES = (
    "augreid",
    "torch",
    "torchvision",
    "torchreid",
    "faiss-cpu",
    "numpy",
    "scikit-learn",
    "scikit-image",
    "safetensors",
    "pillow",
)


def software_versions() -> dict[str, str]:
    versions = package_versions(PACKAGES)
    git = git_revision()
    versions["git"] = git["revision"] + (" (local changes)" if git["dirty"] else "")
    return versions


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.1f}"


def dataset_section(doc: Document, check: StageResult) -> None:
    s = check.summary
    doc.add(Heading("Dataset"), Paragraph(f"`{portable_path(s['root'])}`, fingerprint `{s['fingerprint']}`."))
    rows = [
        [split, v["ids"], v["images"], ",".join(map(str, v["cameras"])), v["with_keypoints"]]
        for split, v in s["splits"].items()
    ]
    doc.add(Table(["split", "ids", "images", "cameras", "with keypoints"], rows))
    for warning in s.get("warnings", []):
        doc.add(Paragraph(f"Warning: {warning}"))


def generator_section(doc: Document, gen: StageResult, quality: StageResult) -> None:
    name = (quality.summary.get("generator") or {}).get("name", "pg2")
    doc.add(
        Heading(f"Generator ({name})"),
        Paragraph(
            f"Checkpoint `{gen.summary['checkpoint']}` after {gen.summary['step']} iterations. "
            f"Quality on {quality.summary['pairs']} held-out pairs of test identities "
            "(mean over pairs; the two last rows are trivial baselines a generator must beat):"
        ),
    )
    rows = []
    for method, m in quality.summary["methods"].items():
        rows.append(
            [
                method,
                f"{m['ssim']['mean']:.3f}",
                f"{m['mask_ssim']['mean']:.3f}",
                f"{m['psnr']['mean']:.2f}",
                f"{m['masked_l1']['mean']:.4f}",
            ]
        )
    doc.add(Table(["method", "SSIM ↑", "mask-SSIM ↑", "PSNR dB ↑", "masked L1 ↓"], rows))
    realism = quality.summary.get("realism")
    if realism and "methods" in realism:
        doc.add(Paragraph(f"Realism against real test images. {realism['disclaimer']}."))
        scored = [*realism["methods"].items(), ("real vs real (floor)", realism["floor_real_vs_real"])]
        doc.add(
            Table(
                ["method", f"{realism['name']} ↓", "KID x 1000 ↓"],
                [[m, f"{v['fid_mnv2']:.2f}", f"{1000 * v['kid']:.2f}"] for m, v in scored],
            )
        )
    elif realism and "skipped" in realism:
        doc.add(Paragraph(f"Realism ({realism['name']}) skipped: {realism['skipped']}"))
    pose = quality.summary.get("pose_fidelity")
    if pose and "methods" in pose:
        doc.add(
            Paragraph(
                f"Pose fidelity: {pose['label']} at {pose['alpha']} x head size. Real target images: "
                f"{pose['real_target_note']}."
            )
        )
        rows = [[m, *pckh.summary_cells(v)] for m, v in pose["methods"].items()]
        doc.add(Table(["method", *pckh.summary_columns(pose["label"])], rows))
    elif pose and "skipped" in pose:
        doc.add(Paragraph(f"{pose['label']} skipped: {pose['skipped']}"))
    identity_table(doc, quality.summary.get("identity"))
    sheet = quality.path("contact_sheet")
    outputs = " | ".join(quality.summary.get("outputs", ["G1", "refined"]))
    if sheet.is_file():
        doc.add(
            Image(sheet, f"Hardest and easiest held-out pairs (condition | target pose | {outputs} | ground truth)")
        )


def identity_table(doc: Document, identity: dict[str, Any] | None) -> None:
    """Do generated images still look like their person? An image a re-ID model cannot place is label noise."""
    if not identity:
        return
    doc.add(
        Paragraph(
            f"Identity retention, judged by the first seed's real-only re-ID model: {identity['protocol']} "
            f"({identity['gallery_images']} images of {identity['gallery_identities']} identities; chance rank-1 "
            f"about {_pct(1 / max(identity['gallery_identities'], 1))} %)."
        ),
        Table(
            ["method", "rank-1 % ↑", "mAP % ↑", "queries"],
            [[m, _pct(v["rank1"]), _pct(v["mAP"]), v["queries"]] for m, v in identity["methods"].items()],
        ),
    )


def synth_section(doc: Document, synth: StageResult) -> None:
    counts = synth.summary["counts"]
    doc.add(
        Heading("Synthetic set"),
        Paragraph(
            "Only training identities and training poses were used. Counts: "
            + ", ".join(f"{k} {v}" for k, v in counts.items() if isinstance(v, (int, float, str)))
            + "."
        ),
    )
    pose_filter = synth.summary.get("pckh")
    if pose_filter:  # the default pose filter
        doc.add(
            Paragraph(
                f"{pose_filter['label']} filter: threshold {pose_filter['threshold']}, dropped "
                f"{(counts.get('removed_by_filter') or {}).get('pckh', 0)} of {counts.get('planned')} images; mean per-image "
                f"{pose_filter['label']} {pose_filter['mean']:.3f}, person detected in {_pct(pose_filter['person_detected_rate'])} % "
                f"({pose_filter['head_size']})."
            )
        )
    captions = {
        "target_poses": "Target poses (cluster medoids) with member poses",
        "contact_sheet": "Synthetic identities: condition image, then each target pose",
    }
    for stem, path in synth.summary.get("pictures", {}).items():
        doc.add(Image(synth.resolve(path), captions.get(stem, stem.replace("_", " "))))


def reid_section(doc: Document, ev: StageResult) -> None:
    comparison = ev.summary["comparison"]
    protocol = comparison["protocol"]
    doc.add(
        Heading("Re-identification: baseline, copy control and augmented"),
        Paragraph(
            f"{protocol['protocol']}; AP: **{protocol['ap_label']}**; distance: {protocol['metric_label']}; "
            f"re-ranking: **{protocol['rerank']}**. Mean ± std across seeds (percent)."
        ),
    )
    rows = []
    for group in comparison["groups"]:
        mean, std = group["mean"], group["std"]
        rows.append(
            [
                group["name"],
                group["num_seeds"],
                *(f"{_pct(mean.get(k))} ± {_pct(std.get(k))}" for k in ("rank1", "rank5", "mAP", "mINP")),
            ]
        )
    doc.add(Table(["arm", "seeds", "rank-1", "rank-5", "mAP", "mINP"], rows))
    diffs = [d for d in comparison["differences"]]
    if diffs:
        rows = [
            [
                f"{d['group']} − {d['baseline']}",
                d["metric"],
                f"{100 * d['estimate']:+.2f}",
                f"[{100 * d['low']:+.2f}, {100 * d['high']:+.2f}]",
                d.get("resamples", "-"),
                d.get("seed", "-"),
            ]
            for d in diffs
        ]
        doc.add(
            Table(
                ["difference", "metric", "points", "95% CI", "resamples", "seed"],
                rows,
                caption="Paired bootstrap over query identities",
            )
        )
    for name, path in ev.summary["files"].items():
        if str(path).endswith(".png") and "cmc" in name.lower():
            doc.add(Image(ev.resolve(path), "CMC curves"))
    for name, path in ev.summary["files"].items():
        if str(path).endswith(".png") and "strip" in name.lower():
            arm = Path(path).stem.removeprefix("strip-")
            doc.add(Image(ev.resolve(path), f"Retrieval strip, {arm}: top-10 per query, green = correct, red = wrong"))


def timings_section(doc: Document, history: dict[str, StageResult]) -> None:
    if not history:  # e.g. a fractions report merged from committed records: no stages ran, no times to show
        return
    rows = [[name, f"{r.seconds:.1f}", "reused" if r.reused else "ran"] for name, r in history.items()]
    total = sum(r.seconds for r in history.values())
    rows.append(["total", f"{total:.1f}", ""])
    doc.add(Heading("Timings"), Table(["stage", "seconds", ""], rows))


def reproducibility_section(doc: Document, history: dict[str, StageResult]) -> None:
    """What decides the exact numbers besides recipe and seed, as each re-ID run recorded it."""
    rows = []
    for name, result in history.items():
        if "arm" not in result.summary or not (run_json := result.path("run_dir") / "run.json").is_file():
            continue
        runtime = read_run_json(run_json).get("runtime", {})
        env = ", ".join(f"{k}={v}" for k, v in runtime.get("env", {}).items()) or "-"
        rows.append(
            [
                name,
                str(runtime.get("threads", "?")),
                str(runtime.get("workers", "?")),
                str(runtime.get("cpu_capability", "not recorded")),
                str(runtime.get("cpu", "not recorded")),
                str(runtime.get("deterministic_algorithms", "?")),
                env,
            ]
        )
    if not rows:
        return
    doc.add(
        Heading("Reproducibility"),
        Paragraph(
            "Same recipe, seed, torch threads, loader workers and CPU kernels give the same numbers; changing any "
            "of the last three changes them (bench/results/reproducibility.md). The CPU kernels follow the machine's "
            "CPU unless ATEN_CPU_CAPABILITY and ONEDNN_MAX_CPU_ISA pin them."
        ),
        Table(["stage", "threads", "workers", "CPU kernels", "CPU", "deterministic algorithms", "environment"], rows),
    )


def trained_runs(history: dict[str, StageResult]) -> list[str]:
    """Names of the finished train-reid stages."""
    return [name for name, result in history.items() if "arm" in result.summary and "run_dir" in result.summary]


def build_report(recipe: dict[str, Any], history: dict[str, StageResult]) -> Document:
    doc = Document(f"augreid report: {recipe['name']}")
    if recipe.get("description"):
        doc.add(Paragraph(recipe["description"]))
    if "eval" in history:
        _headline(doc, history["eval"].summary["comparison"], recipe)
    if "check" in history:
        dataset_section(doc, history["check"])
    if "train-gen" in history and "eval-gen" in history:
        generator_section(doc, history["train-gen"], history["eval-gen"])
    if "synth" in history:
        synth_section(doc, history["synth"])
    if "eval" in history:
        reid_section(doc, history["eval"])
        runs = run_rows({"fraction": 1.0, "stages": {"eval": "eval"}, "runs": sorted(trained_runs(history))}, history)
        doc.add(
            Paragraph(steps_sentence(recipe["reid"])), Table(list(RUN_COLUMNS[1:]), run_cells(runs, RUN_COLUMNS[1:]))
        )
    timings_section(doc, history)
    reproducibility_section(doc, history)
    doc.add(Heading("Software"), Table(["package", "version"], [[k, v] for k, v in software_versions().items()]))
    doc.add(Heading("Recipe"), Code(recipe_text(recipe)))
    return doc


def verdict(low: float, high: float) -> str:
    """The sign a 95% interval supports, said plainly."""
    return "better" if low > 0 else "worse" if high < 0 else "not distinguishable (the interval holds zero)"


def _headline(doc: Document, comparison: dict[str, Any], recipe: dict[str, Any]) -> None:
    for d in comparison["differences"]:
        if d["metric"] == "rank1" and d["group"] == "augmented":
            doc.add(
                Paragraph(
                    f"**Answer:** augmented minus {d['baseline']} rank-1 = {100 * d['estimate']:+.2f} points, 95% CI "
                    f"[{100 * d['low']:+.2f}, {100 * d['high']:+.2f}] (paired bootstrap over query identities); "
                    f"seeds {recipe['seeds']}: the augmented model is **{verdict(d['low'], d['high'])}**."
                )
            )
    doc.add(Paragraph(design_sentence()))


def design_sentence() -> str:
    return (
        "Design: the arms differ only in the extra images in each batch. All take the same optimizer steps with "
        "the same real images per batch, schedule and seeds; `copy` adds byte copies of the synthetic set's own "
        "condition images (same identities, labels and number per batch), `augmented` the generated images. "
        "Only a difference to `copy` says that the new poses help, rather than more looks at the same photos."
    )


def recipe_text(recipe: dict[str, Any]) -> str:
    """The resolved recipe as TOML that parses back (a reader can copy it into a recipe file)."""
    return "\n".join(settings.mapping_to_toml(_portable(recipe)))


def _portable(value: Any) -> Any:
    """Resolved paths are absolute; a committed report must not name this machine's folders."""
    if isinstance(value, dict):
        return {k: _portable(v) for k, v in value.items()}
    return portable_path(value) if isinstance(value, str) else value


def run_report(ctx: StageContext) -> dict[str, Any]:
    """The report stage: writes into its stage folder and copies to the run folder's top."""
    doc = build_report(ctx.stage.settings["recipe"], ctx.history)
    md = atomic_write_text(ctx.folder / "report.md", doc.to_markdown(ctx.folder))
    html = atomic_write_text(ctx.folder / "report.html", doc.to_html())
    top = ctx.folder.parent
    shutil.copyfile(html, top / "report.html")
    atomic_write_text(top / "report.md", doc.to_markdown(top))
    return {"markdown": ctx.record(md), "html": ctx.record(html)}
