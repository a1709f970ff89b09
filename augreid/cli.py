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
from augreid.errors import AugreidError

app = typer.Typer(
    name="augreid",
    help="Person re-ID data augmentation: PG2 pose-guided synthesis, torchreid training, honest evaluation.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
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


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
