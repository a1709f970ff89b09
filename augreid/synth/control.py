"""``augreid synth-copy``: the copy-condition control set of a finished synth folder.

For every image kept in a synth folder's ``manifest.jsonl``, a byte copy of its condition
image (the real training photo given to the generator; the manifest calls it ``source``)
under the synthetic file name: same names, pids, camera and count, so real + control
differs from real + synthetic only in "a new pose" versus "the same photo again". The
layout is synth's (``synth.json`` written last); training reads it like any synth folder.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path


from augreid import __version__
from augreid.data.market import IMAGE_SUFFIXES, TRAIN, MarketDataset, load_market, parse_market_name
from augreid.data.sources import resolve_source
from augreid.errors import ConfigError, DatasetError
from augreid.io import atomic_write_json, clean_stale_temporaries, ensure_dir, portable_path, sha256_file
from augreid.progress import progress_bar
from augreid.synth import output as outdir

CONTROL = "copy-condition"
SHOWN = 20  # problems listed in one error message


@dataclass
class ControlResult:
    """Where the control set is and what it holds."""

    out: Path
    counts: dict[str, int]  # images, identities, conditions


def copy_control(
    source: str | Path,
    out: str | Path,
    data: str | Path | None = None,
    train_keypoints: str | Path | None = None,
    progress: bool = False,
) -> ControlResult:
    """Write (or find already written) the copy-condition control set of ``source`` in ``out``.

    ``data`` is the dataset the synth set was made from (``None``: the demo dataset),
    resolved as ``augreid synth`` does. Raises ``DatasetError`` when ``source`` is not
    a finished synth folder, was made from another dataset, or names condition images
    that are not training images of the same identity (all such rows in one message);
    ``ConfigError`` when ``out`` holds anything but this control set or a partial one.
    A complete ``out`` from the same source manifest is returned untouched; a partial
    one (no ``synth.json``) is written again from scratch.
    """
    source, out = Path(source).expanduser(), Path(out).expanduser()
    settings = _finished_source(source)
    manifest = source / outdir.MANIFEST
    manifest_sha = sha256_file(manifest)
    dataset = load_market(resolve_source(data, train_keypoints=train_keypoints).root, require_eval_splits=False)
    fingerprint = dataset.fingerprint()
    wanted = outdir.dataset_fingerprint_of(settings)
    if wanted != fingerprint:
        raise DatasetError(
            f"synth folder {source} was made from dataset {wanted} but {dataset.root} has fingerprint "
            f"{fingerprint}: pass the dataset it was made from with --data"
        )
    rows = _plan(source, _read_rows(manifest), dataset)
    images = out / outdir.IMAGES
    previous = _claim(out, source, manifest_sha)
    if previous is not None and all((images / row["name"]).is_file() for row in rows):
        return ControlResult(out, previous["counts"])

    (out / outdir.RUN_JSON).unlink(missing_ok=True)  # a complete-looking folder with files missing is redone too
    for folder in (out, ensure_dir(images)):
        clean_stale_temporaries(folder)
    for stale in set(os.listdir(images)) - {row["name"] for row in rows}:  # left by an earlier partial run
        (images / stale).unlink()
    for row in progress_bar(rows, desc="synth-copy", unit="img", disable=not progress, dynamic_ncols=True):
        shutil.copyfile(dataset.root / TRAIN / row.pop("condition_name"), images / row.pop("name"))
    outdir.write_jsonl(out / outdir.MANIFEST, rows)
    counts = {
        "images": len(rows),
        "identities": len({r["pid"] for r in rows}),
        "conditions": len({r["condition"] for r in rows}),
    }
    os.sync()  # the copies are durable before the folder is marked complete
    here = out.resolve().parent
    atomic_write_json(
        out / outdir.RUN_JSON,
        {
            "status": "complete",
            "control": CONTROL,
            "dataset_fingerprint": fingerprint,
            "generator_hash": f"{CONTROL}:{manifest_sha}",
            "source": portable_path(source.resolve(), here),
            "source_manifest_sha256": manifest_sha,
            "source_run_hash": settings.get("run_hash"),
            "source_generator": settings.get("generator"),
            "camera": settings.get("camera"),
            "counts": counts,
            "data": {"root": portable_path(dataset.root.resolve(), here), "dataset_fingerprint": fingerprint},
            "augreid": __version__,
        },
    )
    return ControlResult(out, counts)


def _finished_source(source: Path) -> dict:
    """The synth.json of ``source``, or a ``DatasetError`` saying how to get a finished synth folder."""
    settings = outdir.read_run_json(source) if source.is_dir() else None
    if settings is None:
        raise DatasetError(f"{source} is not a synth folder (no {outdir.RUN_JSON}): make one with `augreid synth`")
    if settings.get("status") != "complete":
        raise DatasetError(
            f"synth folder {source} is unfinished ({outdir.RUN_JSON} status {settings.get('status')!r}): "
            f"finish it by running the same `augreid synth --out {source} ...` command again"
        )
    if settings.get("control"):
        raise DatasetError(f"{source} is itself a {settings['control']} control set: pass the synth folder instead")
    if not (source / outdir.MANIFEST).is_file():
        raise DatasetError(f"synth folder {source} has no {outdir.MANIFEST}: run `augreid synth` again to write it")
    return settings


def _read_rows(manifest: Path) -> list[dict]:
    rows = []
    for number, line in enumerate(manifest.read_text(encoding="utf-8").splitlines(), 1):
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as err:
            raise DatasetError(f"{manifest}: line {number} is not JSON ({err})") from None
    if not rows:
        raise DatasetError(f"{manifest} lists no image (were all removed by --min-quality?): nothing to copy")
    return sorted(rows, key=lambda r: str(r.get("file")))


def _plan(source: Path, rows: list[dict], dataset: MarketDataset) -> list[dict]:
    """The control manifest rows (plus ``name`` and ``condition_name``, the files to copy), or a
    ``DatasetError`` listing every row whose condition is not a training image of its own pid,
    and every image that is in the source folder or in its manifest but not in both."""
    train = dataset.by_name(TRAIN)
    held_out = {r.name for r in (*dataset.query, *dataset.gallery)}
    problems: list[str] = []
    planned: dict[str, dict] = {}
    for row in rows:
        if not {"file", "pid", "source"} <= set(row):
            problems.append(f"row {row}: needs file, pid and source (the condition image)")
            continue
        name, pid, condition = Path(row["file"]).name, int(row["pid"]), str(row["source"])
        folder, _, condition_name = condition.rpartition("/")  # the manifest writes bounding_box_train/NAME
        record, (name_pid, camid) = train.get(condition_name), parse_market_name(name)
        if name in planned or name_pid != pid:
            problems.append(f"{name}: listed twice, or its name does not say pid {pid}")
        if folder not in ("", TRAIN) or condition_name in held_out:
            problems.append(f"{name}: condition {condition} is not a training image (query/gallery?)")
        elif record is None or record.pid != pid:
            found = "not found" if record is None else f"pid {record.pid}"
            problems.append(f"{name}: condition {condition} is {found} in {dataset.root / TRAIN}, not pid {pid}")
        planned[name] = {"file": row["file"], "pid": pid, "camid": camid, "condition": condition, "control": CONTROL}
        planned[name].update(condition_rank=row.get("condition_rank"), name=name, condition_name=condition_name)
    on_disk = {p.name for p in (source / outdir.IMAGES).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES}
    problems += [f"{n}: in {outdir.IMAGES}/ but not in the manifest" for n in sorted(on_disk - set(planned))]
    problems += [f"{n}: in the manifest but not in {outdir.IMAGES}/" for n in sorted(set(planned) - on_disk)]
    if problems:
        more = f"; and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise DatasetError(
            f"{source / outdir.MANIFEST}: {len(problems)} problem(s): {'; '.join(problems[:SHOWN])}{more}"
        )
    return list(planned.values())


def _claim(out: Path, source: Path, manifest_sha: str) -> dict | None:
    """The synth.json of a control set of the same source manifest in ``out``, or ``None`` to (re)write it.

    ``ConfigError`` when ``out`` is a file, the source itself, another synth or control
    set, or a non-empty folder that a partial control run cannot have left.
    """
    if out.exists() and (not out.is_dir() or out.resolve() == source.resolve()):
        raise ConfigError(f"--out {out} is a file or the synth folder itself: choose another folder")
    previous = outdir.read_run_json(out) if out.is_dir() else None
    if previous is None:
        ours = {outdir.IMAGES, outdir.MANIFEST}
        strangers = [n for n in (os.listdir(out) if out.is_dir() else []) if n not in ours and not n.endswith(".tmp")]
        if strangers:
            raise ConfigError(
                f"--out {out} is not empty ({strangers[0]}) and holds no {outdir.RUN_JSON}: use a new folder"
            )
        return None
    if previous.get("control") != CONTROL:
        raise ConfigError(f"--out {out} holds a synth run, not a {CONTROL} control set: choose another folder")
    if previous.get("source_manifest_sha256") != manifest_sha:
        raise ConfigError(
            f"--out {out} holds the control set of {previous.get('source')} (manifest sha256 "
            f"{str(previous.get('source_manifest_sha256'))[:12]}), not of {source} (manifest sha256 "
            f"{manifest_sha[:12]}): choose another --out, or delete the folder to start over"
        )
    return previous
