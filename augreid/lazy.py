"""Package re-exports that import their module on first use (PEP 562).

The packages that wrap torch and torchreid (``augreid.reid``, ``augreid.evaluation``,
``augreid.synth``, ``generators.pg2``) re-export their main functions. Importing
them eagerly would make every command's ``--help`` and every settings dataclass
pull in torch and torchreid (seconds of imports, where the rest takes a fraction of
one), so the package only names them and the module is imported when a name is used.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that resolves ``name`` from ``exports[name]`` (a module path)."""

    def __getattr__(name: str) -> Any:
        if name not in exports:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(exports[name]), name)

    return __getattr__
