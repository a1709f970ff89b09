"""Small file helpers shared by every stage: atomic writes and hashing.

Long jobs are interrupted; a half-written CSV or image must never be mistaken
for a finished one, so everything goes through a temporary file in the same
folder followed by ``os.replace`` (atomic on POSIX).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from augreid.errors import OutputError, is_environment_error, output_error

TMP_SUFFIX = ".tmp"
# mkstemp adds 8 characters from [a-z0-9_] between our prefix and suffix.
_TMP_RE = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def atomic_write_bytes(path: str | os.PathLike, data: bytes, *, fsync: bool = True) -> Path:
    """Write ``data`` to ``path`` so that readers see the old file or the whole new one.

    ``fsync=False`` skips the flush to disk: the rename stays atomic, but a power
    loss may leave an empty file. Bulk writers (synth) check their files on resume instead.
    """
    path = Path(path)
    ensure_dir(path.parent)
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=TMP_SUFFIX)
    except OSError as err:
        raise _mapped(err, path) from None
    try:
        # mkstemp creates 0600 files; give the result the permissions a plain open() would.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        # A full disk must not leave a partial temporary file behind, nor a traceback.
        Path(tmp).unlink(missing_ok=True)
        if isinstance(err, OSError):
            raise _mapped(err, path) from None
        raise
    return path


def ensure_dir(path: str | os.PathLike) -> Path:
    """``mkdir -p`` that fails with an ``OutputError`` naming the folder (read-only, a file, /proc...)."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise _mapped(err, path) from None
    if not path.is_dir():
        raise OutputError(f"cannot write into {path}: it is not a folder")
    return path


def _mapped(err: OSError, path: Path) -> BaseException:
    return output_error(err, path) if is_environment_error(err) else err


def clean_stale_temporaries(folder: str | os.PathLike) -> list[Path]:
    """Delete the ``.NAME.XXXX.tmp`` files that a killed atomic write left in ``folder``.

    Only names of the form this module creates are touched, so nothing a user
    put there is removed. Returns the deleted paths.
    """
    folder = Path(folder)
    if not folder.is_dir():
        return []
    removed = []
    for path in folder.glob(f".*{TMP_SUFFIX}"):
        if path.is_file() and _TMP_RE.match(path.name):
            path.unlink(missing_ok=True)
            removed.append(path)
    return removed


@functools.lru_cache(maxsize=1)
def _umask() -> int:
    # Reading the umask means setting it; do it once, not from every writer thread.
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_write_json(path: str | os.PathLike, obj: Any) -> Path:
    return atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(chunk), b""):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def augreid_home() -> Path:
    """Where augreid keeps what it makes for itself (the demo dataset, feature caches, fraction subsets)."""
    return Path(os.environ.get("AUGREID_HOME", Path.home() / ".cache" / "augreid")).expanduser()


def portable_path(path: str | os.PathLike | None, start: str | os.PathLike | None = None) -> str | None:
    """``path`` as committed results should record it: relative to ``start`` (default: the working folder).

    A path below ``start``, or beside it (``../shared/data/...``), becomes relative;
    one below :func:`augreid_home` (and not below ``start``) is written ``$AUGREID_HOME/...``,
    which names the same place on any machine; one that shares nothing but ``/`` with
    ``start`` stays absolute, since a long ``../../..`` chain is no more portable.
    Relative paths are returned as given.
    """
    if path is None:
        return None
    text = os.fspath(path)
    if not os.path.isabs(text):
        return text
    base = os.path.abspath(start if start is not None else os.getcwd())
    home = os.path.abspath(augreid_home())
    if _below(text, home) and not _below(text, base):
        return "$AUGREID_HOME/" + Path(os.path.relpath(text, home)).as_posix()
    common = os.path.commonpath([base, text])
    if common == os.path.dirname(common):  # only the file system root in common
        return text
    relative = os.path.relpath(text, base)
    return relative if relative.count("..") <= 2 else text


def _below(path: str, folder: str) -> bool:
    return os.path.commonpath([path, folder]) == folder
