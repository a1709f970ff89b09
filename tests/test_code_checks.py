"""The code's own checks: layered imports (import-linter), lint (ruff) and types (mypy), as configured in pyproject.toml."""

from __future__ import annotations

import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_imports_only_go_down_the_layers(extras):
    out = subprocess.run([extras.tool("lint-imports")], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_finds_nothing(extras):
    out = subprocess.run([extras.tool("ruff"), "check", "."], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-4000:]


def test_mypy_finds_nothing(extras):
    out = subprocess.run([extras.tool("mypy")], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-4000:] + out.stderr[-2000:]


def test_ruff_format_leaves_the_code_as_it_is(extras):
    out = subprocess.run(
        [extras.tool("ruff"), "format", "--check", "."], cwd=REPO, capture_output=True, text=True, timeout=300
    )
    assert out.returncode == 0, out.stdout[-4000:]
