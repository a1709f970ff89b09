"""Time the demo dataset generation; writes bench/results/demo_generation.json.

    python bench/demo_generation.py [--seed 0] [--repeats 2]

Wall time depends on the machine and its load; CPU time of this process is reported beside it.
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

from augreid.data.demo import DEMO_VERSION, make_demo_dataset
from augreid.data.market import load_market
from augreid.io import atomic_write_json

RESULTS = Path(__file__).resolve().parent / "results" / "demo_generation.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    runs = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory() as tmp:
            wall, cpu = time.perf_counter(), time.process_time()
            root = make_demo_dataset(Path(tmp) / "demo", seed=args.seed)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            data = load_market(root)
            files = sum(1 for _ in (root / "Market-1501-v15.09.15").rglob("*.jpg"))
            size = sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
        runs.append(
            {
                "wall_s": round(wall, 3),
                "cpu_s": round(cpu, 3),
                "images": files,
                "ms_per_image_cpu": round(1000 * cpu / files, 2),
                "bytes": size,
                "train": len(data.train),
                "query": len(data.query),
                "gallery": len(data.gallery),
            }
        )
        print(runs[-1])
    atomic_write_json(
        RESULTS,
        {
            "demo_version": DEMO_VERSION,
            "seed": args.seed,
            "runs": runs,
            "machine": {
                "python": platform.python_version(),
                "cpus": os.cpu_count(),
                "load_average": os.getloadavg(),
                "platform": platform.platform(),
            },
        },
    )
    print(f"written {RESULTS}")


if __name__ == "__main__":
    main()
