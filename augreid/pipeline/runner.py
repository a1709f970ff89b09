"""Run a recipe's stages in order, skipping those already done with the same settings.

Each stage instance lives in ``RUN/<stage>-<hash>/`` where the hash covers the
settings that affect it and the hashes of the stages it reads from. A finished
stage writes ``stage.json`` last (atomically); a folder without it is an
interrupted stage, which is resumed (the stage code resumes from its own
checkpoints) rather than trusted. Change a setting and that stage gets a new
hash, and so does everything downstream of it; unaffected stages are reused.

Several processes may share one run folder (two cores, two ``augreid run
--stage`` calls): a stage being run holds ``RUN/<stage>-<hash>.lock``, and a
process told to ``wait`` polls for inputs that another process is producing.

Paths in a stage summary are relative to the run folder (``StageContext.record``,
``StageResult.path``): the run folder can move, and any working directory reads it.
"""

from __future__ import annotations

import fnmatch
import json
import os
import shutil
import socket
import time
from collections.abc import Callable, Sequence
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

    def record(self, path: str | os.PathLike) -> str:
        """``path`` as a summary keeps it: relative to the run folder, whatever the working directory."""
        return os.path.relpath(path, self.folder.parent)


@dataclass
class StageResult:
    name: str
    folder: Path
    summary: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0
    reused: bool = False

    def path(self, key: str) -> Path:
        """The path the summary recorded under ``key``."""
        return self.resolve(self.summary[key])

    def resolve(self, recorded: str | os.PathLike) -> Path:
        """A path the summary recorded, relative to the run folder (an absolute one stays as it is)."""
        return self.folder.parent / recorded


@dataclass
class PlanItem:
    stage: Stage
    key: str
    folder: Path
    action: str  # "reuse", "run", "resume", "skip"
    forced: bool = False  # --from: run even if done (otherwise a stage done by another process meanwhile is reused)


class StageBusy(ConfigError):
    """Another live process holds the stage's lock."""


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


def _matches(name: str, patterns: Sequence[str] | None) -> bool:
    return patterns is None or any(fnmatch.fnmatchcase(name, p) for p in patterns)


def plan(
    stages: list[Stage],
    run_dir: Path,
    *,
    only: str | None = None,
    start: str | None = None,
    names: Sequence[str] | None = None,
) -> list[PlanItem]:
    """Decide, for every stage in order, whether to reuse, run, resume or skip it.

    ``only`` keeps one kind of stage, ``names`` the stage instances matching any
    of its shell patterns ("train-reid-baseline-*"); the others are reused if
    done and skipped if not.
    """
    kinds = [s.kind for s in stages]
    for option, value in (("--only", only), ("--from", start)):
        if value is not None and value not in kinds:
            raise ConfigError(f"{option} {value!r}: no such stage (stages: {', '.join(dict.fromkeys(kinds))})")
    unmatched = [p for p in names or () if not any(_matches(s.name, [p]) for s in stages)]
    if unmatched:
        raise ConfigError(
            f"--stage {', '.join(map(repr, unmatched))}: matches no stage (stages: {', '.join(s.name for s in stages)})"
        )
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
        if (only is not None and stage.kind != only) or not _matches(stage.name, names):
            action = "reuse" if _is_done(folder) else "skip"
        elif forced and start is not None:
            action = "run"
        elif _is_done(folder):
            action = "reuse"
        else:
            action = "resume" if folder.exists() else "run"
        items.append(PlanItem(stage, key, folder, action, forced=action == "run" and forced))
    return items


def format_plan(items: list[PlanItem]) -> str:
    width = max((len(i.stage.name) for i in items), default=10)
    lines = [f"{'stage':<{width}}  {'action':<7} folder"]
    lines += [f"{i.stage.name:<{width}}  {i.action:<7} {i.folder}" for i in items]
    return "\n".join(lines)


def execute(
    items: list[PlanItem], log: Callable[[str], None] = print, *, wait: bool = False, poll_seconds: float = 30.0
) -> dict[str, StageResult]:
    """Run the plan. A stage whose inputs are not finished is an error, not a silent skip.

    With ``wait``, an input this plan skips (another process runs it) is waited
    for, polling every ``poll_seconds``, instead; so is a stage of this plan that
    another process is already running (two overlapping ``--stage`` selections).
    A stage another process finished after this plan was made is reused, not redone.
    """
    results: dict[str, StageResult] = {}
    by_name = {i.stage.name: i for i in items}
    for item in items:
        stage = item.stage
        if item.action == "reuse":
            results[stage.name] = _reuse(item)
            log(f"[{stage.name}] done earlier, reusing {item.folder}")
            continue
        if item.action == "skip":
            continue
        missing = [d for d in stage.depends if d not in results]
        if missing and wait:
            for name in missing:
                results[name] = _wait_for(by_name[name], stage.name, poll_seconds, log)
            missing = []
        if missing:
            raise ConfigError(
                f"stage {stage.name} needs {', '.join(missing)} first; run without --only/--stage, or with --from, "
                "or with --wait while another process runs it"
            )
        lock = _lock_or_wait(item, wait, poll_seconds, log)
        try:
            if not item.forced and _is_done(item.folder):
                results[stage.name] = _reuse(item)
                log(f"[{stage.name}] done by another process meanwhile, reusing {item.folder}")
            else:
                results[stage.name] = _run(item, results, log)
        finally:
            lock.unlink(missing_ok=True)
    return results


def _reuse(item: PlanItem) -> StageResult:
    record = json.loads((item.folder / STAGE_FILE).read_text())
    return StageResult(item.stage.name, item.folder, record.get("summary", {}), record.get("seconds", 0.0), reused=True)


def _wait_for(item: PlanItem, waiter: str, poll_seconds: float, log: Callable[[str], None]) -> StageResult:
    if not _is_done(item.folder):
        log(f"[{waiter}] waiting for {item.stage.name} ({item.folder}), which another process runs")
    while not _is_done(item.folder):
        time.sleep(poll_seconds)
    return _reuse(item)


def _lock_or_wait(item: PlanItem, wait: bool, poll_seconds: float, log: Callable[[str], None]) -> Path:
    """The stage's lock; with ``wait``, a live holder is waited out (it finishes, and the stage is reused,
    or it dies, and its lock is taken over) instead of being an error."""
    announced = False
    while True:
        try:
            return _take_lock(item)
        except StageBusy:
            if not wait:
                raise
            if not announced:
                log(f"[{item.stage.name}] another process is running it; waiting ({item.folder})")
                announced = True
            time.sleep(poll_seconds)


def _run(item: PlanItem, results: dict[str, StageResult], log: Callable[[str], None]) -> StageResult:
    stage = item.stage
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
    log(f"[{stage.name}] finished in {seconds:.1f} s")
    return StageResult(stage.name, item.folder, summary, seconds)


def _take_lock(item: PlanItem) -> Path:
    """Create ``<folder>.lock`` for this process and return its path; a live holder is :class:`StageBusy`,
    a dead one's lock is taken over. The caller deletes the lock when the stage ends.

    The lock sits beside the folder, not in it, because a forced re-run deletes
    the folder first, and must not delete another process's work.
    """
    path = item.folder.with_name(item.folder.name + ".lock")
    path.parent.mkdir(parents=True, exist_ok=True)
    host = socket.gethostname()
    me: dict[str, Any] = {"pid": os.getpid(), "host": host}
    while True:
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
        except FileExistsError:
            holder = _lock_holder(path)
            if holder is not None and not _alive(holder, host):
                path.unlink(missing_ok=True)  # left by a process that died; take it over
                continue
            who = "an unknown process" if holder is None else f"process {holder['pid']} on {holder['host']}"
            raise StageBusy(
                f"stage {item.stage.name} is being run by {who} (lock {path}); wait for it (--wait), "
                "or delete the lock if that process is gone"
            ) from None
        with os.fdopen(fd, "w") as f:
            json.dump(me, f)
        return path


def _lock_holder(path: Path) -> dict[str, Any] | None:
    try:
        holder = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None  # being written this instant, or damaged: treat as held
    return holder if isinstance(holder, dict) and {"pid", "host"} <= holder.keys() else None


def _alive(holder: dict[str, Any], host: str) -> bool:
    if holder["host"] != host:
        return True  # another machine's process: cannot tell, so respect it
    try:
        os.kill(int(holder["pid"]), 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # it exists, owned by another user
    return True
