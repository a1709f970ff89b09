"""Named plug-ins, imported on first use.

Each extension point (generators, re-ID methods, pose estimators, dataset
importers) keeps a table ``name -> plug-in``, where a plug-in may be given as a
``"module:attribute"`` string: listing the names never imports the plug-ins'
code (or their heavy dependencies), and the module is imported the first time
the name is asked for. :class:`Registry` wraps such a table; the table stays a
plain dict that the extension point's module owns (one line per plug-in).
"""

from __future__ import annotations

import importlib
from collections.abc import MutableMapping
from typing import Generic, TypeVar, cast

from augreid.errors import ConfigError

T = TypeVar("T")


class Registry(Generic[T]):
    """``name -> T`` where an entry may be a ``"module:attribute"`` string resolved on first :meth:`get`.

    ``kind`` names what is registered in error messages ("generator",
    "dataset format"). ``entries`` is used as is, not copied, so the module
    that owns it (and a test's ``monkeypatch.setitem``) changes the registry.
    """

    def __init__(self, kind: str, entries: MutableMapping[str, T | str] | None = None) -> None:
        self.kind = kind
        self.entries: MutableMapping[str, T | str] = {} if entries is None else entries

    def register(self, name: str, target: T | str) -> None:
        """Make ``name`` refer to ``target`` (an object, or ``"module:attribute"`` imported on first use)."""
        self.entries[name] = target

    def unregister(self, name: str) -> None:
        """Forget ``name`` (nothing happens when it is not registered)."""
        self.entries.pop(name, None)

    def names(self) -> list[str]:
        return sorted(self.entries)

    def __contains__(self, name: object) -> bool:
        return name in self.entries

    def get(self, name: str) -> T:
        """The plug-in called ``name``, importing its module if it is given as a string.

        Raises :class:`ConfigError` for an unknown name (listing the known ones) and
        for a target that cannot be imported (naming the target and the reason).
        """
        if name not in self.entries:
            raise ConfigError(f"unknown {self.kind} {name!r}; known: {', '.join(self.names()) or 'none'}")
        target = self.entries[name]
        if isinstance(target, str):
            module, _, attr = target.partition(":")
            if not module or not attr:
                raise ConfigError(f"{self.kind} {name!r}: {target!r} is not 'module:attribute'")
            try:
                resolved = getattr(importlib.import_module(module), attr)
            except (ImportError, AttributeError) as err:
                raise ConfigError(f"{self.kind} {name!r} cannot be imported from {target} ({err})") from None
            self.entries[name] = resolved
            return cast(T, resolved)
        return target
