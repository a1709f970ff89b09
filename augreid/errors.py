"""Exceptions shared across augreid.

Every user-facing failure is an ``AugreidError`` (or subclass) whose message
names the offending path or value and says what is wrong, so the CLI can print
it without a traceback.
"""

from __future__ import annotations

import errno


class AugreidError(Exception):
    """Base class for errors that are the user's input, not a bug."""


class DatasetError(AugreidError):
    """A dataset folder, file name or image is missing or malformed."""


class KeypointError(AugreidError):
    """A keypoint CSV is missing or malformed."""


class ConfigError(AugreidError):
    """A recipe, preset or option is invalid."""


class OutputError(AugreidError):
    """An output path cannot be written: disk full, read-only, no permission, not a folder."""


# errno values that describe the user's file system, not a bug in augreid.
_ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a path component is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "exists and is a file, not a folder",
    errno.ENOENT: "no such file or folder, and none can be created there (e.g. under /proc)",
}


def is_environment_error(err: BaseException) -> bool:
    """True for an ``OSError`` caused by where the user asked us to read or write."""
    return isinstance(err, OSError) and err.errno in _ENVIRONMENT_ERRNOS


def output_error(err: OSError, path: object | None = None, action: str = "cannot write") -> OutputError:
    """A one-line ``OutputError`` for an ``OSError``, naming the path and the reason."""
    where = path if path is not None else (err.filename or "a file")
    reason = (_ENVIRONMENT_ERRNOS.get(err.errno) if err.errno is not None else None) or err.strerror or str(err)
    detail = f" [{err.strerror}]" if err.strerror and err.strerror.lower() != reason else ""
    return OutputError(f"{action} {where}: {reason}{detail}")


def user_message(err: AugreidError) -> str:
    """What ``err`` says, without the traceback torch adds to an error raised in a DataLoader worker.

    torch re-raises a worker's exception in the main process as the same type, its message being
    "Caught X in DataLoader worker process N. Original Traceback ..." with the original message last.
    """
    text = str(err)
    if not (text.startswith("Caught ") and "Original Traceback" in text):
        return text
    name = f"{type(err).__module__}.{type(err).__qualname__}: "
    at = text.rfind(name)
    return text[at + len(name) :].strip() if at >= 0 else text
