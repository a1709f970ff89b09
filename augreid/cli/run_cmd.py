"""``augreid run RECIPE``: the whole experiment."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from augreid import settings
from augreid.cli.common import app, config_option, set_option, user_errors


@app.command("run")
@user_errors
def run_cmd(
    recipe: Path = typer.Argument(..., help="Recipe TOML (see recipes/); its sections are the commands' settings."),
    only: Optional[str] = typer.Option(
        None,
        help="Run only this stage (its inputs must be done): check, train-gen, eval-gen, synth, train-reid, eval, report.",
    ),
    start: Optional[str] = typer.Option(None, "--from", help="Redo this stage and every stage after it."),
    stage: Optional[list[str]] = typer.Option(
        None,
        help="Run only the stages whose names match this pattern, e.g. 'train-reid-baseline-*' (repeatable; "
        "names as --dry-run lists them). Two processes can share a run folder this way.",
    ),
    wait: bool = typer.Option(
        False, help="With --stage: wait for inputs that another process is running instead of stopping."
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Print the plan (reuse / run / resume per stage) and stop."),
    config: Optional[Path] = config_option(" laid out like a recipe (e.g. [reid] epochs = 2), over the recipe"),
    set_: Optional[list[str]] = set_option("reid.epochs=2 or generator.train.stage1_steps=100 (dotted: section.key)"),
    output: Optional[Path] = typer.Option(None, help="Folder that holds run folders (default: the recipe's `output`)."),
) -> None:
    """Run a whole experiment: check -> train-gen -> eval-gen -> synth -> train-reid -> eval -> report."""
    from augreid.pipeline import run_recipe

    overrides = settings.file_layer(config).values if config is not None else {}
    overrides = {**overrides, **settings.parse_sets(set_ or [])}  # nested tables, then section.key values
    run_recipe(
        recipe,
        overrides=overrides,
        only=only,
        start=start,
        names=stage or None,
        wait=wait,
        dry_run=dry_run,
        output=output,
        log=typer.echo,
    )
