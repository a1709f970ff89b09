"""The synth output folder: claiming it, the progress journal, the merged manifest.

Layout::

    OUT/bounding_box_train/*.jpg   the images (Market layout)
    OUT/manifest.jsonl             one line per kept image, sorted by file
    OUT/rejected.jsonl             one line per image removed by --min-quality
    OUT/synth.json                 settings, identity hash, counts, timings, provenance
    OUT/target_poses.{json,csv,png}
    OUT/contact_sheet.png
    OUT/.progress/rank<R>.jsonl    what each rank finished (merged into the manifest)

Crash safety: an image is written to a temporary file and renamed
(``write_image``); only then is its journal line appended. A kill leaves at
worst an image without a journal line (regenerated, with identical bytes, on
resume), a temporary file (deleted on resume) or a partial last journal line
(cut off on resume). Nothing half-written is ever taken for a finished image.

Images are not fsync'ed one by one: a sync per small file can cost more than
generating the image on a GPU. A killed process loses nothing that was
renamed (the data is in the page cache); for a power cut, resume also checks
that every recorded image ends with the JPEG end-of-image marker, and a
finished run calls ``os.sync()`` once before it is marked complete.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from augreid.errors import ConfigError
from augreid.io import atomic_write_bytes, atomic_write_json, atomic_write_text

IMAGES = "bounding_box_train"
RUN_JSON = "synth.json"
MANIFEST = "manifest.jsonl"
REJECTED = "rejected.jsonl"
PROGRESS = ".progress"


def dataset_fingerprint_of(run_json: dict[str, Any]) -> str | None:
    """The dataset fingerprint a synth.json names: synth writes it under ``data``, the copy control also top level."""
    return (run_json.get("data") or {}).get("dataset_fingerprint") or run_json.get("dataset_fingerprint")


def generator_hash_of(run_json: dict[str, Any]) -> str | None:
    """The generator hash a synth.json names: synth writes it as ``generator.hash``, the copy control top level."""
    generator = run_json.get("generator")
    if isinstance(generator, dict) and generator.get("hash"):
        return str(generator["hash"])
    return run_json.get("generator_hash")


def read_run_json(out: Path) -> dict | None:
    path = Path(out) / RUN_JSON
    if not path.is_file():
        return None
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}: damaged synth.json ({err}); delete the folder or choose another --out") from None


def _differences(old: dict, new: dict) -> list[str]:
    keys = sorted(set(old) | set(new))
    return [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]


def claim_output(out: Path, identity: dict, run_hash: str) -> dict | None:
    """Make ``out`` ours, or find the same run there to resume.

    Returns the previous synth.json when resuming, ``None`` for a fresh folder.
    Raises ``ConfigError`` when ``out`` holds something else.
    """
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out} is a file, not a folder")
    previous = read_run_json(out) if out.is_dir() else None
    if previous is None:
        if out.is_dir() and any(out.iterdir()):
            raise ConfigError(
                f"--out {out} is not empty and holds no {RUN_JSON}: it is not a synth output folder; "
                "choose a new or empty folder"
            )
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_json(out / RUN_JSON, {"status": "running", "run_hash": run_hash, "identity": identity})
        return None
    if previous.get("run_hash") != run_hash:
        diffs = _differences(previous.get("identity") or {}, identity)
        shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
        raise ConfigError(
            f"--out {out} holds a different synth run (differences: {shown or 'unknown'}); "
            "choose another --out, or delete the folder to start over"
        )
    return previous


def clean_temporaries(out: Path) -> int:
    """Delete temporary files left by a killed run; returns how many."""
    count = 0
    for folder in (Path(out), Path(out) / IMAGES, Path(out) / PROGRESS):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                count += 1
    return count


class Journal:
    """Append-only record of finished images for one rank."""

    def __init__(self, out: Path, rank: int) -> None:
        self.path = Path(out) / PROGRESS / f"rank{rank}.jsonl"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._repair_tail()
        self.handle = open(self.path, "a", encoding="utf-8")

    def _repair_tail(self) -> None:
        """Cut a partial last line left by a kill, so the next append starts a clean line."""
        if not self.path.is_file():
            return
        data = self.path.read_bytes()
        if data and not data.endswith(b"\n"):
            with open(self.path, "r+b") as handle:
                handle.truncate(data.rfind(b"\n") + 1)

    def append(self, records: list[dict]) -> None:
        if not records:
            return
        self.handle.write("".join(json.dumps(r, sort_keys=True) + "\n" for r in records))
        self.handle.flush()
        os.fsync(self.handle.fileno())

    def close(self) -> None:
        self.handle.close()


def read_journals(out: Path) -> dict[str, dict]:
    """Every finished image recorded by any rank, by file name (partial lines ignored)."""
    done: dict[str, dict] = {}
    folder = Path(out) / PROGRESS
    if not folder.is_dir():
        return done
    for path in sorted(folder.glob("rank*.jsonl")):
        with open(path, encoding="utf-8") as handle:
            for line in handle:
                try:
                    record = json.loads(line)
                except json.JSONDecodeError:
                    continue  # the partial last line of a killed run
                done[record["file"]] = record
    return done


JPEG_END = b"\xff\xd9"


def write_image(path: Path, data: bytes) -> None:
    """Temporary file + rename, without fsync (see the module docstring)."""
    atomic_write_bytes(path, data, fsync=False)


def is_complete_jpeg(path: Path) -> bool:
    try:
        with open(path, "rb") as handle:
            handle.seek(-2, os.SEEK_END)
            return handle.read(2) == JPEG_END
    except OSError:  # missing, or shorter than two bytes
        return False


def finished_files(out: Path, records: dict[str, dict]) -> set[str]:
    """Files whose journal line is there and, if kept, whose image is on disk and complete."""
    images = Path(out) / IMAGES
    return {name for name, r in records.items() if not r["kept"] or is_complete_jpeg(images / name)}


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    return atomic_write_text(path, "".join(json.dumps(r, sort_keys=True) + "\n" for r in rows))
