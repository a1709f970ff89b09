"""Deformable GAN benchmark: train the ``cpu`` preset (resumably), then score it beside ``warp`` and the copy.

Usage (from the repository root, venv active)::

    python bench/bench_deformable.py                                 # ../shared/data/cuhk03-market, preset cpu
    python bench/bench_deformable.py --minutes 20                    # stop training after 20 min; run again to go on
    python bench/bench_deformable.py --reid-model runs/some-reid-run # judge identity with an existing re-ID model
    python bench/bench_deformable.py --data demo --preset tiny --judge-epochs 1 --max-pairs 8 --results /tmp/b

Steps, each resumable (run the same command again after an interruption):

1. train-gen ``deformable`` with the preset on the training split, in
   ``runs/bench-deformable/<dataset fingerprint>/deformable-<preset>``. With
   ``--minutes`` the training stops with a checkpoint and the script ends; the
   next call continues it. Training time is summed over the calls.
2. the identity judge: ``--reid-model``, or a re-ID model (ImageNet MobileNetV2 +
   BoT, real training images only, ``--judge-seed``) trained here. The generator
   never sees it (it has no identity term), so it is an independent judge.
3. eval-gen (``augreid.evaluation.generator_eval``) of the deformable checkpoint
   and of ``warp`` on the same held-out pairs of test identities: pixel scores,
   PCKh (MediaPipe) and detection rate, FID-MNv2, identity retention; the
   copy-condition baseline comes with every eval-gen report.

Writes ``<results>/<name>.json`` (keys ``identity_rank1``, ``identity_judge``,
``pckh``, ``detected``, ``fid_mnv2``, ``mask_ssim``, ``masked_l1``,
``train_minutes``, ``iterations``, ``params``, and ``warp`` / ``copy`` with the
same figures), ``<name>.md`` (the table and the provenance) and
``<name>_curve.png`` (training loss). On the demo it also copies eval-gen's
contact sheet; images of real datasets stay in ``runs/``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from augreid.io import atomic_write_json, atomic_write_text  # noqa: E402
from augreid.tomlfile import parse_override  # noqa: E402

DEFAULT_DATA = REPO.parent / "shared" / "data" / "cuhk03-market"
FIGURES = ("identity_rank1", "pckh", "detected", "fid_mnv2", "mask_ssim", "masked_l1")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", default=str(DEFAULT_DATA), help="dataset root, or 'demo' (default: %(default)s)")
    p.add_argument("--preset", default="cpu", help="deformable preset (default: %(default)s)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="preset override, repeatable")
    p.add_argument("--minutes", type=float, default=None, help="stop training after this many minutes (resumable)")
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (default: %(default)s)")
    p.add_argument("--runs", default=str(REPO / "runs" / "bench-deformable"), help="run folders (default: %(default)s)")
    p.add_argument("--reid-model", default=None, help="re-ID run folder that judges identity (default: train one)")
    p.add_argument("--judge-seed", type=int, default=1, help="seed of the judge trained here (default: %(default)s)")
    p.add_argument("--judge-epochs", type=int, default=20, help="epochs of 100 steps of that judge (default: 20)")
    p.add_argument("--max-pairs", type=int, default=300, help="held-out pairs scored (default: %(default)s)")
    p.add_argument("--identity-queries", type=int, default=500, help="identity-retention queries (default: 500)")
    p.add_argument("--results", default=str(REPO / "bench" / "results"), help="where the results go")
    p.add_argument("--name", default=None, help="results file stem (default: deformable_<dataset folder name>)")
    p.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    return p.parse_args(argv)


def dataset_root(text: str) -> Path | None:
    """``None`` for the demo; the root otherwise, or a clean exit when it is absent."""
    if text == "demo":
        return None
    root = Path(text).expanduser()
    if not root.is_dir():
        sys.exit(f"bench_deformable: dataset {root} is absent (give --data ROOT, or --data demo for the demo dataset)")
    return root


# ---------------------------------------------------------------- training


def train(args: argparse.Namespace, root: Path | None, run_root: Path) -> tuple[Any, Path, dict[str, Any]]:
    """Train (or resume) the deformable generator; returns (result, run dir, session log)."""
    from generators.deformable.config import load_preset
    from generators.deformable.plugin import default_run_dir, prepare_data, train_generator

    cfg = load_preset(args.preset, dict(parse_override(s) for s in args.set))
    data = prepare_data(cfg, root, progress=True)
    run_dir = default_run_dir(data.fingerprint, cfg.name, run_root)
    sessions_path = run_dir / "bench_sessions.json"
    sessions = json.loads(sessions_path.read_text()) if sessions_path.is_file() else {"sessions": []}
    started = time.monotonic()
    result = train_generator(
        cfg,
        root,
        out=run_dir,
        data=data,
        device=args.device,
        time_limit=args.minutes * 60 if args.minutes else None,
        progress=True,
    )
    seconds = time.monotonic() - started
    if result.history:  # this call trained: count it
        sessions["sessions"].append(
            {
                "seconds": round(seconds, 1),
                "to_step": result.step,
                "threads": torch.get_num_threads(),
                "load_average_1_5_15": list(os.getloadavg()),
                "date": time.strftime("%Y-%m-%d %H:%M:%S"),
            }
        )
        atomic_write_json(sessions_path, sessions)
    return result, run_dir, sessions


def judge(args: argparse.Namespace, root: Path | None, run_root: Path) -> tuple[Path, str]:
    """The identity judge's run folder and a description of it (trained here unless given)."""
    if args.reid_model:
        path = Path(args.reid_model)
        return path, f"given re-ID model {path} (not used in the generator's training)"
    from augreid.evaluation import evaluate_rank
    from augreid.reid.config import ReidConfig
    from augreid.reid.train import train_reid

    demo = root is None
    config = ReidConfig(
        data=None if demo else str(root),
        model="mobilenetv2_x1_0",
        method="bot",
        pretrained="auto",
        epochs=args.judge_epochs,
        iters_per_epoch=5 if demo else 100,
        warmup_epochs=0 if args.judge_epochs < 3 else 2,
        stepsize=[] if args.judge_epochs < 3 else [max(3, int(args.judge_epochs * 0.6)), int(args.judge_epochs * 0.85)],
        batch_size=32,
        height=128,
        width=64,
        seed=args.judge_seed,
        device=args.device,
        workers=0,
    )
    out = run_root / f"judge-reid-s{args.judge_seed}-e{args.judge_epochs}"
    train_reid(config, out, progress=True, evaluate_rank=evaluate_rank)
    description = (
        f"ImageNet MobileNetV2 + BoT trained here on the real training images only, seed {args.judge_seed}, "
        f"{args.judge_epochs} x {config.iters_per_epoch} steps ({out}); the generator has no identity term, "
        "so the judge is independent of it"
    )
    return out, description


# ---------------------------------------------------------------- scoring


def score(checkpoint: Path, root: Path | None, out: Path, reid_model: Path, args: argparse.Namespace) -> dict:
    """eval-gen's full report (augreid.evaluation.generator_eval), kept from an earlier call when present."""
    from augreid.evaluation.generator_eval import evaluate_generator

    metrics = out / "metrics.json"
    if metrics.is_file():
        report = json.loads(metrics.read_text())
        if report.get("checkpoint") == str(checkpoint) and report.get("pairs"):
            return report
    return evaluate_generator(
        checkpoint,
        root,
        out=out,
        max_pairs=args.max_pairs,
        batch_size=16,
        device=args.device,
        seed=0,
        reid_model=reid_model,
        identity_max_queries=args.identity_queries,
        progress=True,
    )


def figures(report: dict[str, Any], method: str) -> dict[str, float | None]:
    """The benchmark's figures of one method of an eval-gen report (``None`` where a section was skipped)."""

    def dig(*keys: str) -> float | None:
        value: Any = report
        for key in keys:
            if not isinstance(value, dict) or key not in value:
                return None
            value = value[key]
        return None if value is None else float(value)

    return {
        "identity_rank1": dig("identity", "methods", method, "rank1"),
        "pckh": dig("pose_fidelity", "methods", method, "pckh"),
        "detected": dig("pose_fidelity", "methods", method, "detection_rate"),
        "fid_mnv2": dig("realism", "methods", method, "fid_mnv2"),
        "mask_ssim": dig("methods", method, "mask_ssim", "mean"),
        "masked_l1": dig("methods", method, "masked_l1", "mean"),
    }


def loss_curve(run_dir: Path) -> list[tuple[int, float]]:
    """``(step, train/loss)`` from the run's TensorBoard events (every session's)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(run_dir / "tensorboard"), size_guidance={"scalars": 0})
    acc.Reload()
    if "train/loss" not in acc.Tags().get("scalars", []):
        return []
    return sorted({e.step: float(e.value) for e in acc.Scalars("train/loss")}.items())


def plot_curve(curve: list[tuple[int, float]], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.2))
    if curve:
        steps, values = zip(*curve)
        ax.plot(steps, values, linewidth=0.8)
    ax.set_xlabel("iteration")
    ax.set_ylabel("training loss (NN + self-reconstruction)")
    ax.set_title(title, fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def cell(value: float | None, percent: bool = False, digits: int = 3) -> str:
    if value is None:
        return "–"
    return f"{100 * value:.1f} %" if percent else f"{value:.{digits}f}"


def markdown(result: dict[str, Any], context: dict[str, Any]) -> str:
    rows = [("deformable", result), ("warp", result["warp"]), ("copy condition", result["copy"])]
    lines = [
        f"# Deformable GAN on {context['dataset']}",
        "",
        f"`bench/bench_deformable.py`, preset `{context['preset']}`: {result['iterations']} iterations in "
        f"{result['train_minutes']:.1f} minutes ({context['threads']} torch threads, {context['device']}), "
        f"{result['params']:,} generator parameters. {context['pairs']} held-out pairs of test identities "
        f"(eval-gen, seed 0); identity retention on {context['identity_queries']} training pairs, judged by "
        f"{result['identity_judge']}. FID-MNv2 floor (real vs real): {cell(context.get('fid_floor'), digits=1)}.",
        "",
        "| method | identity rank-1 ↑ | PCKh (MediaPipe) ↑ | person detected ↑ | FID-MNv2 ↓ | mask-SSIM ↑ | masked L1 ↓ |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, f in rows:
        lines.append(
            f"| {name} | {cell(f['identity_rank1'], True)} | {cell(f['pckh'])} | {cell(f['detected'], True)} | "
            f"{cell(f['fid_mnv2'], digits=1)} | {cell(f['mask_ssim'])} | {cell(f['masked_l1'])} |"
        )
    lines += [
        "",
        f"Checkpoint `{context['checkpoint']}` (sha256 {context['checkpoint_sha256'][:12]}), dataset fingerprint "
        f"{context['fingerprint']}; eval-gen reports in `{context['eval_dirs']}`. Training sessions: "
        f"{json.dumps(context['sessions'])}.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    root = dataset_root(args.data)
    torch.set_num_threads(args.threads)
    run_root = Path(args.runs)
    result, run_dir, sessions = train(args, root, run_root)
    if not result.finished:
        print(f"training stopped at step {result.step}/{result.total_steps}; run the same command again to continue")
        return 0
    from generators.base import generator_plugin, load_generator

    fingerprint = run_dir.parent.name
    reid_model, judge_text = judge(args, root, run_root / fingerprint)
    warp_run = generator_plugin("warp").train("default", {}, root, out=run_root / fingerprint / "warp")
    eval_root = run_dir / f"bench-eval-{args.max_pairs}"
    deformable_report = score(result.checkpoint, root, eval_root / "deformable", reid_model, args)
    warp_report = score(warp_run.checkpoint, root, eval_root / "warp", reid_model, args)
    generator = load_generator(result.checkpoint)
    params = int(sum(p.numel() for p in generator.parameters()))
    seconds = sum(s["seconds"] for s in sessions["sessions"])
    out: dict[str, Any] = {
        **figures(deformable_report, "deformable"),
        "identity_judge": judge_text,
        "train_minutes": round(seconds / 60, 2),
        "iterations": int(result.step),
        "params": params,
        "warp": {**figures(warp_report, "warp"), "train_minutes": 0.0, "iterations": 0, "params": 0},
        "copy": figures(deformable_report, "copy condition"),
    }
    out = {
        k: out[k]
        for k in (*FIGURES[:1], "identity_judge", *FIGURES[1:], "train_minutes", "iterations", "params", "warp", "copy")
    }
    name = args.name or f"deformable_{'demo' if root is None else root.name}"
    results = Path(args.results)
    context = {
        "dataset": "the demo dataset" if root is None else root.name,
        "preset": generator.provenance().get("preset"),
        "threads": args.threads,
        "device": args.device,
        "pairs": deformable_report.get("pairs"),
        "identity_queries": args.identity_queries,
        "fid_floor": (deformable_report.get("realism") or {}).get("floor_real_vs_real", {}).get("fid_mnv2"),
        "checkpoint": str(result.checkpoint),
        "checkpoint_sha256": generator.checkpoint_hash,
        "fingerprint": fingerprint,
        "eval_dirs": str(eval_root),
        "sessions": sessions["sessions"],
    }
    atomic_write_json(results / f"{name}.json", out)
    atomic_write_text(results / f"{name}.md", markdown(out, context))
    plot_curve(
        loss_curve(run_dir),
        results / f"{name}_curve.png",
        f"Deformable GAN ({context['preset']}) on {context['dataset']}",
    )
    if root is None:  # demo images may be committed; real datasets' may not
        shutil.copyfile(eval_root / "deformable" / "contact_sheet.png", results / f"{name}_contact_sheet.png")
    print(f"wrote {results / name}.json / .md / _curve.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
