"""Run a recipe's stages in order, skipping those already done with the same settings.

Each stage instance lives in ``RUN/<stage>-<hash>/`` where the hash covers the
settings that affect it and the hashes of the stages it reads from. A finished
stage writes ``stage.json`` last (atomically); a folder without it is an
interrupted stage, which is resumed (the stage code resumes from its own
checkpoints) rather than trusted. Change a setting and that stage gets a new
hash, and so does everything downstream of it; unaffected stages are reused.
"""

from __future__ import annotations

import json
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augreid.errors import ConfigError
from augreid.io import atomic_write_json, sha256_text

STAGE_FILE = "stage.json"


@dataclass
class Stage:
    """One unit of work: ``run(ctx)`` writes into ``ctx.folder`` and returns a JSON summary."""

    name: str  # unique instance name, e.g. "train-reid-baseline-s0"
    kind: str  # the CLI stage it belongs to, e.g. "train-reid" (for --only / --from)
    settings: dict[str, Any]
    run: Callable[["StageContext"], dict[str, Any]]
    depends: tuple[str, ...] = ()


@dataclass
class StageContext:
    stage: Stage
    folder: Path
    inputs: dict[str, "StageResult"]  # finished upstream stages by name
    history: dict[str, "StageResult"] = field(default_factory=dict)  # every stage finished so far


@dataclass
class StageResult:
    name: str
    folder: Path
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False


@dataclass
class PlanItem:
    stage: Stage
    key: str
    folder: Path
    action: str  # "reuse", "run", "resume", "skip"


def stage_key(stage: Stage, upstream_keys: dict[str, str]) -> str:
    payload = json.dumps({"settings": stage.settings, "upstream": upstream_keys}, sort_keys=True, default=str)
    return sha256_text(payload)[:10]


def _is_done(folder: Path) -> bool:
    marker = folder / STAGE_FILE
    if not marker.is_file():
        return False
    try:
        return json.loads(marker.read_text()).get("status") == "done"
    except json.JSONDecodeError:
        return False


def plan(stages: list[Stage], run_dir: Path, *, only: str | None = None, start: str | None = None) -> list[PlanItem]:
    """Decide, for every stage in order, whether to reuse, run, resume or skip it."""
    kinds = [s.kind for s in stages]
    for option, value in (("--only", only), ("--from", start)):
        if value is not None and value not in kinds:
            raise ConfigError(f"{option} {value!r}: no such stage (stages: {', '.join(dict.fromkeys(kinds))})")
    keys: dict[str, str] = {}
    items: list[PlanItem] = []
    forced = False
    for stage in stages:
        missing = [d for d in stage.depends if d not in keys]
        if missing:
            raise ConfigError(f"stage {stage.name} depends on unknown stage(s) {missing}")
        key = stage_key(stage, {d: keys[d] for d in stage.depends})
        keys[stage.name] = key
        folder = run_dir / f"{stage.name}-{key}"
        if start is not None and stage.kind == start:
            forced = True
        if only is not None and stage.kind != only:
            action = "reuse" if _is_done(folder) else "skip"
        elif forced and start is not None:
            action = "run"
        elif _is_done(folder):
            action = "reuse"
        else:
            action = "resume" if folder.exists() else "run"
        items.append(PlanItem(stage, key, folder, action))
    return items


def format_plan(items: list[PlanItem]) -> str:
    width = max((len(i.stage.name) for i in items), default=10)
    lines = [f"{'stage':<{width}}  {'action':<7} folder"]
    lines += [f"{i.stage.name:<{width}}  {i.action:<7} {i.folder}" for i in items]
    return "\n".join(lines)


def execute(items: list[PlanItem], log: Callable[[str], None] = print) -> dict[str, StageResult]:
    """Run the plan. A stage whose inputs are not finished is an error, not a silent skip."""
    results: dict[str, StageResult] = {}
    for item in items:
        stage = item.stage
        if item.action == "reuse":
            record = json.loads((item.folder / STAGE_FILE).read_text())
            results[stage.name] = StageResult(
                stage.name, item.folder, record.get("summary", {}), record.get("seconds", 0.0), reused=True
            )
            log(f"[{stage.name}] done earlier, reusing {item.folder}")
            continue
        if item.action == "skip":
            continue
        missing = [d for d in stage.depends if d not in results]
        if missing:
            raise ConfigError(
                f"stage {stage.name} needs {', '.join(missing)} first; run without --only, or with --from"
            )
        if item.action == "run" and item.folder.exists():
            shutil.rmtree(item.folder)  # forced re-run: start clean rather than resume stale state
        item.folder.mkdir(parents=True, exist_ok=True)
        log(f"[{stage.name}] {'resuming' if item.action == 'resume' else 'running'} in {item.folder}")
        started = time.perf_counter()
        ctx = StageContext(stage, item.folder, {d: results[d] for d in stage.depends}, dict(results))
        summary = stage.run(ctx)
        seconds = time.perf_counter() - started
        atomic_write_json(
            item.folder / STAGE_FILE,
            {
                "status": "done",
                "stage": stage.name,
                "kind": stage.kind,
                "key": item.key,
                "settings": stage.settings,
                "depends": list(stage.depends),
                "seconds": seconds,
                "summary": summary,
            },
        )
        results[stage.name] = StageResult(stage.name, item.folder, summary, seconds)
        log(f"[{stage.name}] finished in {seconds:.1f} s")
    return results
