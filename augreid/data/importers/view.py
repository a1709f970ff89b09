"""The Market-layout *view* of another dataset, shared by every importer.

An importer turns a dataset in its own layout into an :class:`ImportPlan`: a list of
``(split, market_name, source_path)`` entries plus metadata. :func:`write_view`
checks the plan (all problems at once), then writes ``OUT/{bounding_box_train,query,
bounding_box_test}/`` with one symbolic link per entry (copies where the file system
refuses symbolic links) and, last, ``OUT/import.json``.

``import.json`` names the source (format, root as given and resolved, options, pid
shift, where each split came from, counts) and a fingerprint, the sha256 of the
sorted ``(split/market name, source relative path, size)`` list, so later outputs can
say what data they came from. An interrupted import leaves ``.import-pending.json``
and is resumed by the same command; a complete view of the same source is left as it
is; a different source is refused with a ``ConfigError``.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augreid.data.market import DISTRACTOR_PID, IMAGE_SUFFIXES, JUNK_PID, SPLITS, parse_market_name
from augreid.errors import ConfigError, DatasetError, is_environment_error, output_error
from augreid.io import atomic_write_bytes, atomic_write_json, clean_stale_temporaries, ensure_dir

VIEW_FILE = "import.json"
PENDING_FILE = ".import-pending.json"
VIEW_VERSION = 1
MAX_LISTED = 20  # problems spelled out in one error message
# errno values meaning "no symbolic links here" (FAT, some network shares, Windows without privilege).
_NO_SYMLINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}
# What identifies a view: a different value of any of these is a different source.
_IDENTITY = ("format", "source_resolved", "options", "fingerprint")


@dataclass(frozen=True)
class ImportEntry:
    """One image of the view: ``OUT/split/name`` will point at ``source``."""

    split: str
    name: str
    source: Path


@dataclass
class ImportPlan:
    """What an importer found: the entries, the facts import.json records, and the source's problems."""

    format: str
    root: Path  # the folder the source paths are relative to
    entries: list[ImportEntry] = field(default_factory=list)
    options: dict[str, str] = field(default_factory=dict)
    pid_shift: int = 0
    split: dict[str, str] = field(default_factory=dict)  # Market split -> where it came from
    notes: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)


class ImportProblems(DatasetError):
    """Every problem found in a source, raised together; ``problems`` holds them one per item."""

    def __init__(self, fmt: str, root: Path | str, problems: list[str]) -> None:
        self.problems = list(problems)
        lines = [f"{root}: {len(problems)} problem(s) in the {fmt} source, nothing was written:"]
        lines += [f"  - {p}" for p in problems[:MAX_LISTED]]
        if len(problems) > MAX_LISTED:
            lines.append(f"  ... and {len(problems) - MAX_LISTED} more")
        super().__init__("\n".join(lines))


@dataclass
class ImportResult:
    """The view written (or found complete): its folder, its import.json and how many files this run made."""

    out: Path
    info: dict[str, Any]
    created: int

    def format(self) -> str:
        """What the CLI prints: notes, counts per split and the next command."""
        state = f"{self.created} files linked" if self.created else "already complete, nothing changed"
        lines = [f"{self.info['format']} from {self.info['source']} -> {self.out} ({state}, {self.info['link_mode']})"]
        lines += [f"note: {note}" for note in self.info.get("notes", [])]
        lines.append(f"{'split':<20}{'ids':>7}{'images':>9}  cameras")
        for split in SPLITS:
            counts = self.info["counts"][split]
            cams = ",".join(map(str, counts["cameras"])) or "-"
            lines.append(f"{split:<20}{counts['ids']:>7}{counts['images']:>9}  {cams}")
        lines.append(f"fingerprint: {self.info['fingerprint']}")
        lines.append(f"now: augreid data check {self.out}")
        return "\n".join(lines)


def write_view(plan: ImportPlan, out: str | Path, source: str) -> ImportResult:
    """Check ``plan`` and write its view into ``out``; ``source`` is the root as the user gave it.

    Raises :class:`ImportProblems` (a ``DatasetError``) with every problem of the source
    before anything is written, and ``ConfigError`` when ``out`` holds something else
    than a view of this very source.
    """
    out = Path(out).expanduser()
    sizes = _validate(plan)
    info = _info(plan, source, sizes)
    existing = _existing_identity(out)
    if existing is not None and any(existing.get(key) != info[key] for key in _IDENTITY):
        differs = [key for key in _IDENTITY if existing.get(key) != info[key]]
        hint = " (images were added, removed or changed in the source)" if differs == ["fingerprint"] else ""
        raise ConfigError(
            f"{out} already holds a view of another source ({existing.get('format')} from "
            f"{existing.get('source_resolved')}; differs in: {', '.join(differs)}{hint}): "
            "choose another output folder or delete it"
        )
    if existing is None and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty folder nor an import view: choose another output folder")
    complete = (out / VIEW_FILE).is_file()
    ensure_dir(out)
    if not complete:
        atomic_write_json(out / PENDING_FILE, {key: info[key] for key in _IDENTITY})
    created, modes = _link_all(plan, out)
    info["link_mode"] = "+".join(sorted(modes)) or "symlink"
    if complete and not created:
        return ImportResult(out, json.loads((out / VIEW_FILE).read_text(encoding="utf-8")), 0)
    atomic_write_json(out / VIEW_FILE, info)
    (out / PENDING_FILE).unlink(missing_ok=True)
    return ImportResult(out, info, created)


def _validate(plan: ImportPlan) -> dict[ImportEntry, int]:
    """Sizes of all entries' sources; every problem of the plan raised together."""
    problems = list(plan.problems)
    sizes: dict[ImportEntry, int] = {}
    seen: dict[tuple[str, str], Path] = {}
    for entry in plan.entries:
        key = (entry.split, entry.name)
        if entry.split not in SPLITS:
            problems.append(f"{entry.source}: unknown split {entry.split!r} (importer bug)")
            continue
        if key in seen:
            problems.append(f"{entry.source} and {seen[key]} both become {entry.split}/{entry.name}")
            continue
        seen[key] = entry.source
        try:
            parse_market_name(entry.name)
        except DatasetError as err:
            problems.append(f"{entry.source}: {err} (importer bug)")
            continue
        if Path(entry.name).suffix.lower() not in IMAGE_SUFFIXES:
            problems.append(
                f"{entry.source}: {entry.name} is not named as an image ({', '.join(sorted(IMAGE_SUFFIXES))})"
            )
            continue
        try:
            sizes[entry] = entry.source.stat().st_size
        except FileNotFoundError:
            problems.append(f"{entry.source}: image listed but absent")
        except OSError as err:
            problems.append(f"{entry.source}: cannot read ({err.strerror})")
    for split in SPLITS:
        if not any(entry.split == split for entry in plan.entries):
            problems.append(f"no images for {split}/")
    if problems:
        raise ImportProblems(plan.format, plan.root, problems)
    return sizes


def _relative(path: Path, root: Path) -> str:
    try:
        return path.absolute().relative_to(root.absolute()).as_posix()
    except ValueError:
        return path.absolute().as_posix()


def fingerprint(plan: ImportPlan, sizes: dict[ImportEntry, int]) -> str:
    """sha256 of the sorted ``(split/market name, source path relative to the root, size)`` list."""
    rows = sorted(
        (f"{entry.split}/{entry.name}", _relative(entry.source, plan.root), sizes[entry]) for entry in plan.entries
    )
    digest = hashlib.sha256()
    for name, rel, size in rows:
        digest.update(f"{name}\t{rel}\t{size}\n".encode())
    return digest.hexdigest()


def _info(plan: ImportPlan, source: str, sizes: dict[ImportEntry, int]) -> dict[str, Any]:
    counts: dict[str, dict[str, Any]] = {}
    for split in SPLITS:
        labels = [parse_market_name(e.name) for e in plan.entries if e.split == split]
        counts[split] = {
            "images": len(labels),
            "ids": len({pid for pid, _ in labels if pid > DISTRACTOR_PID}),
            "cameras": sorted({cam for _, cam in labels}),
            "distractor_images": sum(pid == DISTRACTOR_PID for pid, _ in labels),
            "junk_images": sum(pid == JUNK_PID for pid, _ in labels),
        }
    return {
        "version": VIEW_VERSION,
        "format": plan.format,
        "source": source,
        "source_resolved": str(plan.root.absolute()),
        "options": dict(plan.options),
        "split": dict(plan.split),
        "pid_shift": plan.pid_shift,
        "notes": list(plan.notes),
        "meta": dict(plan.meta),
        "counts": counts,
        "fingerprint": fingerprint(plan, sizes),
    }


def _existing_identity(out: Path) -> dict[str, Any] | None:
    """The identity recorded in ``out`` (complete view or interrupted import), or None."""
    for name in (VIEW_FILE, PENDING_FILE):
        path = out / name
        if path.is_file():
            try:
                data = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, json.JSONDecodeError) as err:
                raise ConfigError(f"{path}: unreadable ({err}); delete {out} and import again") from None
            return data if isinstance(data, dict) else {}
    return None


def _link_all(plan: ImportPlan, out: Path) -> tuple[int, set[str]]:
    """Make every entry's link (or copy); returns how many were made and the kinds present."""
    for split in SPLITS:
        clean_stale_temporaries(ensure_dir(out / split))
    wanted = {(e.split, e.name) for e in plan.entries}
    strays = [
        f"{split}/{p.name}"
        for split in SPLITS
        for p in sorted((out / split).iterdir())
        if p.suffix.lower() in IMAGE_SUFFIXES and (split, p.name) not in wanted
    ]
    if strays:
        raise ConfigError(
            f"{out} holds {len(strays)} image(s) that are not part of this import (e.g. {', '.join(strays[:3])}): "
            "they would be read as data; move them away or use another output folder"
        )
    created, modes, use_copies = 0, set(), False
    for entry in plan.entries:
        dst = out / entry.split / entry.name
        target = str(entry.source.absolute())
        if dst.is_symlink() and os.readlink(dst) == target:
            modes.add("symlink")
            continue
        if not dst.is_symlink() and dst.is_file() and dst.stat().st_size == entry.source.stat().st_size:
            modes.add("copy")
            continue
        if not use_copies:
            try:
                _symlink(target, dst)
                modes.add("symlink")
                created += 1
                continue
            except OSError as err:
                if err.errno not in _NO_SYMLINKS:
                    raise _mapped(err, dst) from None
                use_copies = True
        atomic_write_bytes(dst, entry.source.read_bytes(), fsync=False)
        modes.add("copy")
        created += 1
    return created, modes


def _symlink(target: str, dst: Path) -> None:
    """Point ``dst`` at ``target``, replacing whatever is there in one step."""
    if not os.path.lexists(dst):
        os.symlink(target, dst)
        return
    tmp = dst.with_name(f".{dst.name}.{secrets.token_hex(4)}.tmp")
    os.symlink(target, tmp)
    try:
        os.replace(tmp, dst)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _mapped(err: OSError, path: Path) -> BaseException:
    return output_error(err, path) if is_environment_error(err) else err
