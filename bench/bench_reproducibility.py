"""Which settings change a re-ID training's numbers? (issue 15: the demo result did not reproduce).

Trains the same short ``augreid train-reid`` run on the embedded demo dataset
(the demo recipe's ImageNet MobileNetV2 + bot at 64x32, shortened to
``--epochs``) once per variant, each in a fresh process, and compares every
variant's final weights and end-of-training rank-1 / mAP with the reference
(1 torch thread, 0 loader workers, the CPU's own kernels). A variant differs
only in what its name says: a repeat, loader workers, torch threads, or the
CPU instruction set PyTorch's kernels are allowed to use (``ATEN_CPU_CAPABILITY``
for ATen's vectorised kernels, ``ONEDNN_MAX_CPU_ISA`` for oneDNN's convolutions;
a machine with an older CPU picks those kernels by itself).

Writes ``bench/results/reproducibility.{json,md}``.

    python bench/bench_reproducibility.py --epochs 3
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402
from augreid.reid.checkpoint import load_reid_model  # noqa: E402

RESULTS = REPO / "bench" / "results"
# name -> (threads, workers, extra environment)
VARIANTS: dict[str, tuple[int, int, dict[str, str]]] = {
    "reference": (1, 0, {}),
    "repeat": (1, 0, {}),
    "workers-2": (1, 2, {}),
    "threads-2": (2, 0, {}),
    "aten-avx2": (1, 0, {"ATEN_CPU_CAPABILITY": "avx2"}),
    "onednn-avx2": (1, 0, {"ONEDNN_MAX_CPU_ISA": "AVX2"}),
    "aten-avx2+onednn-avx2": (1, 0, {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}),
}


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--only", nargs="+", default=list(VARIANTS))
    parser.add_argument("--runs-dir", type=Path, default=Path(tempfile.gettempdir()) / "augreid-bench-repro")
    return parser.parse_args(argv)


def _finished(out: Path) -> bool:
    run = out / "run.json"
    return run.is_file() and "rank1" in json.loads(run.read_text()).get("end_of_training_eval", {})


def train(name: str, args: argparse.Namespace) -> Path:
    threads, workers, extra = VARIANTS[name]
    out = args.runs_dir / name
    if _finished(out):
        return out  # finished earlier: the benchmark resumes variant by variant
    cmd = [
        sys.executable,
        "-m",
        "augreid.cli",
        "train-reid",
        "--out",
        str(out),
        "--overwrite",
        "--height",
        "64",
        "--width",
        "32",
        "--batch-size",
        "32",
        "--epochs",
        str(args.epochs),
        "--seed",
        str(args.seed),
        "--threads",
        str(threads),
        "--workers",
        str(workers),
        "--set",
        "warmup_epochs=1",
        "--set",
        f"stepsize=[{max(1, args.epochs - 1)}]",
    ]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "AUGREID_HOME": str(args.runs_dir / "home"), **extra}
    subprocess.run(cmd, check=True, env=env, cwd=REPO)
    return out


def compare(out: Path, reference: Path) -> dict:
    model, _ = load_reid_model(out)
    ref, _ = load_reid_model(reference)
    a, b = model.state_dict(), ref.state_dict()
    diffs = [float((a[k].double() - b[k].double()).abs().max()) for k in b if a[k].is_floating_point()]
    run, ref_run = (json.loads((p / "run.json").read_text()) for p in (out, reference))
    metrics, ref_metrics = run["end_of_training_eval"], ref_run["end_of_training_eval"]
    return {
        "threads": run["runtime"]["threads"],
        "workers": run["runtime"]["workers"],
        "identical_weights": max(diffs) == 0.0,
        "max_abs_weight_diff": max(diffs),
        "rank1": round(100 * metrics["rank1"], 2),
        "mAP": round(100 * metrics["mAP"], 2),
        "rank1_minus_reference": round(100 * (metrics["rank1"] - ref_metrics["rank1"]), 2),
        "mAP_minus_reference": round(100 * (metrics["mAP"] - ref_metrics["mAP"]), 2),
    }


def markdown(rows: dict[str, dict], meta: dict) -> str:
    lines = [
        "# Which settings change a re-ID training's numbers (issue 15)",
        "",
        f"`bench/bench_reproducibility.py --epochs {meta['epochs']}`: the demo recipe's re-ID training "
        "(ImageNet MobileNetV2 + bot, 64x32, batch 32, seed "
        f"{meta['seed']}), {meta['epochs']} epochs, each variant in a fresh process, compared with the "
        "reference (1 thread, 0 workers, this CPU's own kernels). "
        f"CPU: {meta['cpu']}; PyTorch {meta['torch']}, kernels {meta['cpu_capability']}.",
        "",
        "| variant | threads | workers | identical weights | max abs weight diff | rank-1 % | mAP % "
        "| rank-1 − ref | mAP − ref |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['threads']} | {r['workers']} | {'yes' if r['identical_weights'] else 'no'} "
            f"| {r['max_abs_weight_diff']:.3g} | {r['rank1']:.2f} | {r['mAP']:.2f} "
            f"| {r['rank1_minus_reference']:+.2f} | {r['mAP_minus_reference']:+.2f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    for name in ["reference"] + [n for n in args.only if n != "reference"]:
        train(name, args)
    # Report every variant finished so far (this call's and earlier ones'), in the table's order.
    outs = {name: args.runs_dir / name for name in VARIANTS if _finished(args.runs_dir / name)}
    rows = {name: compare(out, outs["reference"]) for name, out in outs.items()}
    meta = {
        "epochs": args.epochs,
        "seed": args.seed,
        "cpu": platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "nproc": os.cpu_count(),
    }
    atomic_write_json(RESULTS / "reproducibility.json", {"meta": meta, "variants": rows})
    atomic_write_text(RESULTS / "reproducibility.md", markdown(rows, meta))
    print(markdown(rows, meta))


if __name__ == "__main__":
    main()
