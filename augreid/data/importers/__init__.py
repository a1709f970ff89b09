"""``augreid data import``: a Market-layout view of another re-ID dataset.

An importer is one module plus one line in ``_REGISTRY``: a function
``plan(root: Path, options: dict) -> ImportPlan`` that lists ``(split, market name,
source path)`` entries and the facts ``import.json`` records, collecting the source's
problems instead of stopping at the first. :func:`augreid.data.importers.view.write_view`
does the rest (checks, links, ``import.json``), the same for every format.
:func:`check_options` and :func:`as_is_entries` (for sources already in the Market
layout) are the helpers importers share.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from augreid.data.importers.view import ImportEntry, ImportPlan, ImportProblems, ImportResult, write_view
from augreid.data.market import IMAGE_SUFFIXES, JUNK_PID, SPLITS, parse_market_name
from augreid.errors import ConfigError, DatasetError
from augreid.registry import Registry

Importer = Callable[[Path, dict[str, Any]], ImportPlan]

# name -> "module:function", imported on first use (cuhk03's .mat route pulls in torchreid).
_REGISTRY: dict[str, str | Importer] = {
    "msmt17": "augreid.data.importers.msmt17:plan_msmt17",
    "cuhk03": "augreid.data.importers.cuhk03:plan_cuhk03",
    "dukemtmc": "augreid.data.importers.dukemtmc:plan_dukemtmc",
}
_IMPORTERS: Registry[Importer] = Registry("dataset format", _REGISTRY)

__all__ = [
    "ImportEntry",
    "ImportPlan",
    "ImportProblems",
    "ImportResult",
    "get_importer",
    "import_dataset",
    "importer_names",
    "register_importer",
    "as_is_entries",
    "check_options",
]


def register_importer(name: str, target: str | Importer) -> None:
    """Make ``name`` usable as ``augreid data import NAME``."""
    _IMPORTERS.register(name, target)


def importer_names() -> list[str]:
    return _IMPORTERS.names()


def get_importer(name: str) -> Importer:
    """The plan function of format ``name``; an unknown name is a ``ConfigError`` listing the known ones."""
    return _IMPORTERS.get(name)


def import_dataset(fmt: str, source: str | Path, out: str | Path, **options: Any) -> ImportResult:
    """Write (or find complete) the Market-layout view of ``source`` in format ``fmt`` into ``out``.

    Options that are ``None`` count as not given. Raises ``ImportProblems`` (a
    ``DatasetError``) with all problems of the source, ``ConfigError`` for an unknown
    format or option, or when ``out`` holds something else.
    """
    importer = get_importer(fmt)
    root = Path(source).expanduser()
    if not root.is_dir():
        raise DatasetError(f"dataset root {root} {'is not a folder' if root.exists() else 'does not exist'}")
    plan = importer(root, {key: value for key, value in options.items() if value is not None})
    return write_view(plan, out, source=str(source))


# ---------------------------------------------------------------- helpers for importers


def check_options(fmt: str, options: Mapping[str, Any], choices: Mapping[str, tuple[str, ...]]) -> dict[str, str]:
    """``options`` with defaults (each choice list's first value) filled in; unknown keys or values are a ConfigError."""
    given = {key: value for key, value in options.items() if value is not None}
    unknown = sorted(set(given) - set(choices))
    if unknown:
        allowed = ", ".join(sorted(choices)) or "none"
        raise ConfigError(f"{fmt}: option(s) {', '.join(unknown)} do not apply (options of {fmt}: {allowed})")
    out = {}
    for key, values in choices.items():
        value = str(given.get(key, values[0]))
        if value not in values:
            raise ConfigError(f"{fmt}: --{key} must be one of {', '.join(values)}, not {value!r}")
        out[key] = value
    return out


def as_is_entries(base: Path) -> tuple[list[ImportEntry], list[str]]:
    """Entries for a folder already in the Market layout: every image under its own name, problems collected.

    Junk (-1) and distractors (0) are linked too (augreid's reader skips them as for
    Market itself); a missing split folder or an unparsable name is a problem.
    """
    entries: list[ImportEntry] = []
    problems: list[str] = []
    for split in SPLITS:
        folder = base / split
        if not folder.is_dir():
            problems.append(f"{folder}: missing split folder {split}/")
            continue
        for path in sorted(folder.iterdir()):
            if path.suffix.lower() not in IMAGE_SUFFIXES or not path.is_file():
                continue
            try:
                pid, _ = parse_market_name(path.name)
            except DatasetError as err:
                problems.append(f"{path}: {err}")
                continue
            if pid < JUNK_PID:
                problems.append(f"{path}: negative person id {pid} (only -1, junk, is allowed)")
                continue
            entries.append(ImportEntry(split, path.name, path))
    return entries, problems
