"""Generator commands: ``train-gen``, ``eval-gen``, ``synth``, ``synth-copy``."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from augreid import settings
from augreid.cli.common import DatasetOpt, app, config_option, defaults_from, set_option, user_errors
from augreid.errors import ConfigError


@app.command("train-gen")
@user_errors
def train_gen_cmd(
    data: Optional[Path] = DatasetOpt,
    generator: str = typer.Option("pg2", "--generator", help="Registered generator to train (generators/base.py)."),
    preset: Optional[str] = typer.Option(
        None,
        help="Preset name or a .toml file (default: the generator's default preset; pg2's presets are in generators/pg2/presets/).",
    ),
    config: Optional[Path] = config_option(
        " in the generator's layout (e.g. [train] stage1_steps = 500), over the preset"
    ),
    set_: Optional[list[str]] = set_option("train.stage1_steps=500 (dotted: section.key)"),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Run folder (default: runs/train-gen/<dataset fingerprint>/<preset>/)."
    ),
    pairs: Optional[Path] = typer.Option(
        None, help="from,to pairs CSV of training images (default: build all same-identity pairs)."
    ),
    train_keypoints: Optional[Path] = typer.Option(
        None, help="Training keypoint CSV (default: found beside the data)."
    ),
    device: str = typer.Option(
        "auto", help="auto, cpu, cuda or cuda:N. Multi-GPU: torchrun --nproc_per_node N -m augreid.cli train-gen ..."
    ),
    resume: bool = typer.Option(True, help="Continue from the latest checkpoint in the run folder."),
    max_minutes: Optional[float] = typer.Option(
        None, help="Stop with a checkpoint after this many minutes; run again to continue."
    ),
    stop_at: Optional[int] = typer.Option(
        None, help="Stop with a checkpoint after this global step; run again to continue."
    ),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Train a generator (default PG2: G1, then G2 + discriminator) on a Market-layout dataset with keypoints (default: the demo dataset)."""
    import torch

    from generators.base import generator_plugin

    plugin = generator_plugin(generator)
    if plugin.train is None:
        raise ConfigError(f"generator {generator!r} cannot be trained with train-gen")
    # The plug-in loads its own settings (preset, then these overrides) through augreid.settings.
    overrides = settings.flatten(settings.file_layer(config).values) if config is not None else {}
    overrides.update(settings.parse_sets(set_ or []))
    if threads:
        torch.set_num_threads(threads)
    result = plugin.train(
        preset or plugin.default_preset,
        overrides,
        data,
        out=out,
        pairs_csv=pairs,
        train_keypoints=train_keypoints,
        device=device,
        resume=resume,
        stop_at=stop_at,
        time_limit=max_minutes * 60 if max_minutes else None,
        progress=not quiet,
    )
    state = "finished" if result.finished else "stopped early (run the same command again to resume)"
    typer.echo(f"{state} at step {result.step}/{result.total_steps}")
    typer.echo(f"run folder: {result.run_dir}")
    if result.checkpoint is not None:
        typer.echo(f"checkpoint: {result.checkpoint}")


@app.command("eval-gen", cls=defaults_from("augreid.evaluation.options:GeneratorEvalOptions"))
@user_errors
def eval_gen_cmd(
    checkpoint: Optional[Path] = typer.Argument(
        None,
        help="Generator checkpoint (any registered generator's) or run folder (default: latest train-gen checkpoint of this dataset under runs/).",
    ),
    data: Optional[Path] = DatasetOpt,
    pairs: Optional[Path] = typer.Option(
        None,
        help="from,to pairs CSV of query/gallery images, e.g. market-pairs-test.csv (default: build pairs of test identities).",
    ),
    test_keypoints: Optional[Path] = typer.Option(
        None, help="Query+gallery keypoint CSV (default: found beside the data)."
    ),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="Output folder (default: <run folder>/eval-<checkpoint>-<dataset fingerprint>/)."
    ),
    config: Optional[Path] = config_option(
        " (the keys of GeneratorEvalOptions, at top level or in an [eval_gen] table)"
    ),
    set_: Optional[list[str]] = set_option("max_pairs=100"),
    max_pairs: Optional[int] = typer.Option(
        None, help="Score at most this many pairs (a seeded random subset); 0 = all."
    ),
    batch_size: Optional[int] = typer.Option(None, help="Pairs per generator batch."),
    device: Optional[str] = typer.Option(None, help="cpu, cuda or cuda:N."),
    seed: Optional[int] = typer.Option(None, help="Seed of the pair subset."),
    examples: Optional[int] = typer.Option(None, help="Hardest and easiest pairs on the contact sheet (each)."),
    realism: Optional[bool] = typer.Option(
        None,
        "--realism/--no-realism",
        help="FID-MNv2 and KID on offline ImageNet MobileNetV2 features (not comparable with Inception FID).",
    ),
    pose_fidelity: Optional[bool] = typer.Option(
        None,
        "--pose-fidelity/--no-pose-fidelity",
        help="PCKh (MediaPipe) and the detection rate of every output (needs the [pose] extra).",
    ),
    reid_model: Optional[Path] = typer.Option(
        None,
        help="Re-ID run folder or checkpoint trained on the training identities: adds identity retention (rank-1, mAP).",
    ),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Score a generator on held-out pairs: SSIM, mask-SSIM, PSNR, masked L1, PCKh (MediaPipe), realism, identity retention, next to trivial baselines."""
    from augreid.data.sources import resolve_source
    from augreid.evaluation.generator_eval import evaluate_generator
    from augreid.evaluation.options import resolve_generator_eval
    from generators.base import find_latest_checkpoint, load_generator

    options = resolve_generator_eval(
        config,
        settings.command_overrides(
            {
                "max_pairs": max_pairs,
                "batch_size": batch_size,
                "device": device,
                "seed": seed,
                "examples": examples,
                "realism": realism,
                "pose_fidelity": pose_fidelity,
            },
            set_,
        ),
    )
    fingerprint = resolve_source(data, test_keypoints=test_keypoints).load().fingerprint()
    if checkpoint is None:
        checkpoint = find_latest_checkpoint(fingerprint)
        if checkpoint is None:
            raise ConfigError(
                f"no train-gen checkpoint for dataset {fingerprint} under runs/; pass one or run `augreid train-gen` first"
            )
    generator = load_generator(checkpoint, options.device)
    if out is None:
        weights = generator.checkpoint_path
        run = weights.parent.parent if weights.parent.name == "checkpoints" else weights.parent
        out = run / f"eval-{weights.stem}-{fingerprint}"
    report = evaluate_generator(
        generator,
        data,
        out=out,
        pairs_csv=pairs,
        test_keypoints=test_keypoints,
        progress=not quiet,
        reid_model=reid_model,
        **dataclasses.asdict(options),
    )
    typer.echo((Path(out) / "metrics.md").read_text(encoding="utf-8"))
    typer.echo(f"written: {out}/metrics.json, metrics.md, contact_sheet.png ({report['pairs']} pairs)")


@app.command("synth", cls=defaults_from("augreid.synth.config:SynthConfig", workers="num_workers"))
@user_errors
def synth_cmd(
    out: Path = typer.Option(
        ...,
        "--out",
        "-o",
        help="Output folder (bounding_box_train/, manifest.jsonl, synth.json); an interrupted run resumes.",
    ),
    data: Optional[Path] = DatasetOpt,
    train_keypoints: Optional[Path] = typer.Option(
        None, help="Training keypoint CSV (default: found beside the data)."
    ),
    poses: Optional[str] = typer.Option(None, help="Target poses: clustered (k-means medoids), random or file."),
    pose_file: Optional[Path] = typer.Option(None, help="Keypoint CSV of your own target poses (with --poses file)."),
    num_poses: Optional[int] = typer.Option(None, "--num-poses", "-k", help="K target poses (clustered/random)."),
    per_id: Optional[int] = typer.Option(None, help="Condition images per identity, most complete poses first."),
    max_ids: Optional[int] = typer.Option(None, help="Only the first N training identities (quick runs)."),
    generator: Optional[Path] = typer.Option(
        None,
        help="Generator checkpoint (.safetensors or run folder) (default: latest train-gen checkpoint of this dataset under runs/).",
    ),
    min_quality: Optional[list[str]] = typer.Option(
        None,
        help="Drop images below a score: pckh=0.2 (PCKh (MediaPipe)), pose=0.5, identity=0.3 (repeatable); none = no filter.",
    ),
    reid_model: Optional[Path] = typer.Option(
        None, help="re-ID run folder or checkpoint for identity-agreement scores."
    ),
    batch_size: Optional[int] = typer.Option(None, help="Images per generator batch."),
    seed: Optional[int] = typer.Option(None, help="Seed of clustering / random poses."),
    workers: Optional[int] = typer.Option(
        None, help="DataLoader processes decoding condition images; -1 = auto (1 on CPU, up to 4 on CUDA)."
    ),
    writer_threads: Optional[int] = typer.Option(None, help="Threads scoring and writing JPEGs."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="bfloat16 autocast on CUDA."),
    config: Optional[Path] = config_option(" (the keys of SynthConfig, at top level or in a [synth] table)"),
    set_: Optional[list[str]] = set_option("kmeans_n_init=4 (every field of augreid.synth.config.SynthConfig)"),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Render every training identity in K target poses with a trained generator (Market-layout output with provenance).

    Multi-GPU: torchrun --nproc_per_node N -m augreid.cli synth ... (each rank takes a disjoint share).
    """
    import torch

    from augreid.reid import load_reid_model
    from augreid.synth import load_synth_config, parse_min_quality, synthesize

    overrides = settings.command_overrides(
        {
            "poses": poses,
            "pose_file": str(pose_file) if pose_file else None,
            "num_poses": num_poses,
            "per_id": per_id,
            "max_ids": max_ids,
            "min_quality": parse_min_quality(min_quality) if min_quality else None,
            "batch_size": batch_size,
            "seed": seed,
            "num_workers": workers,
            "writer_threads": writer_threads,
            "device": device,
            "amp": amp,
        },
        set_,
    )
    resolved = load_synth_config(config, **overrides)
    if threads:
        torch.set_num_threads(threads)
    result = synthesize(
        out,
        resolved,
        data=data,
        train_keypoints=train_keypoints,
        generator=generator,
        reid_model=reid_model,
        progress=progress,
        echo=typer.echo,
        load_reid=load_reid_model,
    )
    if "timings" in result.summary:
        t = result.summary["timings"]
        typer.echo(
            f"{t['images_generated_now']} images generated in {t['generation_s']:.1f} s ({t['images_per_s'] or 0:.1f} img/s); synth.json written"
        )


@app.command("synth-copy")
@user_errors
def synth_copy_cmd(
    source: Path = typer.Argument(..., help="A finished synth folder (the --out of `augreid synth`)."),
    out: Path = typer.Option(
        ..., "--out", "-o", help="Output folder of the control set (synth layout); a partial one is redone."
    ),
    data: Optional[Path] = DatasetOpt,
    train_keypoints: Optional[Path] = typer.Option(
        None, help="Training keypoint CSV (default: found beside the data)."
    ),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Control arm: copy each synthetic image's real condition image under the synthetic name (same pids, same count).

    Train on real + this folder to compare with real + the synth folder: only "new pose" differs.
    """
    from augreid.synth import copy_control

    result = copy_control(source, out, data=data, train_keypoints=train_keypoints, progress=progress)
    c = result.counts
    typer.echo(
        f"{c['images']} copies of {c['conditions']} condition images of {c['identities']} identities -> {result.out}"
    )
