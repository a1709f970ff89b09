"""``augreid run RECIPE``: the whole experiment, stage by stage, resumable."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

from augreid.pipeline.recipe import load_recipe
from augreid.pipeline.runner import execute, format_plan, plan
from augreid.pipeline.stages import build_stages


def run_recipe(
    recipe_path: str | Path,
    *,
    overrides: dict[str, Any] | None = None,
    only: str | None = None,
    start: str | None = None,
    names: list[str] | None = None,
    wait: bool = False,
    dry_run: bool = False,
    output: str | Path | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Validate a recipe, plan its stages, run what is not done; return the run folder."""
    recipe = load_recipe(recipe_path, overrides)
    run_dir = Path(output or recipe.settings["output"]) / recipe.name
    items = plan(build_stages(recipe), run_dir, only=only, start=start, names=names)
    log(format_plan(items))
    if not dry_run:
        execute(items, log=log, wait=wait)
        report = run_dir / "report.md"
        if report.is_file():
            log(f"report: {report} and {run_dir / 'report.html'}")
    return run_dir
