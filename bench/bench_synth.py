"""End-to-end `augreid synth` throughput against the bare generator forward pass.

The question: does the pipeline (condition decoding in DataLoader workers,
target maps rendered once, scoring + JPEG writing in a thread pool, journal)
keep the generator busy? Both numbers use the same generator and batch size:

* bare: ``generator.generate`` on tensors already in memory, timed over
  ``--batches`` batches after a warm-up (CUDA synchronised);
* synth: ``augreid.synth.synthesize`` into a fresh folder, images/s of its
  generation loop (reading, generating, scoring, writing) and of the whole
  command (planning and clustering included).

The generator is ``--generator`` or, by default, a freshly initialised PG2 of
``--preset`` (weights do not change the speed) written by the real train-gen
code after one step of each stage. Results: ``bench/results/synth_<tag>.{json,md}``.

    python bench/bench_synth.py                              # demo data, cpu-small PG2
    python bench/bench_synth.py --preset paper-128x64 --batch-size 64 --max-ids 400 --data ../shared/data/cuhk03-market
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

from augreid.data.market import load_market  # noqa: E402
from augreid.data.sources import resolve_source  # noqa: E402
from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402
from augreid.synth import SynthConfig, synthesize  # noqa: E402


def fresh_generator(preset: str, data, work: Path) -> Path:
    from generators.pg2 import load_preset
    from generators.pg2.train import train_generator

    cfg = load_preset(
        preset, {"train.stage1_steps": 1, "train.stage2_steps": 1, "data.max_pairs": 64, "log.checkpoint_every": 1}
    )
    result = train_generator(cfg, data, out=work / "pg2", progress=False)
    return result.checkpoint


def bare_forward(generator, device, batch_size: int, batches: int, warmup: int = 2) -> dict:
    import torch

    h, w = generator.config["image_size"]
    condition = torch.rand(batch_size, 3, h, w, device=device) * 2 - 1
    maps = (torch.rand(batch_size, 18, h, w, device=device) > 0.97).float()
    use_amp = device.type == "cuda"

    def step():
        with torch.no_grad(), torch.autocast("cuda", dtype=torch.bfloat16, enabled=use_amp):
            out = generator.generate(condition, maps)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return out

    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(batches):
        step()
    seconds = time.perf_counter() - start
    return {
        "batches": batches,
        "images": batches * batch_size,
        "seconds": round(seconds, 3),
        "images_per_s": round(batches * batch_size / seconds, 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=None, help="dataset root (default: the demo dataset)")
    parser.add_argument("--generator", default=None, help="PG2 checkpoint (default: a fresh --preset one)")
    parser.add_argument("--preset", default="cpu-small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--num-poses", type=int, default=8)
    parser.add_argument("--max-ids", type=int, default=None, help="identities to synthesise (default: all)")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--writer-threads", type=int, default=2)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--batches", type=int, default=10, help="timed batches of the bare forward pass")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--tag", default=None, help="results file name part (default: device type)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved repeats; medians are reported")
    args = parser.parse_args(argv)

    import torch

    from augreid.runtime import pick_device
    from generators.pg2 import load_generator

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    device = pick_device(args.device)
    source = resolve_source(args.data)
    dataset = load_market(source.root)
    with tempfile.TemporaryDirectory(prefix="bench-synth-") as tmp:
        work = Path(tmp)
        checkpoint = Path(args.generator) if args.generator else fresh_generator(args.preset, args.data, work)
        generator = load_generator(checkpoint, device=str(device))
        params = sum(p.numel() for p in generator.parameters())
        bares, runs = [], {}
        variants = (("workers", args.workers, args.writer_threads), ("main_thread_decoding", 0, args.writer_threads))
        # Interleaved repeats: on a shared machine the load drifts, and a fixed
        # order would bias whichever variant runs last.
        for repeat in range(args.repeats):
            bares.append(bare_forward(generator, device, args.batch_size, args.batches))
            print(f"[{repeat}] bare forward: {bares[-1]['images_per_s']} img/s", flush=True)
            for name, workers, writers in variants:
                config = SynthConfig(
                    num_poses=args.num_poses,
                    max_ids=args.max_ids,
                    batch_size=args.batch_size,
                    seed=args.seed,
                    num_workers=workers,
                    writer_threads=writers,
                    device=str(device),
                )
                wall = time.perf_counter()
                out = work / f"out-{name}-{repeat}"
                result = synthesize(
                    out, config, data=args.data, generator=generator, progress=False, echo=lambda _m: None
                )
                wall = time.perf_counter() - wall
                t = result.summary["timings"]
                runs.setdefault(name, []).append(
                    {
                        "num_workers": workers,
                        "writer_threads": writers,
                        "images": result.counts["kept"],
                        "generation_s": t["generation_s"],
                        "model_s": t["model_s"],
                        "loader_wait_s": t["loader_wait_s"],
                        "plan_s": t["plan_s"],
                        "wall_s": round(wall, 3),
                        "loop_images_per_s": t["images_per_s"],
                        "end_to_end_images_per_s": round(result.counts["kept"] / wall, 2),
                    }
                )
                print(f"[{repeat}] synth ({name}): {t['images_per_s']} img/s in the loop", flush=True)
    bare_median = statistics.median(b["images_per_s"] for b in bares)
    medians = {
        name: {
            "loop_images_per_s": statistics.median(r["loop_images_per_s"] for r in rs),
            "end_to_end_images_per_s": statistics.median(r["end_to_end_images_per_s"] for r in rs),
            "share_of_bare": round(statistics.median(r["loop_images_per_s"] for r in rs) / bare_median, 3),
            "num_workers": rs[0]["num_workers"],
            "writer_threads": rs[0]["writer_threads"],
            "images": rs[0]["images"],
            "plan_s": statistics.median(r["plan_s"] for r in rs),
        }
        for name, rs in runs.items()
    }
    report = {
        "what": "augreid synth generation-loop images/s vs bare PG2 forward, same generator and batch size",
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "load_average_1_5_15min": {
            "before": [round(x, 2) for x in load_before],
            "after": [round(x, 2) for x in os.getloadavg()],
        },
        "torch_threads": args.threads,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "data": {"root": str(dataset.root), "fingerprint": dataset.fingerprint(), "train_ids": dataset.num_train_pids},
        "generator": {
            "checkpoint": "fresh " + args.preset if not args.generator else str(checkpoint),
            "parameters": params,
            "image_size": generator.config["image_size"],
            "has_g2": generator.config["has_g2"],
        },
        "batch_size": args.batch_size,
        "num_poses": args.num_poses,
        "max_ids": args.max_ids,
        "seed": args.seed,
        "repeats": args.repeats,
        "bare": {"images_per_s_median": bare_median, "runs": bares},
        "synth": {"median": medians, "runs": runs},
    }
    tag = args.tag or device.type
    out_dir = REPO / "bench" / "results"
    atomic_write_json(out_dir / f"synth_{tag}.json", report)
    lines = [
        f"# synth throughput ({tag})",
        "",
        f"Device {report['device']} ({report['device_name']}, {report['cpu_count']} CPUs, torch threads {args.threads}), "
        f"torch {report['torch']}; generator {report['generator']['checkpoint']} "
        f"({params / 1e6:.2f} M parameters, {'G1+G2' if report['generator']['has_g2'] else 'G1'}), "
        f"batch {args.batch_size}, K={args.num_poses}, data {dataset.root.name} ({report['data']['fingerprint']}), seed {args.seed}.",
        "",
        f"Medians of {args.repeats} interleaved repeats (runs in the JSON).",
        "",
        f"Load average (1 min) {load_before[0]:.1f} before, {os.getloadavg()[0]:.1f} after, on {os.cpu_count()} CPUs: "
        "other jobs shared the machine, so single repeats vary a lot (min-max column).",
        "",
        "| what | images per repeat | images/s (median) | min-max | share of bare |",
        "|---|---|---|---|---|",
        f"| bare `generate` (tensors in memory) | {bares[0]['images']} | {bare_median} | "
        f"{min(b['images_per_s'] for b in bares)}-{max(b['images_per_s'] for b in bares)} | 100% |",
    ]
    for name, r in medians.items():
        lines.append(
            f"| synth loop, {r['num_workers']} loader workers, {r['writer_threads']} writer threads | {r['images']} | "
            f"{r['loop_images_per_s']} | {min(x['loop_images_per_s'] for x in runs[name])}-"
            f"{max(x['loop_images_per_s'] for x in runs[name])} | {r['share_of_bare']:.0%} |"
        )
        lines.append(
            f"| same, whole command (planning {r['plan_s']} s included) | {r['images']} | {r['end_to_end_images_per_s']} | | |"
        )
    lines += [
        "",
        "Produced by `python bench/bench_synth.py " + " ".join(argv if argv is not None else sys.argv[1:]) + "`.",
    ]
    atomic_write_text(out_dir / f"synth_{tag}.md", "\n".join(lines) + "\n")
    print(f"wrote {out_dir / f'synth_{tag}.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
