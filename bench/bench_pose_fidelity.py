"""PCKh (MediaPipe) and mask-SSIM of PG2 checkpoints on held-out pairs, with the baselines.

    OMP_NUM_THREADS=1 python bench/bench_pose_fidelity.py RUN_OR_CHECKPOINT [...] \
        [--data ROOT] [--pairs 200] [--every] [--out bench/results/pg2_pose_curve]

Pairs are eval-gen's held-out pairs (test identities, ``build_pairs`` seed 0).
For each checkpoint: G1 (and the refined output when there is a G2) scored with
``augreid.pose_estimation.pckh.pose_fidelity`` against the target keypoints,
plus mask-SSIM against the real target image. The copy-condition baseline and
the real target images (the ceiling where keypoints are exact) are scored once.
``--every`` scores every checkpoint of a run folder (the training curve).
``--training-weights`` also scores the weights being trained where a checkpoint holds their
average (``train.ema_decay``): the same run, with and without averaging.
"""

from __future__ import annotations

import argparse
import copy
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from augreid.data.sources import resolve_source
from augreid.evaluation.pose_fidelity import exact_keypoints
from augreid.io import atomic_write_json, atomic_write_text
from augreid.pose_estimation.base import EstimatorSpec
from augreid.pose_estimation.pckh import LABEL, pose_fidelity, summary_cells, summary_columns
from generators.pg2.checkpoint import list_checkpoints, load_generator
from generators.common.quality import generate_batch, held_out_pairs, load_pair, score_image


def checkpoints(paths: list[str], every: bool) -> list[Path]:
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and every:
            out += [w for _, w in list_checkpoints(p / "checkpoints" if (p / "checkpoints").is_dir() else p)]
        else:
            out.append(p)
    return out


def training_weights(path: Path, gen):
    """A copy of ``gen`` (loaded from ``path``) with G1's training weights instead of their average; None
    when the checkpoint holds no average."""
    state = torch.load(path.with_suffix(".state.pt"), map_location="cpu", weights_only=False)
    if state.get("g1_training") is None:
        return None
    raw = copy.deepcopy(gen)
    raw.g1.load_state_dict(state["g1_training"])
    return raw


def score_checkpoint(
    path: Path, pairs, records, poses, estimator, batch_size: int = 32, with_training: bool = False
) -> dict:
    gen = load_generator(path, "cpu")
    raw = training_weights(path, gen) if with_training else None
    size = gen.image_size
    items, outputs = [], []
    for start in range(0, len(pairs), batch_size):
        batch = [load_pair(a, b, records, poses, size) for a, b in pairs[start : start + batch_size]]
        items += batch
        out = generate_batch(gen, batch)
        if raw is not None:
            for o, r in zip(out, generate_batch(raw, batch)):
                o.update({f"{k} (training weights)": v for k, v in r.items()})
        outputs += out
    targets = np.stack([it.target_pose for it in items])
    row: dict = {
        "checkpoint": path.name,
        "step": gen.config.get("step"),
        "preset": gen.config.get("preset"),
        "methods": {},
    }
    for method in outputs[0]:
        images = [o[method] for o in outputs]
        fid = pose_fidelity(images, targets, estimator=estimator)["generated"]
        mssim = [
            score_image(it.target_image, im, gen.render_mask(it.target_pose))["mask_ssim"]
            for it, im in zip(items, images)
        ]
        row["methods"][method] = {
            "pckh": fid["pckh"],
            "detection_rate": fid["detection_rate"],
            "pckh_detected": fid.get("pckh_detected"),
            "mask_ssim": round(float(np.mean(mssim)), 4),
        }
    return row, items, gen


def baselines(items, gen, estimator, from_estimator: bool) -> dict:
    targets = np.stack([it.target_pose for it in items])
    fid = pose_fidelity(
        [it.condition_image for it in items],
        targets,
        real_target_images=[it.target_image for it in items],
        estimator=estimator,
        keypoints_from_estimator=from_estimator,
    )
    copy_ssim = [
        score_image(it.target_image, it.condition_image, gen.render_mask(it.target_pose))["mask_ssim"] for it in items
    ]
    return {
        "copy_condition": {**fid["generated"], "mask_ssim": round(float(np.mean(copy_ssim)), 4)},
        "real_target": fid["real_target"],
    }


def _row(cells: list) -> str:
    return "| " + " | ".join(map(str, cells)) + " |"


def markdown(report: dict) -> str:
    b = report["baselines"]
    real, copy = b["real_target"], b["copy_condition"]
    lines = [
        f"# {LABEL} and mask-SSIM of PG2 on held-out pairs",
        "",
        f"Data: {report['dataset']}, {report['pairs']} held-out pairs (test identities). {report['head_size']}.",
        "",
        _row(["images", "step", *summary_columns(), "mask-SSIM ↑"]),
        "|---|---|---|---|---|---|",
        _row([f"real target images ({real['note']})", "-", *summary_cells(real), "1.000"]),
        _row(["copy of the condition image", "-", *summary_cells(copy), f"{copy['mask_ssim']:.3f}"]),
    ]
    for row in report["checkpoints"]:
        for method, m in row["methods"].items():
            lines.append(_row([f"{method} ({row['preset']})", row["step"], *summary_cells(m), f"{m['mask_ssim']:.3f}"]))
    return "\n".join(lines + ["", report.get("notes", ""), ""])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("checkpoints", nargs="+")
    ap.add_argument("--data", default=None)
    ap.add_argument("--pairs", type=int, default=200)
    ap.add_argument("--every", action="store_true")
    ap.add_argument("--out", default=None, help="write OUT.json and OUT.md")
    ap.add_argument("--notes", default="")
    ap.add_argument("--training-weights", action="store_true", help="also score G1's training weights (ema)")
    ap.add_argument("--label", default=None, help="name shown for the checkpoints (default: their preset)")
    args = ap.parse_args()
    started = time.perf_counter()
    source = resolve_source(args.data)
    pairs, records, poses = held_out_pairs(source, pairs_csv=None, max_pairs=args.pairs, seed=0)
    rows, base = [], None
    with EstimatorSpec("mediapipe").build() as estimator:
        for path in checkpoints(args.checkpoints, args.every):
            row, items, gen = score_checkpoint(
                path, pairs, records, poses, estimator, with_training=args.training_weights
            )
            row["preset"] = args.label or row["preset"]
            # Decided from the data, as eval-gen does: only the demo's keypoints are exact; elsewhere
            # (cuhk03-market) they came from MediaPipe and real images score ~1 by construction.
            base = base or baselines(items, gen, estimator, not exact_keypoints(source))
            rows.append(row)
            print(json.dumps(row), flush=True)
    report = {
        "label": LABEL,
        "dataset": "demo" if args.data is None else Path(args.data).name,
        "pairs": len(pairs),
        "head_size": base["real_target"]["head_size"],
        "baselines": base,
        "checkpoints": rows,
        "seconds": round(time.perf_counter() - started, 1),
        "notes": args.notes,
    }
    print(markdown(report))
    if args.out:
        atomic_write_json(Path(args.out + ".json"), report)
        atomic_write_text(Path(args.out + ".md"), markdown(report))


if __name__ == "__main__":
    main()
