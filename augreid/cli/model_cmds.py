"""Commands on a trained re-ID model: ``features`` (its features in one file) and ``export`` (ONNX)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from augreid.cli.common import DatasetOpt, app, user_errors


@app.command("features")
@user_errors
def features_cmd(
    run: Path = typer.Argument(..., help="Run folder (holding checkpoint.pth) or checkpoint file."),
    out: Path = typer.Option(..., "--out", "-o", help="File to write (safetensors: features, names in its metadata)."),
    data: Optional[Path] = DatasetOpt,
    split: str = typer.Option(
        "query",
        help="query, gallery, train (splits of --data) or a folder of images (any names, searched recursively).",
    ),
    raw: bool = typer.Option(False, "--raw", help="Write the features as the model gives them, not L2-normalised."),
    flip: bool = typer.Option(False, "--flip/--no-flip", help="Average each image's and its mirror image's features."),
    batch_size: int = typer.Option(64, help="Images per batch."),
    device: str = typer.Option("cpu", help="torch device."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """Write a trained model's features of a split or a folder, by augreid eval's own feature path."""
    from augreid.evaluation.feature_export import (
        compute_features,
        folder_images,
        is_split_name,
        split_images,
        summary,
        write_features_file,
    )

    if is_split_name(split):
        from augreid.data.sources import resolve_source

        images = split_images(resolve_source(data).load(), split)
    else:
        images = folder_images(split)
    result = compute_features(run, images, raw=raw, flip=flip, batch_size=batch_size, device=device, progress=not quiet)
    path = write_features_file(out, result)
    typer.echo(summary(result))
    typer.echo(f"written: {path}")


@app.command("export")
@user_errors
def export_cmd(
    run: Path = typer.Argument(..., help="Run folder (holding checkpoint.pth) or checkpoint file."),
    fmt: str = typer.Option("onnx", "--format", help="Model format: onnx (needs the [onnx] extra)."),
    out: Optional[Path] = typer.Option(
        None, "--out", "-o", help="File to write (default: model.onnx beside the checkpoint)."
    ),
) -> None:
    """Export the trained re-ID network (eval mode, retrieval feature, dynamic batch) and check it with onnxruntime."""
    from augreid.errors import ConfigError
    from augreid.reid.onnx_export import FORMATS, export_onnx

    if fmt not in FORMATS:
        raise ConfigError(f"--format {fmt!r}: expected one of {', '.join(FORMATS)}")
    typer.echo(export_onnx(run, out).format())
