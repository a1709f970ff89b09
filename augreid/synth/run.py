"""``augreid synth``: render every training identity in K target poses with a generator.

Reads only the training split (images and the training keypoint CSV); the
query and gallery folders are listed, never opened, and only for the dataset
fingerprint and the camera numbers in use. See ``augreid.synth.output`` for
the folder layout and crash safety, ``augreid.synth.plan`` for naming.

The work is split into fixed batches (``plan.make_batches``). DataLoader
workers decode condition images, the model runs batch after batch (bfloat16
autocast on CUDA), and a thread pool scores and writes the JPEGs of finished
batches while the model runs the next one. The K target pose maps are
rendered once, up front, with the generator's own ``render_pose``.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from PIL import Image

from augreid import __version__
from augreid.data.keypoints import read_keypoints_csv, write_keypoints_csv
from augreid.data.market import TRAIN, load_market, records_fingerprint
from augreid.data.sources import resolve_source
from augreid.errors import AugreidError, ConfigError, DatasetError
from augreid.io import atomic_write_json, sha256_file, sha256_text
from augreid.poses.plot import plot_targets
from augreid.poses.targets import TargetPoses, clustered_targets, file_targets, random_targets
from augreid.runtime import all_gather_objects, barrier, broadcast_error, finish, init_distributed
from augreid.synth import output as outdir
from augreid.synth.config import SynthConfig
from augreid.synth.generate import generate_batches, load_condition, loader_workers
from augreid.synth.plan import Conditions, Job, choose_conditions, jobs_digest, make_batches, make_jobs, shard
from augreid.synth.quality import IdentityScorer, TargetScores, quality_summary
from augreid.synth.sheet import contact_sheet
from generators.base import Generator, describe, find_latest_checkpoint, load_generator


@dataclass
class SynthResult:
    out: Path
    summary: dict  # what synth.json holds

    @property
    def counts(self) -> dict:
        return self.summary["counts"]


# ---------------------------------------------------------------- inputs


def image_shape(path: Path) -> tuple[int, int]:
    """``(H, W)`` of an image, reading only its header."""
    try:
        with Image.open(path) as img:
            return img.size[1], img.size[0]
    except OSError as err:
        raise DatasetError(f"{path}: unreadable image ({err})") from None


def resolve_generator(spec, dataset_fingerprint: str, device):
    """A loaded generator: ``spec`` itself if it is one, else a checkpoint path (any registered
    generator's), else the latest checkpoint trained on this dataset."""
    if isinstance(spec, Generator):
        return spec
    if spec is None:
        spec = find_latest_checkpoint(dataset_fingerprint)
        if spec is None:
            raise ConfigError(
                f"no generator checkpoint trained on this dataset (fingerprint {dataset_fingerprint}) "
                "was found under runs/: train one with `augreid train-gen`, or pass --generator PATH"
            )
    if not isinstance(spec, (str, os.PathLike)):
        raise ConfigError(f"generator must be a checkpoint path or a loaded generator, got {type(spec).__name__}")
    path = Path(spec)
    if not path.exists():
        raise ConfigError(f"generator checkpoint {path} does not exist")
    return load_generator(path, device=str(device))


def check_generator(generator, shape: tuple[int, int], dataset_fingerprint: str, echo: Callable[[str], None]) -> None:
    size = tuple(int(v) for v in generator.image_size)
    if size != tuple(shape):
        where = getattr(generator, "checkpoint_path", "the generator")
        raise ConfigError(
            f"{where} was trained at {size[0]}x{size[1]} (HxW) "
            f"but the dataset images are {shape[0]}x{shape[1]}: use a generator trained at this resolution"
        )
    trained_on = generator.provenance().get("dataset_fingerprint")
    if trained_on and trained_on != dataset_fingerprint:
        echo(
            f"note: the generator was trained on other data (fingerprint {trained_on}, "
            f"this dataset {dataset_fingerprint})"
        )


def check_pose_file(config: SynthConfig, source, dataset) -> None:
    """Refuse test poses as targets: the dataset's test CSV, or rows naming query/gallery images."""
    if config.poses != "file":
        return
    path = Path(_pose_file(config))
    if source.test_keypoints is not None and path.resolve() == Path(source.test_keypoints).resolve():
        raise ConfigError(
            f"--pose-file {path} is the dataset's test keypoint file: test poses must not be used for training data"
        )
    test_names = {r.name for r in dataset.query} | {r.name for r in dataset.gallery}
    leaked = sorted(set(read_keypoints_csv(path)) & test_names)
    if leaked:
        raise ConfigError(
            f"--pose-file {path} holds poses of {len(leaked)} query/gallery images (e.g. {leaked[0]}): "
            "test poses must not be used for training data"
        )


def _pose_file(config: SynthConfig) -> str:
    # SynthConfig checks this when built; a config changed afterwards gets the same message here.
    if not config.pose_file:
        raise ConfigError("pose_file: --poses file needs --pose-file PATH (a keypoint CSV)")
    return config.pose_file


def make_targets(config: SynthConfig, poses: dict, shape: tuple[int, int]) -> TargetPoses:
    if config.poses == "clustered":
        return clustered_targets(
            poses,
            config.num_poses,
            shape,
            seed=config.seed,
            min_cluster_joints=config.min_cluster_joints,
            min_target_joints=config.min_target_joints,
            min_torso_fraction=config.min_torso_fraction,
            missing_penalty=config.missing_penalty,
            n_init=config.kmeans_n_init,
            max_rounds=config.kmeans_max_rounds,
            examples=config.plot_examples,
        )
    if config.poses == "random":
        return random_targets(
            poses, config.num_poses, shape, seed=config.seed, min_target_joints=config.min_target_joints
        )
    return file_targets(_pose_file(config), shape, min_target_joints=config.min_target_joints)


# ---------------------------------------------------------------- generation


# ---------------------------------------------------------------- merge and pictures


def merge_outputs(
    out: Path, jobs: list[Job], targets: TargetPoses, camera: int, generator_hash: str, config: SynthConfig
) -> dict:
    """Rank 0: journals -> manifest.jsonl / rejected.jsonl; returns counts and quality statistics."""
    records = outdir.read_journals(out)
    missing = [job.file for job in jobs if job.file not in records]
    if missing:
        raise AugreidError(
            f"{out}: {len(missing)} planned images were not generated (e.g. {missing[0]}); run synth again to finish"
        )
    kept_rows, rejected_rows = [], []
    removed = {k: 0 for k in config.min_quality}
    for job in jobs:
        record = records[job.file]
        row = {
            "file": f"{outdir.IMAGES}/{job.file}",
            "source": f"{TRAIN}/{job.source}",
            "pid": job.pid,
            "camid": camera,
            "condition_rank": job.rank,
            "target_pose": job.target,
            "target_source": targets.sources[job.target],
            "generator": generator_hash,
            "seed": config.seed,
            "quality": record["quality"],
        }
        if record["kept"]:
            kept_rows.append(row)
        else:
            rejected_rows.append({**row, "failed": record["failed"]})
            for name in record["failed"]:
                removed[name] += 1
    outdir.write_jsonl(out / outdir.MANIFEST, kept_rows)
    if rejected_rows or (out / outdir.REJECTED).exists():
        outdir.write_jsonl(out / outdir.REJECTED, rejected_rows)
    on_disk = {p.name for p in (out / outdir.IMAGES).glob("*.jpg")}
    expected = {Path(r["file"]).name for r in kept_rows}
    quality = quality_summary([records[j.file]["quality"] for j in jobs], config.min_quality)
    return {
        "counts": {
            "planned": len(jobs),
            "kept": len(kept_rows),
            "removed_total": len(rejected_rows),
            "removed_by_filter": removed,
            "images_on_disk": len(on_disk),
            "unexpected_files": sorted(on_disk - expected)[:20],
            "missing_files": sorted(expected - on_disk)[:20],
        },
        "quality": quality,
    }


def write_target_files(out: Path, targets: TargetPoses) -> None:
    atomic_write_json(out / "target_poses.json", targets.summary())
    write_keypoints_csv(
        out / "target_poses.csv", {f"pose{k:03d}_{src}": targets.poses[k] for k, src in enumerate(targets.sources)}
    )
    plot_targets(targets, out / "target_poses.png")


def write_contact_sheet(
    out: Path, conditions: Conditions, jobs: list[Job], real_dir: Path, targets: TargetPoses, shape, rows: int
) -> None:
    by_key = {(j.pid, j.rank, j.target): j.file for j in jobs}
    image_dir = out / outdir.IMAGES
    sheet_rows = []
    for pid in sorted(conditions.by_pid)[:rows]:
        generated: list[Path | None] = [image_dir / by_key[(pid, 0, k)] for k in range(len(targets))]
        sheet_rows.append((real_dir / conditions.by_pid[pid][0], generated))
    contact_sheet(out / "contact_sheet.png", sheet_rows, targets.poses, shape)


# ---------------------------------------------------------------- the command


def synthesize(
    out: str | Path,
    config: SynthConfig | None = None,
    *,
    data: str | Path | None = None,
    train_keypoints: str | Path | None = None,
    generator=None,
    reid_model: str | Path | None = None,
    progress: bool = True,
    echo: Callable[[str], None] = print,
    load_reid: Callable | None = None,
) -> SynthResult:
    """Run (or resume) a synth job; see the module docstring.

    ``load_reid(path, device) -> (model, info)`` loads ``reid_model`` for the identity
    filter (``augreid.reid.load_reid_model``; passed in because re-ID is a layer above synth).

    ``generator``: a checkpoint path, an already loaded generator, or ``None``
    for the latest ``train-gen`` checkpoint of this dataset.
    """
    config = config or SynthConfig()
    dist = init_distributed(config.device)
    try:
        if reid_model is not None and load_reid is None:
            raise ConfigError("synthesize: reid_model needs load_reid (augreid.reid.load_reid_model)")
        return _synthesize(
            Path(out), config, dist, data, train_keypoints, generator, (reid_model, load_reid), progress, echo
        )
    finally:
        finish(dist)


def _synthesize(out, config, dist, data, train_keypoints, generator, reid, progress, echo) -> SynthResult:
    started = time.perf_counter()
    reid_model, load_reid = reid
    say = echo if dist.is_main else (lambda _msg: None)
    if "identity" in config.min_quality and reid_model is None:
        raise ConfigError("--min-quality identity=... needs a re-ID model (--reid-model PATH)")

    source = resolve_source(data, train_keypoints=train_keypoints)
    # Listing the other splits costs nothing and never opens their files: only
    # their names and sizes enter the fingerprint and the camera numbers.
    dataset = load_market(source.root, require_eval_splits=False)
    check_pose_file(config, source, dataset)
    poses = source.train_poses()
    assert source.train_keypoints is not None  # train_poses() raised otherwise
    train_fp = records_fingerprint(dataset.train)
    data_fp = dataset.fingerprint()
    real_dir = dataset.root / TRAIN
    shape = image_shape(dataset.train[0].path)

    gen = resolve_generator(generator, data_fp, dist.device)
    check_generator(gen, shape, data_fp, say)
    generator_hash = str(gen.checkpoint_hash)
    camera = max(r.camid for r in (*dataset.train, *dataset.query, *dataset.gallery)) + 1

    targets = make_targets(config, poses, shape)
    say(targets.describe())
    if len(targets) == 0:
        raise ConfigError(
            f"no target pose is complete enough to render ({targets.skipped} skipped): "
            "lower min_target_joints in a --config file, or use --poses random"
        )
    conditions = choose_conditions(dataset.train, poses, config.per_id, max_ids=config.max_ids)
    if conditions.skipped_pids:
        say(
            f"{len(conditions.skipped_pids)} identities skipped: no image with keypoints "
            f"(e.g. pid {conditions.skipped_pids[0]})"
        )
    if not conditions.by_pid:
        raise DatasetError(f"{source.train_keypoints}: no training identity has an image with keypoints")
    jobs = make_jobs(conditions, len(targets), camera)
    batches = make_batches(jobs, config.batch_size)

    identity = {
        **config.identity_settings(),
        "pose_file_sha256": sha256_file(config.pose_file) if config.pose_file else None,
        "generator": generator_hash,
        "reid_model_sha256": sha256_file(_reid_file(reid_model)) if reid_model else None,
        "train_fingerprint": train_fp,
        "train_keypoints_sha256": sha256_file(source.train_keypoints),
        "target_poses": targets.poses.tolist(),
        "jobs": jobs_digest(jobs),
    }
    run_hash = sha256_text(json.dumps(identity, sort_keys=True, default=str))[:16]

    error = None
    previous = None
    if dist.is_main:
        try:
            previous = outdir.claim_output(out, identity, run_hash)
            outdir.clean_temporaries(out)
            write_target_files(out, targets)
        except AugreidError as err:
            error = str(err)
    error = broadcast_error(dist, error)
    if error:
        raise ConfigError(error)
    barrier(dist)
    if not dist.is_main and (outdir.read_run_json(out) or {}).get("run_hash") != run_hash:
        raise AugreidError(f"rank {dist.rank} planned a different run than rank 0 (non-deterministic planning?)")

    done = outdir.finished_files(out, outdir.read_journals(out))
    mine = [b for b in shard(batches, dist.rank, dist.world) if any(j.file not in done for j in batches[b])]
    if previous is not None:
        say(f"resuming {out}: {len(done)} of {len(jobs)} images already done")
    say(
        f"{len(conditions.by_pid)} identities x {len(targets)} poses, {len(jobs)} images, camera c{camera}, {len(batches)} batches"
    )
    planned_s = time.perf_counter() - started

    target_maps = torch.from_numpy(
        np.stack([np.asarray(gen.render_pose(p), dtype=np.float32) for p in targets.poses])
    ).to(dist.device)
    masks = TargetScores(targets.poses, shape, config)  # pose masks, and MediaPipe for the PCKh filter
    scorer = None
    if reid_model is not None and mine:
        scorer = IdentityScorer.load(reid_model, dist.device, load_reid)
        images_by_pid: dict[int, list] = {}
        for record in dataset.train:
            if record.pid in conditions.by_pid:
                images_by_pid.setdefault(record.pid, []).append(record.path)
        pids_needed = {batches[b][k].pid for b in mine for k in range(len(batches[b]))}
        scorer.add_centroids({p: images_by_pid[p] for p in pids_needed}, lambda p: load_condition(p, shape))
    stats = generate_batches(
        gen,
        batches,
        mine,
        done,
        target_maps,
        masks,
        config,
        dist,
        real_dir,
        out,
        shape,
        scorer,
        progress and dist.is_main,
        poses,  # the training keypoints; every condition image has them (choose_conditions)
    )
    if stats.images:
        os.sync()  # make the images durable before the run can be marked complete
    all_stats = all_gather_objects(dist, dataclasses.asdict(stats))
    barrier(dist)
    if not dist.is_main:
        return SynthResult(out, {"rank": dist.rank, "generation": dataclasses.asdict(stats)})

    merge_start = time.perf_counter()
    merged = merge_outputs(out, jobs, targets, camera, generator_hash, config)
    write_contact_sheet(out, conditions, jobs, real_dir, targets, shape, config.contact_rows)
    generated = sum(s["images"] for s in all_stats)
    gen_seconds = max(s["seconds"] for s in all_stats)
    timings = {
        "plan_s": round(planned_s, 3),
        "generation_s": round(gen_seconds, 3),
        "model_s": round(max(s["model_seconds"] for s in all_stats), 3),
        "loader_wait_s": round(max(s["wait_seconds"] for s in all_stats), 3),
        "merge_s": round(time.perf_counter() - merge_start, 3),
        "total_s": round(time.perf_counter() - started, 3),
        "images_generated_now": generated,
        "images_per_s": round(generated / gen_seconds, 2) if gen_seconds > 0 else None,
        "resumed": previous is not None,
        "already_done_at_start": len(done),
    }
    summary = {
        "status": "complete",
        "run_hash": run_hash,
        "identity": identity,
        "settings": dataclasses.asdict(config),
        "data": {
            "root": str(dataset.root),
            "dataset_fingerprint": data_fp,
            "train_fingerprint": train_fp,
            "train_keypoints": str(source.train_keypoints),
            "image_size": list(shape),
            "train_identities": dataset.num_train_pids,
        },
        "generator": describe(gen),
        "reid_model": None
        if reid_model is None
        else {"path": str(reid_model), "sha256": identity["reid_model_sha256"]},
        "targets": {k: v for k, v in targets.summary().items() if k != "keypoints"},
        "camera": camera,
        "counts": {
            "identities": len(conditions.by_pid),
            "identities_skipped_no_keypoints": len(conditions.skipped_pids),
            "skipped_pids": conditions.skipped_pids,
            "condition_images": conditions.count,
            "target_poses": len(targets),
            "target_poses_skipped_too_incomplete": targets.skipped,
            **merged["counts"],
        },
        "quality": merged["quality"],
        "timings": timings,
        "history": [*((previous or {}).get("history") or []), timings],  # one entry per completed invocation
        "runtime": {
            "device": str(dist.device),
            "world_size": dist.world,
            "loader_workers": loader_workers(config.num_workers, dist.device),
            "augreid": __version__,
            "torch": torch.__version__,
        },
    }
    atomic_write_json(out / outdir.RUN_JSON, summary)
    removed = merged["counts"]["removed_by_filter"]
    if merged["counts"]["kept"] == 0:
        say(f"warning: --min-quality removed all {len(jobs)} images; see rejected.jsonl for their scores")
    say(
        f"{merged['counts']['kept']} images kept in {out / outdir.IMAGES}"
        + (f"; removed by filter: {', '.join(f'{k}={v}' for k, v in removed.items())}" if removed else "")
    )
    return SynthResult(out, summary)


def _reid_file(path) -> Path:
    """The checkpoint file of a re-ID run folder (``RUN/checkpoint.pth``) or the file itself."""
    path = Path(path).expanduser()
    path = path / "checkpoint.pth" if path.is_dir() else path
    if not path.is_file():
        raise ConfigError(f"--reid-model {path}: re-ID checkpoint not found (pass a run folder or a .pth file)")
    return path
