"""Re-ID training benchmark: real-only baseline vs real + synthetic, over several seeds.

Trains ``augreid train-reid`` runs on a Market-layout dataset (default: the
CUHK03 copy in ../shared/data/cuhk03-market), scores each final checkpoint on
the dataset's query/gallery and writes, under bench/results/:

    reid_<tag>.json   every run: settings, rank-1/5/10, mAP, seconds per epoch
    reid_<tag>.md     mean and standard deviation per arm

The augmented arm runs only with ``--synthetic PATH`` (a PG2-synthesised folder);
without it the report says the arm is pending. Runs are resumable: run folders
live under ``--runs-dir`` and an interrupted benchmark continues where it stopped.

    python bench/bench_reid.py --epochs 3 --seeds 0 1 2
    python bench/bench_reid.py --synthetic runs/synth --synthetic-per-batch 8 --label-scheme lsro
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402
from augreid.reid.config import resolve_config  # noqa: E402
from augreid.reid.train import train_reid  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "cuhk03-market"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Market-layout dataset root")
    parser.add_argument("--synthetic", type=Path, default=None, help="synthetic folder for the augmented arm")
    parser.add_argument("--synthetic-per-batch", type=int, default=8, help="synthetic images on top of each batch")
    parser.add_argument("--max-synthetic-per-id", type=int, default=None)
    parser.add_argument("--label-scheme", default="same-id", choices=("same-id", "lsro", "smoothed-id"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--model", default="osnet_x0_25")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--height", type=int, default=None, help="default: train-reid's default")
    parser.add_argument("--width", type=int, default=None, help="default: train-reid's default")
    parser.add_argument("--lr", type=float, default=None, help="default: train-reid's default")
    parser.add_argument("--iters-per-epoch", type=int, default=None, help="optimizer steps per epoch (default: a pass)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (the bench machine is shared)")
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--runs-dir", type=Path, default=Path(tempfile.gettempdir()) / "augreid-bench-reid")
    parser.add_argument("--tag", default="cuhk03", help="results file name: bench/results/reid_<tag>.*")
    return parser.parse_args(argv)


def arm_settings(args: argparse.Namespace, augmented: bool) -> dict:
    settings = {
        "data": str(args.data),
        "model": args.model,
        "epochs": args.epochs,
        "batch_size": args.batch_size,
        "height": args.height,
        "width": args.width,
        "lr": args.lr,
        "iters_per_epoch": args.iters_per_epoch,
        "threads": args.threads,
        "workers": args.workers,
        "evaluate": True,
    }
    if augmented:
        settings.update(
            {
                "synthetic": str(args.synthetic),
                "synthetic_per_batch": args.synthetic_per_batch,
                "max_synthetic_per_id": args.max_synthetic_per_id,
                "label_scheme": args.label_scheme,
            }
        )
    return settings


def run_arm(name: str, settings: dict, seeds: list[int], runs_dir: Path) -> list[dict]:
    rows = []
    for seed in seeds:
        config = resolve_config(overrides={**settings, "seed": seed})
        began = time.perf_counter()
        result = train_reid(config, runs_dir / f"{name}-s{seed}", resume=True, progress=False)
        metrics = result.metrics or {}
        row = {
            "arm": name,
            "seed": seed,
            "run_dir": str(result.run_dir),
            "rank1": metrics.get("rank1"),
            "rank5": metrics.get("rank5"),
            "rank10": metrics.get("rank10"),
            "mAP": metrics.get("mAP"),
            "augreid_eval": metrics.get("augreid_eval"),
            "epoch_seconds": result.epoch_seconds,
            "resumed_from_epoch": result.resumed_from,
            "wall_seconds": round(time.perf_counter() - began, 1),
            "train_images": result.info.get("train_images"),
            "synthetic": result.info.get("synthetic"),
            "dataset_fingerprint": result.info["dataset_fingerprint"],
            "config": config.to_dict(),
        }
        print(
            f"{name} seed {seed}: rank-1 {row['rank1']:.4f} mAP {row['mAP']:.4f} epochs {result.epoch_seconds}",
            flush=True,
        )
        rows.append(row)
    return rows


def mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def summary(rows: list[dict]) -> dict:
    out = {}
    for key in ("rank1", "rank5", "mAP"):
        out[key] = mean_std([r[key] for r in rows])
    epochs = [s for r in rows for s in r["epoch_seconds"]]  # kept in run.json across resumes
    out["seconds_per_epoch"] = mean_std(epochs) if epochs else (float("nan"), 0.0)
    return out


def rows_config(arms: dict[str, list[dict]]) -> str:
    config = next(iter(arms.values()))[0]["config"]
    return f"{config['height']}x{config['width']}"


def rows_lr(arms: dict[str, list[dict]]) -> str:
    return str(next(iter(arms.values()))[0]["config"]["lr"])


def chance_rank1(data_root: Path) -> float:
    """Expected rank-1 of a random ranking: mean over queries of matches / kept gallery items."""
    from augreid.data import load_market

    market = load_market(data_root)
    rates = []
    for q in market.query:
        kept = [g for g in market.gallery if not (g.pid == q.pid and g.camid == q.camid)]
        matches = sum(g.pid == q.pid for g in kept)
        if matches:
            rates.append(matches / len(kept))
    return statistics.fmean(rates)


def evaluator_gap(rows: list[dict]) -> float | None:
    """Largest difference between torchreid's and augreid's evaluators on the same distances."""
    gaps = [abs(r[k] - r["augreid_eval"][k]) for r in rows if r.get("augreid_eval") for k in ("rank1", "mAP")]
    return max(gaps) if gaps else None


def markdown(args: argparse.Namespace, arms: dict[str, list[dict]], environment: dict) -> str:
    lines = [
        f"# Re-ID training benchmark ({args.tag})",
        "",
        f"Data: `{args.data}`; model {args.model} (random init, no ImageNet weights), "
        f"{args.epochs} epoch(s), batch {args.batch_size}, input {rows_config(arms)}, lr {rows_lr(arms)}, {environment['threads']} torch thread(s), "
        f"{environment['workers']} loader worker(s), seeds {args.seeds}. Settings not listed are "
        "train-reid's defaults (see the JSON for every value). Scores: torchreid's evaluator, "
        "euclidean distance, single query, no re-ranking; ± is the sample standard deviation over seeds.",
        "",
        "| arm | rank-1 | rank-5 | mAP | s/epoch | runs |",
        "|---|---|---|---|---|---|",
    ]
    for name, rows in arms.items():
        s = summary(rows)
        cells = [f"{100 * s[k][0]:.1f} ± {100 * s[k][1]:.1f}" for k in ("rank1", "rank5", "mAP")]
        lines.append(
            f"| {name} | {' | '.join(cells)} | {s['seconds_per_epoch'][0]:.0f} ± "
            f"{s['seconds_per_epoch'][1]:.0f} | {len(rows)} |"
        )
    if "augmented" not in arms:
        lines.append("| augmented | pending | pending | pending | – | 0 |")
        lines += [
            "",
            "The augmented arm is **pending**: it needs a PG2-synthesised folder "
            "(`python bench/bench_reid.py --synthetic PATH ...`), which did not exist when this was run.",
        ]
    lines += ["", "Per run:", "", "| arm | seed | rank-1 | mAP | seconds per epoch |", "|---|---|---|---|---|"]
    for rows in arms.values():
        for r in rows:
            lines.append(
                f"| {r['arm']} | {r['seed']} | {100 * r['rank1']:.1f} | {100 * r['mAP']:.1f} | "
                f"{', '.join(f'{x:.0f}' for x in r['epoch_seconds'])} |"
            )
    gap = evaluator_gap([r for rows in arms.values() for r in rows])
    lines += [
        "",
        f"A random ranking scores rank-1 {100 * environment['chance_rank1']:.2f}% on this query/gallery. "
        "The model is trained from random weights at a small input size for few epochs, to fit a shared "
        "2-core CPU; the numbers are a baseline for comparing arms under the same budget, not the "
        "accuracy the model reaches with ImageNet weights and a full schedule.",
    ]
    if gap is not None:
        lines += [
            "",
            f"`augreid.evaluation.evaluate_rank` on the same distances differs from torchreid's by at "
            f"most {gap:.1e} (rank-1/mAP).",
        ]
    runs = [r for rows in arms.values() for r in rows]
    resumed = sum(r["resumed_from_epoch"] > 0 for r in runs)
    lines += [
        "",
        f"Machine: {environment['machine']}, {environment['cpus']} CPUs, load average "
        f"{environment['load_average_start']} when this report was started. Epoch times are read from each "
        f"run's run.json, measured while it trained ({resumed} of {len(runs)} runs were trained by an earlier "
        "invocation and only re-scored here); the CPU was shared with other jobs, so they are upper bounds.",
    ]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    args = parse_args(argv)
    import torch

    from augreid.reid.checkpoint import import_torchreid_models

    import_torchreid_models()  # quiet about torchreid's missing Cython evaluator
    import torchreid

    environment = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "torch": torch.__version__,
        "torchreid": torchreid.__version__,
        "threads": args.threads,
        "workers": args.workers,
        "load_average_start": [round(x, 2) for x in os.getloadavg()],
        "chance_rank1": chance_rank1(args.data),
    }
    arms = {"baseline": run_arm("baseline", arm_settings(args, False), args.seeds, args.runs_dir)}
    if args.synthetic is not None:
        arms["augmented"] = run_arm("augmented", arm_settings(args, True), args.seeds, args.runs_dir)
    results_dir = REPO / "bench" / "results"
    report = {
        "tag": args.tag,
        "environment": environment,
        "arguments": {k: str(v) for k, v in vars(args).items()},
        "summary": {name: summary(rows) for name, rows in arms.items()},
        "augmented": "run" if "augmented" in arms else "pending: no synthetic folder given",
        "runs": [row for rows in arms.values() for row in rows],
    }
    atomic_write_json(results_dir / f"reid_{args.tag}.json", report)
    atomic_write_text(results_dir / f"reid_{args.tag}.md", markdown(args, arms, environment))
    print(f"wrote {results_dir / f'reid_{args.tag}.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
