"""PG2 benchmark: CPU training speed per preset, and eval-gen tables after cpu-small training runs.

Usage (from the repository root, venv active)::

    python bench/bench_pg2.py speed                    # it/s per preset -> bench/results/pg2_speed.{json,md}
    python bench/bench_pg2.py demo                     # cpu-small on the demo dataset + eval-gen
    python bench/bench_pg2.py cuhk03 --minutes 15      # cpu-small on ../shared/data/cuhk03-market + eval-gen

Each part writes JSON + Markdown under bench/results/ (``pg2_*``) with the machine
load, thread count and seeds. The CUHK03 contact sheet stays in the run folder
(runs/...): CUHK03 images may not be redistributed, so none are committed.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402
from generators.pg2 import load_preset  # noqa: E402
from generators.pg2.losses import discriminator_loss, generator_adversarial, pose_mask_l1  # noqa: E402
from generators.pg2.model import PG2, Discriminator, count_parameters  # noqa: E402

RESULTS = REPO / "bench" / "results"


def machine() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "load_average_1_5_15": list(os.getloadavg()),
        "cuda": torch.cuda.is_available(),
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


# ---------------------------------------------------------------- speed


def time_steps(preset: str, batch: int, steps: int, warmup: int = 1) -> dict:
    """Seconds per stage-I and stage-II step on random data of the preset's size (the loss maths of train.py)."""
    cfg = load_preset(preset)
    m = cfg.model
    torch.manual_seed(0)
    net, disc = PG2(m), Discriminator(m)
    opt_g1 = torch.optim.Adam(net.g1.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas)
    opt_g2 = torch.optim.Adam(net.g2.parameters(), lr=cfg.train.lr_g, betas=cfg.train.betas)
    opt_d = torch.optim.Adam(disc.parameters(), lr=cfg.train.lr_d, betas=cfg.train.betas)
    h, w = m.image_size
    cond, target = torch.rand(batch, 3, h, w) * 2 - 1, torch.rand(batch, 3, h, w) * 2 - 1
    maps, mask = (torch.rand(batch, 18, h, w) > 0.97).float(), (torch.rand(batch, 1, h, w) > 0.7).float()

    def stage1():
        loss = pose_mask_l1(net.g1(cond, maps), target, mask)
        opt_g1.zero_grad()
        loss.backward()
        opt_g1.step()

    def stage2():
        with torch.no_grad():
            coarse = net.g1(cond, maps)
        refined = coarse + net.g2(coarse, cond)
        logits = disc(torch.cat([cond, cond]), torch.cat([target, refined.detach()]))
        d_loss = discriminator_loss(*logits.chunk(2))
        opt_d.zero_grad()
        d_loss.backward()
        opt_d.step()
        disc.requires_grad_(False)
        fake = disc(torch.cat([cond, cond]), torch.cat([target, refined])).chunk(2)[1]
        disc.requires_grad_(True)
        g_loss = generator_adversarial(fake) + cfg.train.l1_weight * pose_mask_l1(refined, target, mask)
        opt_g2.zero_grad()
        g_loss.backward()
        opt_g2.step()

    out = {
        "preset": preset,
        "batch": batch,
        "preset_batch": cfg.train.batch_size,
        "image_size": [h, w],
        "parameters": {"g1": count_parameters(net.g1), "g2": count_parameters(net.g2), "d": count_parameters(disc)},
    }
    for name, fn in (("stage1", stage1), ("stage2", stage2)):
        for _ in range(warmup):
            fn()
        start = time.perf_counter()
        for _ in range(steps):
            fn()
        seconds = (time.perf_counter() - start) / steps
        out[name] = {
            "seconds_per_step": seconds,
            "it_per_s": 1 / seconds,
            "images_per_s": batch / seconds,
            "timed_steps": steps,
        }
    return out


def run_speed(args) -> None:
    rows = []
    # Paper-size presets need a GPU; on CPU one step at batch 1 is timed to give an order of magnitude.
    # fashion-256x256 (about 1.2 TFLOP per image forward) is not timed on CPU at all.
    # cpu-small is timed with 1 and 2 threads: on a busy shared machine 1 thread is faster.
    plan = [("cpu-small", None, 10, 1), ("cpu-small", None, 10, 2), ("paper-128x64", 1, 1, args.threads)]
    for preset, batch, steps, threads in plan:
        batch = batch or load_preset(preset).train.batch_size
        torch.set_num_threads(threads)
        print(f"timing {preset} (batch {batch}, {steps} steps, {threads} thread(s))...", flush=True)
        rows.append({**time_steps(preset, batch, steps), "threads": threads})
    torch.set_num_threads(args.threads)
    report = {
        "machine": machine(),
        "note": "random tensors of the preset's size; data loading excluded (it is cached in memory).",
        "rows": rows,
    }
    atomic_write_json(RESULTS / "pg2_speed.json", report)
    lines = [
        f"# PG2 training speed on CPU ({report['machine']['cpu_count']} cores, "
        f"load average {report['machine']['load_average_1_5_15'][0]:.1f} at the end, shared machine)",
        "",
        "| preset | params G1 / G2 / D | batch (preset's) | threads | stage I it/s | stage II it/s | stage I img/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        p = r["parameters"]
        lines.append(
            f"| {r['preset']} | {p['g1'] / 1e6:.2f}M / {p['g2'] / 1e6:.2f}M / {p['d'] / 1e6:.2f}M | {r['batch']} ({r['preset_batch']}) | {r['threads']} | "
            f"{r['stage1']['it_per_s']:.3f} | {r['stage2']['it_per_s']:.3f} | {r['stage1']['images_per_s']:.2f} |"
        )
    lines += [
        "",
        "paper-128x64 is timed with batch 1 (one step after one warm-up step); it is meant for GPUs. "
        "fashion-256x256 is not timed on CPU. No GPU was available in this session: no GPU numbers.",
        "",
    ]
    atomic_write_text(RESULTS / "pg2_speed.md", "\n".join(lines))
    print("\n".join(lines))


# ---------------------------------------------------------------- train + eval


def train_and_eval(
    tag: str, data_root, minutes: float | None, out: Path, max_pairs: int, overrides: dict, commit_sheet: bool
) -> None:
    from generators.common.quality import evaluate_generator
    from generators.pg2.train import train_generator

    cfg = load_preset("cpu-small", overrides)
    shutil.rmtree(out, ignore_errors=True)  # a fresh run: the timing covers every step
    start = time.perf_counter()
    result = train_generator(cfg, data_root, out=out, device="cpu", time_limit=minutes * 60 if minutes else None)
    train_seconds = time.perf_counter() - start
    history = result.history
    start = time.perf_counter()
    report = evaluate_generator(result.checkpoint, data_root, out=out / "eval", max_pairs=max_pairs, device="cpu")
    eval_seconds = time.perf_counter() - start
    rates = {
        stage: [h["it_per_s"] for h in history if any(k.startswith(stage) for k in h)] for stage in ("stage1", "stage2")
    }
    summary = {
        "machine": machine(),
        "preset": "cpu-small",
        "overrides": overrides,
        "seed": cfg.train.seed,
        "time_limit_minutes": minutes,
        "steps_done": result.step,
        "steps_planned": cfg.total_steps,
        "finished": result.finished,
        "train_wall_seconds": round(train_seconds, 1),
        "steps_per_second_overall": round(result.step / train_seconds, 3),
        "median_it_per_s": {k: (sorted(v)[len(v) // 2] if v else None) for k, v in rates.items()},
        "eval_wall_seconds": round(eval_seconds, 1),
        "run_folder": str(out),
        "checkpoint_sha256": report["checkpoint_sha256"],
        "eval": {k: v for k, v in report.items() if k != "per_pair"},
        "last_logged_losses": history[-1] if history else None,
    }
    atomic_write_json(RESULTS / f"pg2_{tag}.json", summary)
    table = (out / "eval" / "metrics.md").read_text(encoding="utf-8")
    header = (
        f"# PG2 cpu-small on {tag}\n\n"
        f"Trained {result.step}/{cfg.total_steps} steps in {train_seconds / 60:.1f} min on CPU "
        f"({summary['machine']['threads']} torch thread(s), load average {summary['machine']['load_average_1_5_15'][0]:.1f}, shared machine), "
        f"seed {cfg.train.seed}, overrides {overrides or 'none'}; eval-gen took {eval_seconds:.0f} s.\n\n"
    )
    atomic_write_text(RESULTS / f"pg2_{tag}.md", header + table)
    if commit_sheet:
        shutil.copyfile(out / "eval" / "contact_sheet.png", RESULTS / f"pg2_{tag}_contact_sheet.png")
        samples = sorted((out / "samples").glob("*.png"))
        if samples:
            shutil.copyfile(samples[-1], RESULTS / f"pg2_{tag}_training_samples.png")
    print(header + table)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["speed", "demo", "cuhk03"])
    parser.add_argument(
        "--threads", type=int, default=1, help="torch threads (1 is fastest on a shared, busy 2-core machine)"
    )
    parser.add_argument("--minutes", type=float, default=None, help="training time limit (cuhk03 default 15)")
    parser.add_argument("--max-pairs", type=int, default=500)
    parser.add_argument(
        "--shared-data", type=Path, default=Path(os.environ.get("AUGREID_SHARED_DATA", REPO.parent / "shared" / "data"))
    )
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "bench-pg2")
    parser.add_argument("--set", action="append", default=[], help="preset override section.key=value")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    from augreid.tomlfile import parse_override

    overrides = dict(parse_override(s) for s in args.set)
    RESULTS.mkdir(parents=True, exist_ok=True)
    if args.part == "speed":
        run_speed(args)
    elif args.part == "demo":
        train_and_eval("demo", None, args.minutes, args.out / "demo", args.max_pairs, overrides, commit_sheet=True)
    else:
        root = args.shared_data / "cuhk03-market"
        if not root.is_dir():
            raise SystemExit(f"{root} is absent")
        train_and_eval(
            "cuhk03", root, args.minutes or 15.0, args.out / "cuhk03", args.max_pairs, overrides, commit_sheet=False
        )


if __name__ == "__main__":
    main()
