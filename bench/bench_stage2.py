"""DCGAN stage II (PG2) vs pix2pixHD-style stage II, same G1, same data, same steps.

For each dataset (the demo; ``../shared/data/cuhk03-market`` when present,
skipped otherwise): train G1 once (``cpu-small`` with no stage II), copy that
run and resume it twice, with ``cpu-small``'s DCGAN stage II and with
``cpu-small-hd``'s multi-scale one, for the same number of steps on the same
batches (the batch order is a function of the step). Then eval-gen each:
mask-SSIM and the other pixel scores, realism (FID-MNv2, KID; not comparable
with Inception FID), identity retention when a re-ID model is given, and
PCKh (MediaPipe) when ``augreid.pose_estimation.pckh`` and MediaPipe exist.

    OMP_NUM_THREADS=1 python bench/bench_stage2.py --measure          # seconds per step, then exit
    OMP_NUM_THREADS=1 python bench/bench_stage2.py [--reid-model-demo RUN] [--reid-model-cuhk03 RUN]

Writes bench/results/stage2_compare.{json,md} (updated after every dataset) and
bench/results/stage2_demo_contact_sheet.png (demo images only, never cuhk03's).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402

VARIANTS = {"dcgan": "cpu-small", "pix2pixhd": "cpu-small-hd"}
CUHK03 = ROOT.parent / "shared" / "data" / "cuhk03-market"
RESULTS = ROOT / "bench" / "results"


def overrides(args, stage2: int) -> dict[str, Any]:
    return {
        "train.stage1_steps": args.stage1_steps,
        "train.stage2_steps": stage2,
        "log.image_every": 10**9,
        "log.checkpoint_every": 10**9,
        "log.log_every": 25,
    }


def measure(args) -> dict[str, float]:
    """Seconds per step of G1 and of each stage II on the demo, with this machine's load."""
    from generators.pg2 import load_preset
    from generators.pg2.train import prepare_data, train_generator

    work = Path(args.work) / "measure"
    shutil.rmtree(work, ignore_errors=True)
    steps = 10
    g1_cfg = load_preset("cpu-small", {**overrides(args, 0), "train.stage1_steps": steps})
    data = prepare_data(g1_cfg, None, progress=False)
    tick = time.perf_counter()
    train_generator(g1_cfg, None, out=work / "g1", data=data, progress=False)
    seconds = {"g1": (time.perf_counter() - tick) / steps}
    for name, preset in VARIANTS.items():
        shutil.copytree(work / "g1", work / name)
        cfg = load_preset(preset, {**overrides(args, steps), "train.stage1_steps": steps})
        tick = time.perf_counter()
        train_generator(cfg, None, out=work / name, data=data, progress=False)
        seconds[name] = (time.perf_counter() - tick) / steps
    return {k: round(v, 3) for k, v in seconds.items()}


def pckh_hook(source, size):
    """PCKh (MediaPipe) of every method's images against the pairs' target poses, or the reason it cannot run."""

    def more(images: dict[str, np.ndarray], report: dict[str, Any]):
        try:
            from augreid.pose_estimation import pckh
            from augreid.pose_estimation.base import estimator_class

            estimator_class("mediapipe").check_available()
        except Exception as err:  # noqa: BLE001  (a missing module or extra: the column is skipped, with why)
            return {"pckh": {"skipped": f"{type(err).__name__}: {err}"}}, []
        from augreid.data.pose import scale_pose
        from augreid.evaluation.generator_eval import image_size

        poses = source.test_poses()
        records = {**source.load().by_name("query"), **source.load().by_name("bounding_box_test")}
        targets = np.stack(
            [
                scale_pose(poses[row["target"]], image_size(records[row["target"]].path), size)
                for row in report["per_pair"]
            ]
        )
        estimator = pckh.default_estimator()
        try:
            section = {m: pckh.pckh_of_images(list(batch), targets, estimator).summary() for m, batch in images.items()}
        finally:
            estimator.close()
        lines = [f"{pckh.LABEL}: " + ", ".join(f"{m} {v['pckh']}" for m, v in section.items())]
        return {"pckh": {"label": pckh.LABEL, "methods": section}}, lines

    return more


def train_variants(args, name: str, root: Path | None, work: Path) -> dict[str, Any]:
    from generators.pg2 import load_preset
    from generators.pg2.train import prepare_data, train_generator

    g1_cfg = load_preset("cpu-small", overrides(args, 0))
    data = prepare_data(g1_cfg, root, progress=False)
    tick = time.perf_counter()
    g1 = train_generator(g1_cfg, root, out=work / "g1", data=data, progress=False)
    # None: the run was already finished (a re-evaluation); main() keeps the seconds measured when it trained.
    runs: dict[str, Any] = {
        "g1_seconds": round(time.perf_counter() - tick, 1) if g1.history else None,
        "pairs": int(len(data.pairs)),
    }
    for variant, preset in VARIANTS.items():
        folder = work / variant
        if not folder.exists():
            shutil.copytree(g1.run_dir, folder)
        tick = time.perf_counter()
        result = train_generator(
            load_preset(preset, overrides(args, args.stage2_steps)), root, out=folder, data=data, progress=False
        )
        last = [h for h in result.history if "stage2/d_loss" in h][-1:] or [{}]  # empty on a re-evaluation
        runs[variant] = {
            "checkpoint": result.checkpoint,
            "stage2_seconds": round(time.perf_counter() - tick, 1) if result.history else None,
            "last_losses": {k: round(v, 4) for k, v in last[0].items() if k.startswith("stage2/")},
        }
    return runs


def carry_timings(runs: dict[str, Any], before: dict[str, Any]) -> None:
    """Runs that were already trained keep the seconds and losses measured when they trained."""
    if runs["g1_seconds"] is None:
        runs["g1_seconds"] = before.get("g1_seconds")
    for variant in VARIANTS:
        if runs[variant]["stage2_seconds"] is None:
            runs[variant]["stage2_seconds"] = (before.get(variant) or {}).get("stage2_seconds")
            runs[variant]["last_losses"] = (before.get(variant) or {}).get("last_losses", {})


def evaluate(args, name: str, root: Path | None, runs: dict[str, Any], work: Path) -> dict[str, Any]:
    from augreid.data.sources import resolve_source
    from augreid.evaluation.generator_eval import evaluate_generator

    reid = getattr(args, f"reid_model_{name}")
    source = resolve_source(root)
    out: dict[str, Any] = {}
    for variant in VARIANTS:
        report = evaluate_generator(
            runs[variant]["checkpoint"],
            root,
            out=work / f"eval-{variant}",
            max_pairs=args.eval_pairs,
            progress=False,
            reid_model=reid,
            more=pckh_hook(source, (128, 64)),
        )
        out[variant] = {k: report.get(k) for k in ("methods", "realism", "identity", "pckh")}
        out[variant]["pairs"] = report["pairs"]
        out[variant]["dataset_fingerprint"] = report["dataset_fingerprint"]
    return out


def table(name: str, res: dict[str, Any]) -> list[str]:
    """One row per (variant, output) and per baseline; a column only when some row has it."""
    rows = []
    order = [
        ("dcgan", "G1", "G1 (shared)"),
        *((v, "refined", f"{v} refined") for v in VARIANTS),
        ("dcgan", "copy condition", "copy condition"),
        ("dcgan", "mean training image", "mean training image"),
    ]
    for variant, method, label in order:
        ev = res["eval"][variant]
        cells = {
            "mask-SSIM ↑": f"{ev['methods'][method]['mask_ssim']['mean']:.4f}",
            "SSIM ↑": f"{ev['methods'][method]['ssim']['mean']:.4f}",
        }
        realism = ev.get("realism") or {}
        if "methods" in realism:
            r = realism["methods"][method]
            cells["FID-MNv2 ↓"] = f"{r['fid_mnv2']:.2f}"
            cells["KID x1000 ↓"] = f"{1000 * r['kid']:.2f}"
        ident = ev.get("identity") or {}
        if "methods" in ident:
            cells["id rank-1 % ↑"] = f"{100 * ident['methods'][method]['rank1']:.1f}"
            cells["id mAP % ↑"] = f"{100 * ident['methods'][method]['mAP']:.1f}"
        pck = ev.get("pckh") or {}
        if "methods" in pck:
            cells["PCKh (MediaPipe) ↑"] = f"{pck['methods'][method]['pckh']}"
        rows.append((label, cells))
    columns = list(dict.fromkeys(c for _, cells in rows for c in cells))
    floor = (res["eval"]["dcgan"].get("realism") or {}).get("floor_real_vs_real")
    lines = [
        f"### {name}",
        "",
        f"{res['eval']['dcgan']['pairs']} held-out pairs; stage I {res['train']['g1_seconds']} s; "
        + "; ".join(f"{v} stage II {res['train'][v]['stage2_seconds']} s" for v in VARIANTS)
        + ".",
        "",
        "| method | " + " | ".join(columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    lines += [f"| {label} | " + " | ".join(cells.get(c, "-") for c in columns) + " |" for label, cells in rows]
    if floor:
        lines.append(
            "| real vs real (floor) | "
            + " | ".join(
                f"{floor['fid_mnv2']:.2f}"
                if c.startswith("FID")
                else f"{1000 * floor['kid']:.2f}"
                if c.startswith("KID")
                else "-"
                for c in columns
            )
            + " |"
        )
    skipped = {k: (res["eval"]["dcgan"].get(k) or {}).get("skipped") for k in ("realism", "pckh")}
    lines += ["", *(f"{k} skipped: {v}" for k, v in skipped.items() if v)]
    if not res["eval"]["dcgan"].get("identity"):
        lines.append("identity retention skipped: no re-ID checkpoint given for this dataset")
    return lines + [""]


def write(results: dict[str, Any], args, seconds: dict[str, float] | None) -> None:
    from augreid.evaluation.realism import DISCLAIMER

    clean = json.loads(json.dumps(results, default=str))
    for res in clean["datasets"].values():
        for variant in VARIANTS:
            res["train"][variant]["checkpoint"] = Path(res["train"][variant]["checkpoint"]).name  # no machine paths
            ident = res["eval"][variant].get("identity") or {}
            if ident.get("reid_checkpoint"):
                ident["reid_checkpoint"] = Path(ident["reid_checkpoint"]).name
    atomic_write_json(RESULTS / "stage2_compare.json", clean)
    md = [
        "# Stage II: DCGAN (PG2) vs pix2pixHD-style, same G1, data and steps",
        "",
        f"G1: `cpu-small`, {args.stage1_steps} steps, trained once per dataset; then {args.stage2_steps} stage-II "
        "steps each, resumed from that G1 on the same batches: `cpu-small` (DCGAN D, BCE) and `cpu-small-hd` "
        "(3 PatchGANs at scales 1, 1/2, 1/4, LSGAN, feature matching 10). Masked L1 weight 10 in both. "
        f"One CPU thread (OMP_NUM_THREADS=1) on a shared 2-core machine. **{DISCLAIMER}.**",
        "",
    ]
    if seconds:
        md += [f"Measured seconds per step (demo, this machine): {seconds}.", ""]
    for name, res in clean["datasets"].items():
        md += table(name, res)
    md += [f"{k}: {v}" for k, v in clean.get("skipped", {}).items()]
    atomic_write_text(RESULTS / "stage2_compare.md", "\n".join(md) + "\n")


def contact_sheet(runs: dict[str, Any], pairs: int = 8) -> None:
    """The same held-out demo pairs through both variants: condition | pose | G1 | DCGAN | pix2pixHD | target
    (procedural demo images only, never cuhk03's)."""
    import io

    from PIL import Image, ImageDraw

    from augreid.data import pose_maps
    from augreid.data.sources import resolve_source
    from generators.base import load_generator, to_tensor_image
    from generators.common.preview import grid_rows, pose_image, to_png_bytes
    from generators.common.quality import generate_batch, held_out_pairs, load_pair

    gens = {v: load_generator(runs[v]["checkpoint"]) for v in VARIANTS}
    size = tuple(gens["dcgan"].image_size)
    names, records, poses = held_out_pairs(resolve_source(None), pairs_csv=None, max_pairs=pairs, seed=1)
    batch = [load_pair(a, b, records, poses, size) for a, b in names]
    outputs = {v: generate_batch(g, batch) for v, g in gens.items()}
    columns = [
        [to_tensor_image(p.condition_image) for p in batch],
        [pose_image(torch.from_numpy(pose_maps(p.target_pose, size, radius=4))[None])[0] for p in batch],
        [to_tensor_image(o["G1"]) for o in outputs["dcgan"]],
        *([to_tensor_image(o["refined"]) for o in outputs[v]] for v in VARIANTS),
        [to_tensor_image(p.target_image) for p in batch],
    ]
    sheet = Image.open(io.BytesIO(to_png_bytes(grid_rows([torch.stack(c) for c in columns])))).convert("RGB")
    labelled = Image.new("RGB", (sheet.width, sheet.height + 16), "white")
    labelled.paste(sheet, (0, 16))
    ImageDraw.Draw(labelled).text((2, 2), "condition | pose | G1 | DCGAN II | pix2pixHD II | target", fill="black")
    labelled.save(RESULTS / "stage2_demo_contact_sheet.png")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--stage1-steps", type=int, default=800)
    parser.add_argument("--stage2-steps", type=int, default=500)
    parser.add_argument("--eval-pairs", type=int, default=200)
    parser.add_argument("--reid-model-demo", type=Path, default=None)
    parser.add_argument("--reid-model-cuhk03", type=Path, default=None)
    parser.add_argument("--work", default="runs/bench-stage2")
    parser.add_argument("--only", choices=["demo", "cuhk03"], default=None, help="one dataset only")
    parser.add_argument("--measure", action="store_true", help="print seconds per step and exit")
    parser.add_argument("--seconds", type=str, default=None, help="measured seconds per step (JSON) to record")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.measure:
        print(json.dumps(measure(args)))
        return
    results: dict[str, Any] = {
        "stage1_steps": args.stage1_steps,
        "stage2_steps": args.stage2_steps,
        "variants": VARIANTS,
        "datasets": {},
        "skipped": {},
    }
    previous = RESULTS / "stage2_compare.json"
    earlier: dict[str, Any] = {}
    if args.only and previous.is_file():  # keep the other dataset's finished results
        kept = json.loads(previous.read_text())
        if (kept.get("stage1_steps"), kept.get("stage2_steps")) == (args.stage1_steps, args.stage2_steps):
            earlier = kept.get("datasets", {})
            results["datasets"] = {k: v for k, v in earlier.items() if k != args.only}
    datasets = {"demo": None, "cuhk03": CUHK03}
    for name, root in datasets.items():
        if args.only and name != args.only:
            continue
        if root is not None and not root.is_dir():
            results["skipped"][name] = "../shared/data/cuhk03-market is absent"
            continue
        work = Path(args.work) / name
        runs = train_variants(args, name, root, work)
        carry_timings(runs, (earlier.get(name) or {}).get("train") or {})
        results["datasets"][name] = {"train": runs, "eval": evaluate(args, name, root, runs, work)}
        write(results, args, json.loads(args.seconds) if args.seconds else None)
        if name == "demo":
            contact_sheet(runs)
        print(f"{name} done", flush=True)


if __name__ == "__main__":
    main()
