"""Re-ID baselines on cuhk03-market: random vs ImageNet initialisation, softmax vs the strong baseline (bot).

Each named configuration trains one ``train-reid`` run (resumable: run folders
live under ``--runs-dir``), scores it on the real query/gallery with augreid's
evaluator and appends a row to ``bench/results/reid_baselines.json``::

    {model, init, method, height, width, epochs, seed, rank1, mAP, seconds_per_epoch, ...}

with percentages as numbers. ``bench/results/reid_baselines.md`` is rewritten
from the JSON after every run, so a benchmark cut short still reports what it
finished. A configuration already in the JSON is skipped.

    python bench/bench_reid_baselines.py --only probe bot-128x64 softmax-random softmax-imagenet bot-256x128
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augreid.evaluation import evaluate_rank  # noqa: E402
from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402
from augreid.reid.config import resolve_config  # noqa: E402
from augreid.reid.train import train_reid  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "cuhk03-market"
RESULTS = REPO / "bench" / "results"
# A CPU-sized BoT schedule: BoT's 120 epochs (warmup 10, steps at 40 and 70) compressed.
BOT_CPU = {"method": "bot", "pretrained": "imagenet", "warmup_epochs": 4, "stepsize": [14, 18], "epochs": 20}
SOFTMAX = {
    "method": "softmax",
    "transforms": ["random_flip"],
    "real_label_smoothing": 0.0,
    "lr": 0.0003,
    "batch_size": 32,
    "lr_scheduler": "single_step",
    "stepsize": [20],
    "epochs": 6,
}
# Throughput: the same model, input and batch size through torchreid's softmax engine and bot's loop.
PROBES: dict[str, dict] = {
    "softmax": {**SOFTMAX, "pretrained": "imagenet", "batch_size": 64},
    "bot-last-stride-2": {**BOT_CPU, "method_options": {"last_stride": 2}},
    "bot-last-stride-1": {**BOT_CPU, "method_options": {"last_stride": 1}},
}
CONFIGS: dict[str, dict] = {
    "bot-128x64": {**BOT_CPU},
    "softmax-random": {**SOFTMAX, "pretrained": "none"},
    "softmax-imagenet": {**SOFTMAX, "pretrained": "imagenet"},
    "bot-256x128": {**BOT_CPU, "height": 256, "width": 128, "epochs": 8, "warmup_epochs": 2, "stepsize": [6]},
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--only", nargs="+", default=list(CONFIGS), help=f"configurations ({', '.join(CONFIGS)})")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--epochs", type=int, default=None, help="override every configuration's epochs")
    parser.add_argument("--runs-dir", type=Path, default=Path(tempfile.gettempdir()) / "augreid-bench-baselines")
    parser.add_argument("--tag", default="reid_baselines")
    parser.add_argument(
        "--throughput",
        action="store_true",
        help="instead: time softmax vs bot epochs of --probe-iters batches, interleaved --rounds times",
    )
    parser.add_argument("--probe-iters", type=int, default=15)
    parser.add_argument("--rounds", type=int, default=3)
    return parser.parse_args(argv)


def row_of(name: str, result, config, args) -> dict:
    metrics = result.metrics or {}
    seconds = result.epoch_seconds
    return {
        "config": name,
        "model": config.model,
        "init": "imagenet" if result.info.get("pretrained") else "random",
        "method": config.method,
        "height": config.height,
        "width": config.width,
        "epochs": config.epochs,
        "seed": config.seed,
        "rank1": round(100 * metrics.get("rank1", float("nan")), 2),
        "mAP": round(100 * metrics.get("mAP", float("nan")), 2),
        "seconds_per_epoch": round(sum(seconds) / len(seconds), 1) if seconds else None,
        "iterations_per_epoch": config.iters_per_epoch,
        "method_options": config.method_options,
        "batch_size": config.batch_size,
        "lr": config.lr,
        "warmup_epochs": config.schedule[0],
        "stepsize": config.schedule[1],
        "threads": args.threads,
        "workers": args.workers,
        "dataset": "../shared/data/cuhk03-market" if args.data.resolve() == DEFAULT_DATA.resolve() else args.data.name,
        "pretrained": result.info.get("pretrained"),
        "train_images": result.info.get("train_images"),
    }


def write_markdown(rows: list[dict], path: Path) -> None:
    lines = [
        "# Re-ID baselines on cuhk03-market (CPU)",
        "",
        "Written by `bench/bench_reid_baselines.py`; rows in `reid_baselines.json`. Single query, Market-1501 "
        "protocol (same-camera gallery images of the query identity ignored), augreid's evaluator, euclidean "
        "distance, no re-ranking, no flip. Chance rank-1 is about 1/400 identities; CUHK03 split of this "
        "project (443 train / 400 test ids), not comparable with published CUHK03 numbers.",
        "",
        f"Machine: {platform.machine()}, {os.cpu_count()} cores, shared with other work while it ran "
        "(seconds per epoch are wall time under that load).",
        "",
        "| config | model | init | method | input | epochs | iters/epoch | seed | rank-1 % | mAP % | s/epoch |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        iters = r["iterations_per_epoch"] or "all"
        lines.append(
            f"| {r['config']} | {r['model']} | {r['init']} | {r['method']} | {r['height']}x{r['width']} | "
            f"{r['epochs']} | {iters} | {r['seed']} | {r['rank1']} | {r['mAP']} | {r['seconds_per_epoch']} |"
        )
    atomic_write_text(path, "\n".join(lines) + "\n")


def throughput(args) -> None:
    """Seconds per batch of each probe, interleaved so that a change in machine load hits all alike."""
    seconds: dict[str, list[float]] = {name: [] for name in PROBES}
    for round_ in range(args.rounds):
        for name, settings in PROBES.items():
            config = resolve_config(
                overrides={
                    **settings,
                    "data": str(args.data),
                    "epochs": 1,
                    "threads": args.threads,
                    "workers": args.workers,
                    "iters_per_epoch": args.probe_iters,
                    "evaluate": False,
                }
            )
            result = train_reid(config, args.runs_dir / f"probe-{name}-r{round_}", overwrite=True, progress=False)
            seconds[name].append(result.epoch_seconds[0] / args.probe_iters)
    per_batch = {name: sorted(values)[len(values) // 2] for name, values in seconds.items()}
    report = {
        "batch_size": 64,
        "input": "128x64",
        "model": "mobilenetv2_x1_0",
        "threads": args.threads,
        "iterations_per_round": args.probe_iters,
        "rounds": args.rounds,
        "seconds_per_batch": seconds,
        "median_seconds_per_batch": per_batch,
        "ratio_to_softmax": {n: round(v / per_batch["softmax"], 3) for n, v in per_batch.items()},
    }
    atomic_write_json(RESULTS / "reid_throughput.json", report)
    lines = [
        "# bot vs torchreid's softmax engine: seconds per batch (same run, interleaved)",
        "",
        f"mobilenetv2_x1_0, 128x64, batch 64, {args.threads} thread(s), {args.rounds} rounds of "
        f"{args.probe_iters} batches each, median over rounds; machine shared with other work.",
        "",
        "| engine | s/batch | x softmax |",
        "|---|---|---|",
    ]
    lines += [f"| {n} | {v:.3f} | {report['ratio_to_softmax'][n]:.2f} |" for n, v in per_batch.items()]
    atomic_write_text(RESULTS / "reid_throughput.md", "\n".join(lines) + "\n")
    print("\n".join(lines))


def main(argv=None) -> int:
    args = parse_args(argv)
    if not args.data.is_dir():
        print(f"skipped: {args.data} is absent", file=sys.stderr)
        return 0
    if args.throughput:
        throughput(args)
        return 0
    json_path, md_path = RESULTS / f"{args.tag}.json", RESULTS / f"{args.tag}.md"
    rows = json.loads(json_path.read_text()) if json_path.is_file() else []
    for name in args.only:
        if any(r["config"] == name and r["seed"] == args.seed for r in rows):
            continue
        settings = {
            **CONFIGS[name],
            "data": str(args.data),
            "seed": args.seed,
            "threads": args.threads,
            "workers": args.workers,
        }
        if args.epochs is not None and not name.startswith("probe"):
            settings["epochs"] = args.epochs
        config = resolve_config(overrides=settings)
        result = train_reid(config, args.runs_dir / f"{name}-s{args.seed}", evaluate_rank=evaluate_rank)
        rows.append(row_of(name, result, config, args))
        atomic_write_json(json_path, rows)
        write_markdown(rows, md_path)
        print(
            f"{name}: rank-1 {rows[-1]['rank1']} mAP {rows[-1]['mAP']} ({rows[-1]['seconds_per_epoch']} s/epoch)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
