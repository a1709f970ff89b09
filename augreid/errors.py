"""Exceptions shared across augreid.

Every user-facing failure is an ``AugreidError`` (or subclass) whose message
names the offending path or value and says what is wrong, so the CLI can print
it without a traceback.
"""

from __future__ import annotations


class AugreidError(Exception):
    """Base class for errors that are the user's input, not a bug."""


class DatasetError(AugreidError):
    """A dataset folder, file name or image is missing or malformed."""


class KeypointError(AugreidError):
    """A keypoint CSV is missing or malformed."""


class ConfigError(AugreidError):
    """A recipe, preset or option is invalid."""
