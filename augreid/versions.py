"""What software produced a result: package versions and the git revision of the code."""

from __future__ import annotations

import platform
import subprocess
from collections.abc import Iterable
from importlib import metadata
from pathlib import Path
from typing import Any

CORE_PACKAGES = ("augreid", "torch", "torchvision", "torchreid", "faiss-cpu", "faiss-gpu-cu12", "numpy", "scipy")


def package_versions(names: Iterable[str] = CORE_PACKAGES) -> dict[str, str]:
    """``{"python": ..., package: version}`` for the installed ones among ``names``."""
    out = {"python": platform.python_version()}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return out


def git_revision(start: Path | None = None) -> dict[str, Any]:
    """The commit of the code, and whether the tree had local changes (``unknown`` outside git)."""
    folder = start or Path(__file__).resolve().parent
    try:
        rev = subprocess.run(["git", "rev-parse", "HEAD"], cwd=folder, capture_output=True, text=True, timeout=10)
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return {"revision": "unknown", "dirty": None}
    if rev.returncode != 0:
        return {"revision": "unknown", "dirty": None}
    return {"revision": rev.stdout.strip(), "dirty": bool(dirty.stdout.strip()) if dirty.returncode == 0 else None}
