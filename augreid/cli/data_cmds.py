"""Data commands: ``demo-data``, ``data check``, ``data sheet``, ``data import``, ``pose``."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from augreid import settings
from augreid.cli.common import DatasetOpt, app, config_option, data_app, defaults_from, set_option, user_errors


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
    train_keypoints: Optional[Path] = typer.Option(
        None, help="Keypoint CSV of the training split (default: found beside the data)."
    ),
    test_keypoints: Optional[Path] = typer.Option(
        None, help="Keypoint CSV of query+gallery (default: found beside the data)."
    ),
    verify_images: bool = typer.Option(True, help="Open every image to find unreadable files."),
    json_out: Optional[Path] = typer.Option(None, "--json", help="Also write the report as JSON."),
) -> None:
    """Report counts (ids, images, cameras) and every problem of a dataset, without stopping at the first."""
    from augreid.data.check import check_dataset

    report = check_dataset(
        root, train_keypoints=train_keypoints, test_keypoints=test_keypoints, verify_images=verify_images
    )
    typer.echo(report.format())
    if json_out is not None:
        report.write_json(json_out)
    if report.errors:
        raise typer.Exit(1)


# ---------------------------------------------------------------- commands added by later stages go below


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


@data_app.command("import")
@user_errors
def data_import_cmd(
    fmt: str = typer.Argument(..., metavar="format", help="Source format: msmt17, cuhk03 or dukemtmc."),
    src: Path = typer.Argument(..., help="The dataset as released (e.g. MSMT17_V2/ or its parent)."),
    out: Path = typer.Argument(..., help="Folder for the Market-layout view (links to SRC) and import.json."),
    split: Optional[str] = typer.Option(None, help="cuhk03 only: detected (default) or labeled boxes."),
) -> None:
    """A Market-1501-layout view of another dataset: links under Market names, plus OUT/import.json."""
    from augreid.data.importers import import_dataset

    typer.echo(import_dataset(fmt, src, out, split=split).format())


@app.command("pose", cls=defaults_from("augreid.pose_estimation.config:PoseConfig"))
@user_errors
def pose_cmd(
    root: Path = typer.Argument(..., help="Market-layout dataset root (Market-1501-v15.09.15 or its parent)."),
    split: Optional[list[str]] = typer.Option(
        None, "--split", help="train, query, gallery, test (= query + gallery) or all; repeatable (default: all)."
    ),
    out: Optional[Path] = typer.Option(
        None,
        "--out",
        "-o",
        help="Folder for the CSVs and the report (default: beside the dataset, where keypoint CSVs are looked for).",
    ),
    prefix: Optional[str] = typer.Option(
        None, help="Files are PREFIX-annotation-{train,test}.csv, PREFIX-report.md, ..."
    ),
    estimator: Optional[str] = typer.Option(
        None, help="Pose estimator; mediapipe needs augreid's optional 'pose' extra."
    ),
    min_detection_confidence: Optional[float] = typer.Option(None, help="Person detector threshold."),
    visibility_threshold: Optional[float] = typer.Option(None, help="A landmark less visible than this is -1."),
    drop_outside: Optional[bool] = typer.Option(
        None, "--drop-outside/--clip-outside", help="Landmarks outside the frame: -1, or clipped to the border."
    ),
    workers: Optional[int] = typer.Option(None, help="Processes estimating in parallel."),
    overwrite: bool = typer.Option(False, help="Re-estimate the selected splits even where the CSV has rows."),
    restart: bool = typer.Option(False, help="Discard an interrupted run's progress made with other settings."),
    report: Optional[bool] = typer.Option(None, help="Write PREFIX-report.{md,json} and PREFIX-contact-sheet.png."),
    sheet_count: Optional[int] = typer.Option(None, help="Images on the contact sheet."),
    seed: Optional[int] = typer.Option(None, help="Seed of the contact sheet's random choice."),
    config: Optional[Path] = config_option(" (keys of augreid.pose_estimation.config.PoseConfig, or its [pose] table)"),
    set_: Optional[list[str]] = set_option("visibility_threshold=0.3"),
) -> None:
    """Estimate OpenPose-18 keypoints for every image (MediaPipe Pose, offline) and write pose-transfer CSVs."""
    from augreid.pose_estimation.base import EstimatorSpec
    from augreid.pose_estimation.config import resolve_pose_config
    from augreid.pose_estimation.report import write_run_report
    from augreid.pose_estimation.run import estimate_dataset

    options = {
        "estimator": estimator,
        "min_detection_confidence": min_detection_confidence,
        "visibility_threshold": visibility_threshold,
        "drop_outside": drop_outside,
        "workers": workers,
        "prefix": prefix,
        "report": report,
        "sheet_count": sheet_count,
        "seed": seed,
    }
    cfg = resolve_pose_config(config, settings.command_overrides(options, set_))
    spec = EstimatorSpec(cfg.estimator, cfg.estimator_options())
    run = estimate_dataset(
        root, out, splits=split, spec=spec, prefix=cfg.prefix, workers=cfg.workers, overwrite=overwrite, restart=restart
    )
    typer.echo(
        f"estimated {run.estimated} images ({run.resumed} resumed, {run.kept} already in the CSV) in {run.seconds:.1f} s"
    )
    for kind, path in run.csv_paths.items():
        typer.echo(f"{kind}: {path} ({run.rows[kind]} rows)")
    if cfg.report:
        paths = write_run_report(run, cfg.prefix, count=cfg.sheet_count, seed=cfg.seed)
        typer.echo(paths["markdown"].read_text(encoding="utf-8"))
        typer.echo("report: " + ", ".join(str(p) for p in paths.values()))
