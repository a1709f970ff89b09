"""Speed of the Market-1501 protocol: augreid's evaluation against torchreid's ``evaluate_rank``.

Random 512-d features at Market-1501 scale (3,368 queries x 19,732 gallery
images, 750 query identities, 2,793 distractors, 6 cameras). Random features
are the worst case for the ranking: the correct matches are spread over the
whole gallery. Both implementations get the same arrays; the results must agree
(the check is part of the output).

Measured, with ``--threads`` torch/numpy threads (default 2, the CI machines' core count):

* ``augreid_evaluate_rank``: augreid's drop-in ``evaluate_rank`` on the distance matrix;
* ``augreid_features``: ``evaluate_features``, distances computed block by block
  (the full CMC + mAP from features, never holding the whole matrix);
* ``torchreid_distance``: torchreid's ``compute_distance_matrix`` (full matrix);
* ``torchreid_evaluate_rank``: torchreid's ``evaluate_rank`` on that matrix (the
  PyPI package has no Cython extension, so this is its Python ``eval_market1501``);
* ``faiss_top10``: faiss exact top-10 search for every query.

Writes ``bench/results/eval_speed.json`` and ``eval_speed.md``.

    python bench/bench_eval.py                      # full scale, torchreid once (~2-3 min)
    python bench/bench_eval.py --scale 0.1 --repeats 2 --out /tmp/eval-speed   # a quick look
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augreid.evaluation import evaluate_features, evaluate_rank, summarize  # noqa: E402
from augreid.versions import package_versions  # noqa: E402
from augreid.evaluation.search import knn_search  # noqa: E402
from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402

MARKET = {
    "num_query": 3368,
    "num_gallery": 19732,
    "num_ids": 750,
    "num_distractors": 2793,
    "num_cameras": 6,
    "dim": 512,
}


def market_like(seed: int, scale: float) -> dict:
    rng = np.random.default_rng(seed)
    n_q, n_g = int(MARKET["num_query"] * scale), int(MARKET["num_gallery"] * scale)
    n_ids, n_dis = max(2, int(MARKET["num_ids"] * scale)), int(MARKET["num_distractors"] * scale)
    ids = np.sort(rng.choice(np.arange(1, 1502), size=n_ids, replace=False))
    g_pids = np.concatenate([np.zeros(n_dis, dtype=np.int64), rng.choice(ids, size=n_g - n_dis)])
    return {
        "qf": rng.standard_normal((n_q, MARKET["dim"]), dtype=np.float32),
        "gf": rng.standard_normal((n_g, MARKET["dim"]), dtype=np.float32),
        "q_pids": rng.choice(ids, size=n_q),
        "g_pids": g_pids,
        "q_camids": rng.integers(1, MARKET["num_cameras"] + 1, n_q),
        "g_camids": rng.integers(1, MARKET["num_cameras"] + 1, n_g),
    }


def timed(fn, repeats: int) -> tuple[tuple[list[float], list[float]], object]:
    """Wall-clock and CPU seconds (all threads of this process) of ``repeats`` calls."""
    times, cpu, out = [], [], None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = fn()
        times.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return (times, cpu), out


def stats(measured: tuple[list[float], list[float]]) -> dict:
    times, cpu = measured
    return {
        "median_s": float(np.median(times)),
        "min_s": float(np.min(times)),
        "runs_s": [round(t, 4) for t in times],
        "median_cpu_s": float(np.median(cpu)),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=float, default=1.0, help="fraction of Market-1501's set sizes")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--skip-torchreid", action="store_true", help="skip torchreid's slow Python evaluation")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Cython evaluation")
        from torchreid.reid.metrics import compute_distance_matrix
        from torchreid.reid.metrics.rank import evaluate_rank as torchreid_evaluate_rank

    load_before = [round(x, 2) for x in os.getloadavg()]
    data = market_like(args.seed, args.scale)
    labels = (data["q_pids"], data["g_pids"], data["q_camids"], data["g_camids"])
    qf, gf = torch.from_numpy(data["qf"]), torch.from_numpy(data["gf"])
    results: dict = {}

    times, dist = timed(lambda: compute_distance_matrix(qf, gf, "euclidean").numpy(), 1)
    results["torchreid_distance"] = stats(times)
    times, ours = timed(lambda: evaluate_rank(dist, *labels, max_rank=50), args.repeats)
    results["augreid_evaluate_rank"] = stats(times)
    times, per_query = timed(lambda: evaluate_features(qf, gf, *labels, workers=args.threads), args.repeats)
    results["augreid_features"] = stats(times)
    features_metrics = summarize(per_query, max_rank=50)
    times, _ = timed(lambda: knn_search(data["qf"], data["gf"], 10), max(1, args.repeats // 2))
    results["faiss_top10"] = stats(times)

    agreement = {
        "features_vs_distmat_mAP_diff": abs(features_metrics.mAP - float(ours[1])),
        "features_vs_distmat_cmc_maxdiff": float(np.abs(features_metrics.cmc - ours[0]).max()),
    }
    if not args.skip_torchreid:
        times, ref = timed(lambda: torchreid_evaluate_rank(dist, *labels, max_rank=50), 1)
        results["torchreid_evaluate_rank"] = stats(times)
        agreement["torchreid_mAP_diff"] = abs(float(ref[1]) - float(ours[1]))
        agreement["torchreid_cmc_maxdiff"] = float(np.abs(ref[0] - ours[0]).max())
        results["speedup_evaluate_rank"] = (
            results["torchreid_evaluate_rank"]["median_s"] / results["augreid_evaluate_rank"]["median_s"]
        )
        results["speedup_features_vs_torchreid_distance_plus_rank"] = (
            results["torchreid_evaluate_rank"]["median_s"] + results["torchreid_distance"]["median_s"]
        ) / results["augreid_features"]["median_s"]

    report = {
        "setup": {
            **{k: int(v * args.scale) if k.startswith("num_") and k != "num_cameras" else v for k, v in MARKET.items()},
            "scale": args.scale,
            "seed": args.seed,
            "threads": args.threads,
            "repeats": args.repeats,
            "metric": "euclidean",
            "max_rank": 50,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
            "load_average_before": load_before,
            "load_average_after": [round(x, 2) for x in os.getloadavg()],
        },
        "versions": package_versions(),
        "timings": results,
        "agreement": agreement,
        "scores": {"mAP": float(ours[1]), "rank1": float(ours[0][0]), "valid_queries": features_metrics.num_valid},
    }
    args.out.mkdir(parents=True, exist_ok=True)
    atomic_write_json(args.out / "eval_speed.json", report)
    atomic_write_text(args.out / "eval_speed.md", markdown(report))
    print(markdown(report))


def markdown(report: dict) -> str:
    s, t = report["setup"], report["timings"]
    rows = [
        ("augreid `evaluate_rank` (distance matrix given)", "augreid_evaluate_rank"),
        ("augreid `evaluate_features` (distances block by block + CMC + mAP)", "augreid_features"),
        ("torchreid `compute_distance_matrix`", "torchreid_distance"),
        ("torchreid `evaluate_rank` (Python `eval_market1501`)", "torchreid_evaluate_rank"),
        ("faiss exact top-10 search", "faiss_top10"),
    ]
    lines = [
        "# Evaluation speed",
        "",
        f"Random {s['dim']}-d features, {s['num_query']} queries x {s['num_gallery']} gallery images "
        f"({s['num_ids']} identities, {s['num_distractors']} distractors), seed {s['seed']}, "
        f"{s['threads']} threads, {report['machine']['cpus']} CPUs (load average before "
        f"{report['machine']['load_average_before']}, after {report['machine']['load_average_after']}: "
        "the machine may be shared).",
        "",
        "Wall-clock seconds, and CPU seconds summed over this process's threads (on a busy machine the",
        "wall-clock time grows while the CPU time stays; CPU s / threads estimates an idle machine).",
        "",
        "| step | median s | min s | median CPU s | runs |",
        "|---|---|---|---|---|",
    ]
    for label, key in rows:
        if key in t:
            lines.append(
                f"| {label} | {t[key]['median_s']:.3f} | {t[key]['min_s']:.3f} | "
                f"{t[key]['median_cpu_s']:.3f} | {len(t[key]['runs_s'])} |"
            )
    lines.append("")
    if "speedup_evaluate_rank" in t:
        lines.append(
            f"Speed-up of `evaluate_rank` over torchreid's: {t['speedup_evaluate_rank']:.0f}x; "
            f"features to CMC + mAP against torchreid's distance + evaluate_rank: "
            f"{t['speedup_features_vs_torchreid_distance_plus_rank']:.0f}x."
        )
    a = report["agreement"]
    lines.append("Agreement: " + ", ".join(f"{k} = {v:.2e}" for k, v in a.items()) + ".")
    lines.append(
        "(Random float32 distances have occasional exact ties, which torchreid's unstable argsort "
        "orders arbitrarily; hence differences around 1e-9 rather than 0.)"
    )
    lines.append("")
    lines.append("Versions: " + ", ".join(f"{k} {v}" for k, v in report["versions"].items()))
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
