"""The ``augreid`` command line. Parses arguments and calls the library; no logic lives here.

Heavy imports (torch, torchreid, faiss) happen inside the commands so that
``augreid --help`` stays fast.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Optional

import typer

from augreid import __version__
from augreid.errors import AugreidError, is_environment_error, output_error

app = typer.Typer(
    name="augreid",
    help="Person re-ID data augmentation: PG2 pose-guided synthesis, torchreid training, honest evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    # Plain help text: rich markup would swallow the "[default]" brackets in option help.
    rich_markup_mode=None,
)
data_app = typer.Typer(help="Inspect datasets and keypoints.", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _version_callback(value: bool) -> None:
    if value:
        typer.echo(f"augreid {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version_callback, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """augreid: pose-guided data augmentation for person re-identification."""


def user_errors(func):
    """Print ``AugreidError`` as a one-line message and exit 2, instead of a traceback."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        try:
            return func(*args, **kwargs)
        except AugreidError as err:
            typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None
        except OSError as err:
            # A full disk or a read-only/unusable --out reached a plain mkdir or open somewhere:
            # the user's environment, not a bug, so one line naming the path.
            if not is_environment_error(err):
                raise
            typer.secho(f"error: {output_error(err, action='cannot use')}", fg=typer.colors.RED, err=True)
            raise typer.Exit(2) from None

    return wrapper


DatasetOpt = typer.Option(None, "--data", "-d", help="Market-layout dataset root (default: the embedded demo dataset).")


# ---------------------------------------------------------------- data


@app.command("demo-data")
@user_errors
def demo_data(
    out: Path = typer.Argument(..., help="Folder to write the demo dataset into."),
    seed: int = typer.Option(0, help="Random seed; the same seed gives byte-identical files."),
    check: bool = typer.Option(True, help="Run `data check` on the result and print its report."),
) -> None:
    """Write the procedurally generated demo dataset (Market-1501 layout + keypoint CSVs)."""
    from augreid.data.demo import make_demo_dataset

    root = make_demo_dataset(out, seed=seed)
    typer.echo(f"demo dataset written to {root}")
    if check:
        data_check(root, train_keypoints=None, test_keypoints=None, verify_images=True, json_out=None)


@data_app.command("check")
@user_errors
def data_check(
    root: Path = typer.Argument(..., help="Dataset root (Market-1501-v15.09.15 or its parent)."),
    train_keypoints: Optional[Path] = typer.Option(None, help="Keypoint CSV of the training split (default: found beside the data)."),
    test_keypoints: Optional[Path] = typer.Option(None, help="Keypoint CSV of query+gallery (default: found beside the data)."),
    verify_images: bool = typer.Option(True, help="Open every image to find unreadable files."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON."),
) -> None:
    """Report counts (ids, images, cameras) and every problem of a dataset, without stopping at the first."""
    from augreid.data.check import check_dataset

    report = check_dataset(root, train_keypoints=train_keypoints, test_keypoints=test_keypoints, verify_images=verify_images)
    typer.echo(report.format())
    if json_out is not None:
        report.write_json(json_out)
    if report.errors:
        raise typer.Exit(1)


# ---------------------------------------------------------------- commands added by later stages go below


@app.command("train-reid")
@user_errors
def train_reid_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Run folder (checkpoint.pth, config.toml, run.json, tensorboard/)."),
    data: Optional[Path] = DatasetOpt,
    synthetic: Optional[Path] = typer.Option(None, help="Synthetic folder (bounding_box_train/, manifest.jsonl, synth.json) to train on with the real images."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings (e.g. a run's config.toml); options given here override it."),
    model: Optional[str] = typer.Option(None, help="torchreid model name [mobilenetv2_x1_0]."),
    pretrained: Optional[str] = typer.Option(None, help="auto, imagenet (offline weights), none, or a local weights file; never downloaded [auto]."),
    height: Optional[int] = typer.Option(None, help="Input height [128]."),
    width: Optional[int] = typer.Option(None, help="Input width [64]."),
    epochs: Optional[int] = typer.Option(None, help="Epochs [30]."),
    batch_size: Optional[int] = typer.Option(None, help="Batch size [64]."),
    lr: Optional[float] = typer.Option(None, help="Learning rate [0.00035]."),
    method: Optional[str] = typer.Option(None, help="Training method: bot (strong baseline), softmax or triplet (torchreid's engines) [bot]."),
    label_scheme: Optional[str] = typer.Option(None, help="Labels of synthetic images: same-id, lsro or smoothed-id [same-id]."),
    label_smoothing: Optional[float] = typer.Option(None, help="Epsilon of smoothed-id [0.1]."),
    synthetic_ratio: Optional[float] = typer.Option(None, help="Share of synthetic images in every batch (default: sample the union uniformly)."),
    max_synthetic_per_id: Optional[int] = typer.Option(None, help="Use at most this many synthetic images per identity."),
    seed: Optional[int] = typer.Option(None, help="Random seed [0]."),
    device: Optional[str] = typer.Option(None, help="auto, cpu or cuda [auto: cuda when available]."),
    workers: Optional[int] = typer.Option(None, help="Data loader processes [2]."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads; 0 = torch's default [0]."),
    evaluate: Optional[bool] = typer.Option(None, "--evaluate/--no-evaluate", help="Score rank-1/mAP on query/gallery at the end [on]."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Any setting of augreid/reid/defaults.toml, e.g. --set warmup_epochs=2 (repeatable)."),
    resume: bool = typer.Option(True, help="Continue an interrupted run with the same settings in --out."),
    overwrite: bool = typer.Option(False, help="Start again in --out, deleting only augreid's own files in it."),
) -> None:
    """Train a re-ID model (bot, softmax or triplet) on real images, or real + synthetic ones with a labelling scheme."""
    from augreid.evaluation import evaluate_rank
    from augreid.reid.config import resolve_config
    from augreid.reid.train import train_reid

    overrides = {
        "data": str(data) if data else None, "synthetic": str(synthetic) if synthetic else None,
        "model": model, "pretrained": pretrained, "height": height, "width": width,
        "epochs": epochs, "batch_size": batch_size, "lr": lr, "method": method, "label_scheme": label_scheme,
        "label_smoothing": label_smoothing, "synthetic_ratio": synthetic_ratio,
        "max_synthetic_per_id": max_synthetic_per_id, "seed": seed, "device": device, "workers": workers,
        "threads": threads,
        "evaluate": evaluate,
    }
    from augreid.tomlfile import parse_override

    for text in set_ or []:
        key, value = parse_override(text)
        if overrides.get(key) is not None:
            raise AugreidError(f"--set {key}: given twice (also as --{key.replace('_', '-')})")
        overrides[key] = value
    settings = resolve_config(config, overrides)
    result = train_reid(settings, out, resume=resume, overwrite=overwrite, evaluate_rank=evaluate_rank)
    if result.resumed_from:
        typer.echo(f"resumed after epoch {result.resumed_from}")
    typer.echo(f"run folder: {result.run_dir}")
    if result.epoch_seconds:
        mean = sum(result.epoch_seconds) / len(result.epoch_seconds)
        typer.echo(f"epochs: {len(result.epoch_seconds)}, {mean:.1f} s/epoch")
    if result.metrics:
        typer.echo(f"rank-1 {result.metrics['rank1']:.1%}  mAP {result.metrics['mAP']:.1%}  ({result.metrics['evaluator']})")


@app.command("pose")
@user_errors
def pose_cmd(
    root: Path = typer.Argument(..., help="Market-layout dataset root (Market-1501-v15.09.15 or its parent)."),
    split: Optional[list[str]] = typer.Option(None, "--split", help="train, query, gallery, test (= query + gallery) or all; repeatable (default: all)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Folder for the CSVs and the report (default: beside the dataset, where keypoint CSVs are looked for)."),
    prefix: str = typer.Option("pose", help="Files are PREFIX-annotation-{train,test}.csv, PREFIX-report.md, ..."),
    estimator: str = typer.Option("mediapipe", help="Pose estimator; mediapipe needs augreid's optional 'pose' extra."),
    min_detection_confidence: float = typer.Option(0.5, help="Person detector threshold."),
    visibility_threshold: float = typer.Option(0.5, help="A landmark less visible than this is -1."),
    drop_outside: bool = typer.Option(True, "--drop-outside/--clip-outside", help="Landmarks outside the frame: -1, or clipped to the border."),
    workers: int = typer.Option(1, help="Processes estimating in parallel."),
    overwrite: bool = typer.Option(False, help="Re-estimate the selected splits even where the CSV has rows."),
    restart: bool = typer.Option(False, help="Discard an interrupted run's progress made with other settings."),
    report: bool = typer.Option(True, help="Write PREFIX-report.{md,json} and PREFIX-contact-sheet.png."),
    sheet_count: int = typer.Option(32, help="Images on the contact sheet."),
    seed: int = typer.Option(0, help="Seed of the contact sheet's random choice."),
) -> None:
    """Estimate OpenPose-18 keypoints for every image (MediaPipe Pose, offline) and write pose-transfer CSVs."""
    from augreid.pose_estimation.base import EstimatorSpec
    from augreid.pose_estimation.report import write_run_report
    from augreid.pose_estimation.run import estimate_dataset

    spec = EstimatorSpec(estimator, {
        "min_detection_confidence": min_detection_confidence,
        "visibility_threshold": visibility_threshold,
        "drop_outside": drop_outside,
    })
    run = estimate_dataset(root, out, splits=split, spec=spec, prefix=prefix, workers=workers,
                           overwrite=overwrite, restart=restart)
    typer.echo(f"estimated {run.estimated} images ({run.resumed} resumed, {run.kept} already in the CSV) in {run.seconds:.1f} s")
    for kind, path in run.csv_paths.items():
        typer.echo(f"{kind}: {path} ({run.rows[kind]} rows)")
    if report:
        paths = write_run_report(run, prefix, count=sheet_count, seed=seed)
        typer.echo(paths["markdown"].read_text(encoding="utf-8"))
        typer.echo("report: " + ", ".join(str(p) for p in paths.values()))



@app.command("synth")
@user_errors
def synth_cmd(
    out: Path = typer.Option(..., "--out", "-o", help="Output folder (bounding_box_train/, manifest.jsonl, synth.json); an interrupted run resumes."),
    data: Optional[Path] = DatasetOpt,
    train_keypoints: Optional[Path] = typer.Option(None, help="Training keypoint CSV (default: found beside the data)."),
    poses: Optional[str] = typer.Option(None, help="Target poses: clustered (k-means medoids), random or file (default: clustered)."),
    pose_file: Optional[Path] = typer.Option(None, help="Keypoint CSV of your own target poses (with --poses file)."),
    num_poses: Optional[int] = typer.Option(None, "--num-poses", "-k", help="K target poses (clustered/random) (default: 8)."),
    per_id: Optional[int] = typer.Option(None, help="Condition images per identity, most complete poses first (default: 1)."),
    max_ids: Optional[int] = typer.Option(None, help="Only the first N training identities (quick runs)."),
    generator: Optional[Path] = typer.Option(None, help="PG2 checkpoint (.safetensors or run folder) (default: latest train-gen checkpoint of this dataset under runs/)."),
    min_quality: Optional[list[str]] = typer.Option(None, help="Drop images below a score: pckh=0.2 (PCKh (MediaPipe), the default), pose=0.5, identity=0.3 (repeatable); none = no filter."),
    reid_model: Optional[Path] = typer.Option(None, help="re-ID run folder or checkpoint for identity-agreement scores."),
    batch_size: Optional[int] = typer.Option(None, help="Images per generator batch (default: 32)."),
    seed: Optional[int] = typer.Option(None, help="Seed of clustering / random poses (default: 0)."),
    workers: Optional[int] = typer.Option(None, help="DataLoader processes decoding condition images (default: -1 = auto: 1 on CPU, up to 4 on CUDA)."),
    writer_threads: Optional[int] = typer.Option(None, help="Threads scoring and writing JPEGs (default: 2)."),
    device: Optional[str] = typer.Option(None, help="auto, cpu, cuda or cuda:N (default: auto)."),
    amp: Optional[bool] = typer.Option(None, "--amp/--no-amp", help="bfloat16 autocast on CUDA (default: on)."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file of synth settings; options given here override it."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    progress: bool = typer.Option(True, help="Show a progress bar."),
) -> None:
    """Render every training identity in K target poses with a trained generator (Market-layout output with provenance).

    Multi-GPU: torchrun --nproc_per_node N -m augreid.cli synth ... (each rank takes a disjoint share).
    """
    from augreid.reid import load_reid_model
    from augreid.synth import load_synth_config, parse_min_quality, synthesize

    settings = load_synth_config(
        config,
        poses=poses, pose_file=str(pose_file) if pose_file else None, num_poses=num_poses, per_id=per_id,
        max_ids=max_ids, min_quality=parse_min_quality(min_quality) if min_quality else None,
        batch_size=batch_size, seed=seed, num_workers=workers, writer_threads=writer_threads, device=device, amp=amp,
    )
    if threads:
        import torch

        torch.set_num_threads(threads)
    result = synthesize(
        out, settings, data=data, train_keypoints=train_keypoints, generator=generator,
        reid_model=reid_model, progress=progress, echo=typer.echo, load_reid=load_reid_model,
    )
    if "timings" in result.summary:
        t = result.summary["timings"]
        typer.echo(f"{t['images_generated_now']} images generated in {t['generation_s']:.1f} s ({t['images_per_s'] or 0:.1f} img/s); synth.json written")


@app.command("train-gen")
@user_errors
def train_gen_cmd(
    data: Optional[Path] = DatasetOpt,
    generator: str = typer.Option("pg2", "--generator", help="Registered generator to train (generators/base.py)."),
    preset: Optional[str] = typer.Option(None, help="Preset name or a .toml file [pg2: cpu-small; also paper-128x64, fashion-256x256, cpu-small-hd, paper-128x64-hd]."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a preset value, e.g. --set train.stage1_steps=500 (repeatable)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Run folder (default: runs/train-gen/<dataset fingerprint>/<preset>/)."),
    pairs: Optional[Path] = typer.Option(None, help="from,to pairs CSV of training images (default: build all same-identity pairs)."),
    train_keypoints: Optional[Path] = typer.Option(None, help="Training keypoint CSV (default: found beside the data)."),
    device: str = typer.Option("auto", help="auto, cpu, cuda or cuda:N. Multi-GPU: torchrun --nproc_per_node N -m augreid.cli train-gen ..."),
    resume: bool = typer.Option(True, help="Continue from the latest checkpoint in the run folder."),
    max_minutes: Optional[float] = typer.Option(None, help="Stop with a checkpoint after this many minutes; run again to continue."),
    stop_at: Optional[int] = typer.Option(None, help="Stop with a checkpoint after this global step; run again to continue."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads (default: torch's choice)."),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Train a generator (default PG2: G1, then G2 + discriminator) on a Market-layout dataset with keypoints (default: the demo dataset)."""
    from augreid.errors import ConfigError
    from augreid.tomlfile import parse_override
    from generators.base import generator_plugin

    plugin = generator_plugin(generator)
    if plugin.train is None:
        raise ConfigError(f"generator {generator!r} cannot be trained with train-gen")
    if threads:
        import torch

        torch.set_num_threads(threads)
    result = plugin.train(
        preset or plugin.default_preset, dict(parse_override(s) for s in set_ or []), data, out=out, pairs_csv=pairs,
        train_keypoints=train_keypoints, device=device, resume=resume, stop_at=stop_at,
        time_limit=max_minutes * 60 if max_minutes else None, progress=not quiet,
    )
    state = "finished" if result.finished else "stopped early (run the same command again to resume)"
    typer.echo(f"{state} at step {result.step}/{result.total_steps}")
    typer.echo(f"run folder: {result.run_dir}")
    if result.checkpoint is not None:
        typer.echo(f"checkpoint: {result.checkpoint}")


@app.command("eval-gen")
@user_errors
def eval_gen_cmd(
    checkpoint: Optional[Path] = typer.Argument(None, help="Generator checkpoint (any registered generator's) or run folder (default: latest train-gen checkpoint of this dataset under runs/)."),
    data: Optional[Path] = DatasetOpt,
    pairs: Optional[Path] = typer.Option(None, help="from,to pairs CSV of query/gallery images, e.g. market-pairs-test.csv (default: build pairs of test identities)."),
    test_keypoints: Optional[Path] = typer.Option(None, help="Query+gallery keypoint CSV (default: found beside the data)."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Output folder (default: <run folder>/eval-<checkpoint>-<dataset fingerprint>/)."),
    max_pairs: int = typer.Option(500, help="Score at most this many pairs (a seeded random subset); 0 = all."),
    batch_size: int = typer.Option(32, help="Pairs per generator batch."),
    device: str = typer.Option("cpu", help="cpu, cuda or cuda:N."),
    seed: int = typer.Option(0, help="Seed of the pair subset."),
    examples: int = typer.Option(6, help="Hardest and easiest pairs on the contact sheet (each)."),
    realism: bool = typer.Option(True, help="FID-MNv2 and KID on offline ImageNet MobileNetV2 features (not comparable with Inception FID)."),
    reid_model: Optional[Path] = typer.Option(None, help="Re-ID run folder or checkpoint trained on the training identities: adds identity retention (rank-1, mAP)."),
    quiet: bool = typer.Option(False, help="No progress bars."),
) -> None:
    """Score a generator on held-out pairs: SSIM, mask-SSIM, PSNR, masked L1, realism, identity retention, next to trivial baselines."""
    from augreid.data.sources import resolve_source
    from augreid.errors import ConfigError
    from augreid.evaluation.generator_eval import evaluate_generator
    from generators.base import find_latest_checkpoint, load_generator

    fingerprint = resolve_source(data, test_keypoints=test_keypoints).load().fingerprint()
    if checkpoint is None:
        checkpoint = find_latest_checkpoint(fingerprint)
        if checkpoint is None:
            raise ConfigError(f"no train-gen checkpoint for dataset {fingerprint} under runs/; pass one or run `augreid train-gen` first")
    generator = load_generator(checkpoint, device)
    if out is None:
        weights = generator.checkpoint_path
        run = weights.parent.parent if weights.parent.name == "checkpoints" else weights.parent
        out = run / f"eval-{weights.stem}-{fingerprint}"
    report = evaluate_generator(
        generator, data, out=out, pairs_csv=pairs, test_keypoints=test_keypoints, max_pairs=max_pairs,
        batch_size=batch_size, device=device, seed=seed, examples=examples, progress=not quiet,
        realism=realism, reid_model=reid_model,
    )
    typer.echo((Path(out) / "metrics.md").read_text(encoding="utf-8"))
    typer.echo(f"written: {out}/metrics.json, metrics.md, contact_sheet.png ({report['pairs']} pairs)")


@data_app.command("sheet")
@user_errors
def data_sheet_cmd(
    out_png: Path = typer.Argument(..., help="PNG file to write."),
    data: Optional[Path] = DatasetOpt,
    split: str = typer.Option("bounding_box_train", help="bounding_box_train, query or bounding_box_test."),
    ids: int = typer.Option(8, help="Identities (rows)."),
    per_id: int = typer.Option(10, help="Images per identity (columns), in camera order."),
    skeleton: bool = typer.Option(True, help="Show each image again with its keypoints drawn."),
    zoom: int = typer.Option(2, help="Pixel zoom."),
) -> None:
    """A contact sheet of a dataset: identities in rows, their images across cameras, keypoints drawn."""
    from augreid.data.demo import demo_contact_sheet
    from augreid.data.sources import resolve_source

    root = resolve_source(data).root
    path = demo_contact_sheet(root, out_png, num_ids=ids, per_id=per_id, split=split, skeleton=skeleton, zoom=zoom)
    typer.echo(f"written: {path}")


@app.command("eval")
@user_errors
def eval_cmd(
    run: list[str] = typer.Option(..., "--run", "-r", help="NAME=PATH: a run folder or checkpoint (globs allowed). Repeat; the first NAME is the baseline; runs sharing a NAME are seeds of one configuration."),
    data: Optional[Path] = DatasetOpt,
    out: Path = typer.Option(Path("outputs/eval"), "--out", "-o", help="Folder for comparison.json, report.md and the PNG plots."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML settings (keys of augreid/evaluation/defaults.toml, at top level or in an eval table)."),
    metric: Optional[str] = typer.Option(None, help="euclidean (squared, as torchreid) or cosine (default: euclidean)."),
    flip: Optional[bool] = typer.Option(None, "--flip/--no-flip", help="Average features of each image and its mirror image (default: off)."),
    normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize", help="L2-normalise features (default: off)."),
    ap: Optional[str] = typer.Option(None, help="AP: torchreid (non-interpolated) or trapezoid (official Market-1501 code); default: torchreid."),
    rerank: Optional[bool] = typer.Option(None, "--rerank/--no-rerank", help="k-reciprocal re-ranking, holding full distance matrices in memory (default: off)."),
    resamples: Optional[int] = typer.Option(None, help="Bootstrap resamples over query identities (default: 1000)."),
    seed: Optional[int] = typer.Option(None, help="Seed of the bootstrap and of the strip queries (default: 0)."),
    batch_size: Optional[int] = typer.Option(None, help="Feature extraction batch size (default: 64)."),
    device: Optional[str] = typer.Option(None, help="torch device for the model and distances (default: cpu)."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for extraction and ranking; 0 = all available (default: 0)."),
    cache: Optional[bool] = typer.Option(None, "--cache/--no-cache", help="Reuse features cached under $AUGREID_HOME/features (default: on)."),
    plots: Optional[bool] = typer.Option(None, "--plots/--no-plots", help="Write cmc.png and retrieval strips (default: on)."),
    allow_unfinished: Optional[bool] = typer.Option(None, "--allow-unfinished", help="Score runs stopped before their last epoch, marked unfinished (default: refuse them)."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score trained re-ID models on one query/gallery: rank-k, mAP, paired bootstrap CIs, plots."""
    from augreid.data.sources import resolve_source
    from augreid.evaluation.compare import compare_runs, parse_run_specs
    from augreid.evaluation.options import resolve_options
    from augreid.evaluation.report import summary_table, write_comparison_report

    options = resolve_options(config, {
        "metric": metric, "flip": flip, "normalize": normalize, "ap": ap, "rerank": rerank,
        "resamples": resamples, "seed": seed, "batch_size": batch_size, "device": device, "threads": threads,
        "cache": cache, "plots": plots, "allow_unfinished": allow_unfinished,
    })
    runs = parse_run_specs(run)
    dataset = resolve_source(data).load()
    result = compare_runs(runs, dataset, options, progress=not quiet)
    written = write_comparison_report(result, out)
    protocol = options.protocol()
    typer.echo(f"{protocol['ap_label']}; {protocol['metric_label']}; re-ranking {protocol['rerank']}")
    typer.echo(summary_table(result))
    typer.echo(f"{result.dataset['num_valid_queries']} queries scored, {result.dataset['num_skipped_queries']} skipped; "
               f"bootstrap: {options.resamples} resamples over query identities, seed {options.seed}")
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"written: {', '.join(str(p) for p in written.values())}")


@app.command("run")
@user_errors
def run_cmd(
    recipe: Path = typer.Argument(..., help="Recipe TOML (see recipes/)."),
    only: Optional[str] = typer.Option(None, help="Run only this stage (its inputs must be done): check, train-gen, eval-gen, synth, train-reid, eval, report."),
    start: Optional[str] = typer.Option(None, "--from", help="Redo this stage and every stage after it."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (reuse / run / resume per stage) and stop."),
    set_: Optional[list[str]] = typer.Option(None, "--set", help="Override a recipe value, e.g. --set reid.epochs=2 (repeatable)."),
    output: Optional[Path] = typer.Option(None, help="Folder that holds run folders (default: the recipe's `output`)."),
) -> None:
    """Run a whole experiment: check -> train-gen -> eval-gen -> synth -> train-reid -> eval -> report."""
    from augreid.pipeline import run_recipe
    from augreid.pipeline.recipe import parse_override

    overrides = dict(parse_override(s) for s in set_ or [])
    run_recipe(recipe, overrides=overrides, only=only, start=start, dry_run=dry_run, output=output, log=typer.echo)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
