"""One row per trained re-ID model, and the learning curves, read back from the run folders of a plan.

What a reviewer checks first in an augmentation result: that the arms took the
same optimizer steps with the same real images per batch, that the schedule ran
its course (the learning rate of the last step is the decayed one) and that the
baseline had converged. ``train-reid`` records all of it in ``run.json``
(``train_images``, ``schedule``, ``learning_curve``); these rows gather it with
each model's scores from the eval stage, for ``runs.json`` and
``learning_curve.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

from matplotlib.figure import Figure

from augreid.data.imaging import write_figure
from augreid.reid.checkpoint import read_run_json
from augreid.reid.config import resolved_schedule

RUN_COLUMNS = (
    "fraction",
    "arm",
    "seed",
    "steps",
    "real_per_batch",
    "synthetic_per_batch",
    "lr_first",
    "lr_last",
    "rank1",
    "mAP",
    "mINP",
)


def _trained(part: dict[str, Any], history: dict) -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(stage summary, run.json) of every finished train-reid stage of the fraction."""
    for name in part["runs"]:
        result = history.get(name)
        if result is not None:
            yield result.summary, read_run_json(result.path("run_dir") / "run.json")


def _scores(history: dict, eval_stage: str) -> dict[tuple[str, int], dict[str, float | None]]:
    """(arm, seed) -> rank-1, mAP and mINP in percent, as the eval stage scored them."""
    if eval_stage not in history:
        return {}
    runs = history[eval_stage].summary["comparison"].get("runs", [])
    return {
        (r["group"], int(r["info"].get("seed", -1))): {
            "rank1": round(100 * r["ranks"]["1"], 2),
            "mAP": round(100 * r["mAP"], 2),
            "mINP": round(100 * r["mINP"], 2) if r.get("mINP") is not None else None,
        }
        for r in runs
    }


def run_rows(part: dict[str, Any], history: dict) -> list[dict[str, Any]]:
    """A row per trained model of one fraction (``part``: the fractions report's settings of it)."""
    scores = _scores(history, part["stages"]["eval"])
    rows = []
    for summary, info in _trained(part, history):
        images, schedule = info.get("train_images", {}), info.get("schedule", {})
        score = scores.get((summary["arm"], int(summary["seed"])), {})
        rows.append(
            {
                "fraction": part["fraction"],
                "arm": summary["arm"],
                "seed": summary["seed"],
                "steps": schedule.get("optimizer_steps"),
                "real_per_batch": images.get("real_per_batch"),
                "synthetic_per_batch": images.get("synthetic_per_batch"),
                "lr_first": schedule.get("lr_first"),
                "lr_last": schedule.get("lr_last"),
                "rank1": score.get("rank1"),
                "mAP": score.get("mAP"),
                "mINP": score.get("mINP"),
            }
        )
    return rows


def run_cells(rows: list[dict[str, Any]], columns: tuple[str, ...] = RUN_COLUMNS) -> list[list[Any]]:
    """``rows`` as table cells (learning rates to three significant digits)."""
    return [[f"{r[c]:.3g}" if c.startswith("lr_") and r[c] is not None else r[c] for c in columns] for r in rows]


def curve_rows(part: dict[str, Any], history: dict) -> list[dict[str, Any]]:
    """The learning-curve points (percent) of the fraction's runs that recorded one."""
    rows = []
    for summary, info in _trained(part, history):
        for point in info.get("learning_curve", []):
            rows.append(
                {
                    "fraction": part["fraction"],
                    "arm": summary["arm"],
                    "seed": summary["seed"],
                    "epoch": point["epoch"],
                    "step": point["step"],
                    "rank1": round(100 * point["rank1"], 2),
                    "mAP": round(100 * point["mAP"], 2),
                }
            )
    return rows


def last_quarter_gain(points: list[dict[str, Any]], key: str = "mAP") -> float | None:
    """How much ``key`` rose over the last quarter of the steps (the convergence test: under 1 point)."""
    if len(points) < 2:
        return None
    points = sorted(points, key=lambda p: p["step"])
    end = points[-1]["step"]
    before = [p for p in points if p["step"] <= 0.75 * end]
    return None if not before else points[-1][key] - before[-1][key]


def plot_learning_curve(rows: list[dict[str, Any]], path: Path) -> Path:
    """rank-1 and mAP against optimizer steps, one line per fraction."""
    fig = Figure(figsize=(9, 3.6))
    axes = fig.subplots(1, 2)
    for ax, (key, title) in zip(axes, (("rank1", "rank-1"), ("mAP", "mAP"))):
        for fraction in sorted({r["fraction"] for r in rows}):
            points = sorted((r for r in rows if r["fraction"] == fraction), key=lambda r: r["step"])
            ax.plot([p["step"] for p in points], [p[key] for p in points], "o-", label=f"{100 * fraction:.0f} %")
        ax.set_xlabel("optimizer steps")
        ax.set_ylabel(f"{title} (%)")
        ax.set_title(f"baseline {title}")
        ax.grid(alpha=0.3)
    axes[0].legend(title="real images")
    fig.tight_layout()
    return write_figure(path, fig, dpi=110)


def steps_sentence(reid: dict[str, Any]) -> str:
    """The step budget and schedule every arm shares, from the recipe's ``[reid]`` section."""
    iters = reid.get("iters_per_epoch")
    budget = (
        f"{reid['epochs']} epochs of {iters} optimizer steps ({reid['epochs'] * iters} steps, at every fraction)"
        if iters
        else f"{reid['epochs']} epochs, each one pass over the real images"
    )
    warmup, milestones = resolved_schedule(reid["epochs"], reid.get("warmup_epochs"), reid.get("stepsize"))
    schedule = (
        f"warmup over {warmup} epochs, learning rate x{reid['gamma']} from epochs "
        f"{', '.join(str(m + 1) for m in milestones) or '(none: constant)'}"
        if reid.get("method") == "bot"
        else f"{reid['lr_scheduler']} schedule"
    )
    return (
        f"Every arm trains {budget} with {reid['batch_size']} real images per batch and the same schedule "
        f"({schedule}); the copy and augmented arms add {reid['synthetic_per_batch']} extra images to each batch."
    )
