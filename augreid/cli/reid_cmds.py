"""Re-ID commands: ``train-reid``, ``eval``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from augreid import settings
from augreid.cli.common import DatasetOpt, app, config_option, defaults_from, set_option, user_errors


@app.command("train-reid", cls=defaults_from("augreid.reid.config:ReidConfig"))
@user_errors
def train_reid_cmd(
    out: Path = typer.Option(
        ..., "--out", "-o", help="Run folder (checkpoint.pth, config.toml, run.json, tensorboard/)."
    ),
    data: Optional[Path] = DatasetOpt,
    synthetic: Optional[Path] = typer.Option(
        None,
        help="Synthetic folder (bounding_box_train/, manifest.jsonl, synth.json) to train on with the real images.",
    ),
    config: Optional[Path] = config_option(" (e.g. a run's config.toml)"),
    model: Optional[str] = typer.Option(None, help="torchreid model name."),
    pretrained: Optional[str] = typer.Option(
        None, help="auto, imagenet (offline weights), none, or a local weights file; never downloaded."
    ),
    height: Optional[int] = typer.Option(None, help="Input height."),
    width: Optional[int] = typer.Option(None, help="Input width."),
    epochs: Optional[int] = typer.Option(None, help="Epochs."),
    batch_size: Optional[int] = typer.Option(None, help="Real images per batch (synthetic ones come on top)."),
    lr: Optional[float] = typer.Option(None, help="Learning rate."),
    method: Optional[str] = typer.Option(
        None, help="Training method: a name in augreid.reid.methods' registry (bot, the strong baseline, by default)."
    ),
    label_scheme: Optional[str] = typer.Option(None, help="Labels of synthetic images: same-id, lsro or smoothed-id."),
    label_smoothing: Optional[float] = typer.Option(None, help="Epsilon of smoothed-id."),
    synthetic_per_batch: Optional[int] = typer.Option(
        None, help="Synthetic images added to every batch of --batch-size real ones (0 = none)."
    ),
    max_synthetic_per_id: Optional[int] = typer.Option(
        None, help="Use at most this many synthetic images per identity."
    ),
    seed: Optional[int] = typer.Option(None, help="Random seed."),
    device: Optional[str] = typer.Option(None, help="auto (cuda when available), cpu or cuda."),
    workers: Optional[int] = typer.Option(None, help="Data loader processes."),
    threads: Optional[int] = typer.Option(None, help="torch CPU threads; 0 = torch's default."),
    evaluate: Optional[bool] = typer.Option(
        None, "--evaluate/--no-evaluate", help="Score rank-1/mAP on query/gallery at the end."
    ),
    set_: Optional[list[str]] = set_option("warmup_epochs=2 (every field of augreid.reid.config.ReidConfig)"),
    resume: bool = typer.Option(True, help="Continue an interrupted run with the same settings in --out."),
    overwrite: bool = typer.Option(False, help="Start again in --out, deleting only augreid's own files in it."),
) -> None:
    """Train a re-ID model (bot, softmax or triplet) on real images, or real + synthetic ones with a labelling scheme."""
    from augreid.evaluation import evaluate_rank
    from augreid.reid.config import resolve_config
    from augreid.reid.train import train_reid

    overrides = settings.command_overrides(
        {
            "data": str(data) if data else None,
            "synthetic": str(synthetic) if synthetic else None,
            "model": model,
            "pretrained": pretrained,
            "height": height,
            "width": width,
            "epochs": epochs,
            "batch_size": batch_size,
            "lr": lr,
            "method": method,
            "label_scheme": label_scheme,
            "label_smoothing": label_smoothing,
            "synthetic_per_batch": synthetic_per_batch,
            "max_synthetic_per_id": max_synthetic_per_id,
            "seed": seed,
            "device": device,
            "workers": workers,
            "threads": threads,
            "evaluate": evaluate,
        },
        set_,
    )
    resolved = resolve_config(config, overrides)
    result = train_reid(resolved, out, resume=resume, overwrite=overwrite, evaluate_rank=evaluate_rank)
    if result.resumed_from:
        typer.echo(f"resumed after epoch {result.resumed_from}")
    typer.echo(f"run folder: {result.run_dir}")
    if result.epoch_seconds:
        mean = sum(result.epoch_seconds) / len(result.epoch_seconds)
        typer.echo(f"epochs: {len(result.epoch_seconds)}, {mean:.1f} s/epoch")
    if result.metrics:
        typer.echo(
            f"rank-1 {result.metrics['rank1']:.1%}  mAP {result.metrics['mAP']:.1%}  ({result.metrics['evaluator']})"
        )


@app.command("eval", cls=defaults_from("augreid.evaluation.options:EvalOptions"))
@user_errors
def eval_cmd(
    run: list[str] = typer.Option(
        ...,
        "--run",
        "-r",
        help="NAME=PATH: a run folder or checkpoint (globs allowed). Repeat; the first NAME is the baseline; runs sharing a NAME are seeds of one configuration.",
    ),
    data: Optional[Path] = DatasetOpt,
    out: Path = typer.Option(
        Path("outputs/eval"), "--out", "-o", help="Folder for comparison.json, report.md and the PNG plots."
    ),
    config: Optional[Path] = config_option(" (the keys of EvalOptions, at top level or in an [eval] table)"),
    set_: Optional[list[str]] = set_option("ci_level=0.9 (every field of augreid.evaluation.options.EvalOptions)"),
    metric: Optional[str] = typer.Option(None, help="euclidean (squared, as torchreid) or cosine."),
    flip: Optional[bool] = typer.Option(
        None, "--flip/--no-flip", help="Average features of each image and its mirror image."
    ),
    normalize: Optional[bool] = typer.Option(None, "--normalize/--no-normalize", help="L2-normalise features."),
    ap: Optional[str] = typer.Option(
        None, help="AP: torchreid (non-interpolated) or trapezoid (official Market-1501 code)."
    ),
    rerank: Optional[bool] = typer.Option(
        None, "--rerank/--no-rerank", help="k-reciprocal re-ranking, holding full distance matrices in memory."
    ),
    resamples: Optional[int] = typer.Option(None, help="Bootstrap resamples over query identities."),
    seed: Optional[int] = typer.Option(None, help="Seed of the bootstrap and of the strip queries."),
    batch_size: Optional[int] = typer.Option(None, help="Feature extraction batch size."),
    device: Optional[str] = typer.Option(None, help="torch device for the model and distances."),
    threads: Optional[int] = typer.Option(None, help="CPU threads for extraction and ranking; 0 = all available."),
    cache: Optional[bool] = typer.Option(
        None, "--cache/--no-cache", help="Reuse features cached under $AUGREID_HOME/features."
    ),
    plots: Optional[bool] = typer.Option(None, "--plots/--no-plots", help="Write cmc.png and retrieval strips."),
    allow_unfinished: Optional[bool] = typer.Option(
        None,
        "--allow-unfinished",
        help="Score runs stopped before their last epoch, marked unfinished (else refuse them).",
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Score trained re-ID models on one query/gallery: rank-k, mAP, paired bootstrap CIs, plots."""
    from augreid.data.sources import resolve_source
    from augreid.evaluation.compare import compare_runs, parse_run_specs
    from augreid.evaluation.options import resolve_options
    from augreid.evaluation.report import summary_table, write_comparison_report

    options = resolve_options(
        config,
        settings.command_overrides(
            {
                "metric": metric,
                "flip": flip,
                "normalize": normalize,
                "ap": ap,
                "rerank": rerank,
                "resamples": resamples,
                "seed": seed,
                "batch_size": batch_size,
                "device": device,
                "threads": threads,
                "cache": cache,
                "plots": plots,
                "allow_unfinished": allow_unfinished,
            },
            set_,
        ),
    )
    runs = parse_run_specs(run)
    dataset = resolve_source(data).load()
    result = compare_runs(runs, dataset, options, progress=not quiet)
    written = write_comparison_report(result, out)
    protocol = options.protocol()
    typer.echo(f"{protocol['ap_label']}; {protocol['metric_label']}; re-ranking {protocol['rerank']}")
    typer.echo(summary_table(result))
    typer.echo(
        f"{result.dataset['num_valid_queries']} queries scored, {result.dataset['num_skipped_queries']} skipped; "
        f"bootstrap: {options.resamples} resamples over query identities, seed {options.seed}"
    )
    for note in result.notes:
        typer.echo(f"note: {note}")
    typer.echo(f"written: {', '.join(str(p) for p in written.values())}")
