"""train-reid epoch throughput with and without channels_last, interleaved in one process.

Each repetition trains one epoch of ``--iters`` optimizer steps twice on the same
data and seed, first with ``channels_last = false`` (the layout train-reid used
before) then with ``true`` (its default now), single-threaded, images decoded in
the training process (``--workers 0``), so that the epoch's CPU time
(``epoch_cpu_seconds`` in run.json) holds all of its work. Writes
bench/results/reid_speed.{json,md}; ``epoch_speedup`` is the median over
repetitions of (CPU seconds before) / (CPU seconds after): CPU time, unlike wall
time, stays comparable while other jobs share the cores. Wall times are recorded too.

    python bench/bench_reid_speed.py --iters 40 --repeats 3
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augreid.io import atomic_write_json, atomic_write_text, portable_path  # noqa: E402
from augreid.reid.config import resolve_config  # noqa: E402
from augreid.reid.train import train_reid  # noqa: E402
from augreid.runtime import numerics  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "cuhk03-market"


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="Market-layout dataset root")
    parser.add_argument("--iters", type=int, default=40, help="optimizer steps in the timed epoch")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--runs-dir", type=Path, default=Path(tempfile.gettempdir()) / "augreid-bench-reid-speed")
    return parser.parse_args(argv)


def one_epoch(args: argparse.Namespace, channels_last: bool, folder: Path) -> tuple[float, float]:
    """(CPU seconds, wall seconds) of one epoch."""
    config = resolve_config(
        None,
        {
            "data": str(args.data),
            "model": "mobilenetv2_x1_0",
            "pretrained": "imagenet",
            "method": "bot",
            "epochs": 1,
            "iters_per_epoch": args.iters,
            "batch_size": args.batch_size,
            "height": 128,
            "width": 64,
            "threads": args.threads,
            "workers": args.workers,
            "channels_last": channels_last,
            "evaluate": False,
        },
    )
    result = train_reid(config, folder, resume=False, overwrite=True, progress=False)
    info = json.loads((result.run_dir / "run.json").read_text())
    return info["epoch_cpu_seconds"][0], result.epoch_seconds[0]


def main(argv=None) -> None:
    args = parse_args(argv)
    rows = []
    for repeat in range(args.repeats):
        before, before_wall = one_epoch(args, False, args.runs_dir / "before")
        after, after_wall = one_epoch(args, True, args.runs_dir / "after")
        rows.append(
            {
                "repeat": repeat,
                "before_s": before,
                "after_s": after,
                "speedup": before / after,
                "before_wall_s": before_wall,
                "after_wall_s": after_wall,
            }
        )
        print(f"repeat {repeat}: CPU contiguous {before:.1f} s, channels_last {after:.1f} s, x{before / after:.2f}")
    speedup = statistics.median(r["speedup"] for r in rows)
    result = {
        "what": "one train-reid epoch (bot, ImageNet mobilenetv2_x1_0, 128x64), before = contiguous, after = channels_last",
        "data": portable_path(args.data),
        "iters": args.iters,
        "batch_size": args.batch_size,
        "threads": args.threads,
        "workers": args.workers,
        "cpu": platform.processor() or platform.machine(),
        "runtime": numerics(args.workers),
        "repeats": rows,
        "epoch_speedup": round(speedup, 3),
        "steps_per_second_before": round(args.iters / statistics.median(r["before_s"] for r in rows), 3),
        "steps_per_second_after": round(args.iters / statistics.median(r["after_s"] for r in rows), 3),
    }
    out = REPO / "bench" / "results"
    atomic_write_json(out / "reid_speed.json", result)
    lines = [
        "# train-reid epoch speed: contiguous vs channels_last",
        "",
        f"One epoch of {args.iters} optimizer steps, batch {args.batch_size}, bot + ImageNet MobileNetV2 at 128x64 on "
        f"`{result['data']}`, {args.threads} thread(s), {args.workers} loader worker(s); before and after interleaved "
        "in one process, same data and seed (`python bench/bench_reid_speed.py`). Speedup from the epoch's CPU "
        "time; the wall times show how busy the machine was.",
        "",
        "| repeat | contiguous CPU s | channels_last CPU s | speedup | wall s (contiguous / channels_last) |",
        "|---|---|---|---|---|",
        *(
            f"| {r['repeat']} | {r['before_s']:.1f} | {r['after_s']:.1f} | x{r['speedup']:.2f} | "
            f"{r['before_wall_s']:.1f} / {r['after_wall_s']:.1f} |"
            for r in rows
        ),
        "",
        f"**epoch_speedup (median): x{speedup:.2f}**",
        "",
    ]
    atomic_write_text(out / "reid_speed.md", "\n".join(lines))


if __name__ == "__main__":
    main()
