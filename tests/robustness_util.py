"""Helpers of the tests/test_robustness*.py files (issue 15: bad input gives one line, nothing lost)."""

from __future__ import annotations

import hashlib
from pathlib import Path

from typer.testing import CliRunner

# The PG2 of tests/test_pg2.py: 32x16 images, N = 3, a few channels; trains in about a second.
TINY_GEN = {
    "model.image_size": "[32, 16]",
    "model.blocks": "3",
    "model.hidden": "8",
    "model.g2_hidden": "4",
    "model.d_hidden": "4",
    "model.d_layers": "2",
    "pose.radius": "1.5",
    "pose.mask_radius": "1.5",
    "data.max_pairs": "12",
    "train.batch_size": "4",
    "train.stage1_steps": "3",
    "train.stage2_steps": "3",
    "log.log_every": "1",
    "log.image_every": "100",
    "log.checkpoint_every": "3",
    "log.keep_last": "5",
}


def tiny_gen_args(**changes: str) -> list[str]:
    args: list[str] = []
    for key, value in {**TINY_GEN, **changes}.items():
        args += ["--set", f"{key}={value}"]
    return args


def invoke(*args: str):
    """Run ``augreid ARGS`` in-process; returns click's result."""
    from augreid.cli import app

    return CliRunner().invoke(app, [str(a) for a in args], catch_exceptions=True)


def assert_one_line_error(result, *fragments: str) -> str:
    """The command failed with exit 2 and exactly one ``error:`` line naming ``fragments``; no traceback."""
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert result.exit_code == 2, (result.exit_code, result.output)
    assert "Traceback" not in result.output
    errors = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.stderr
    for fragment in fragments:
        assert fragment in errors[0], (fragment, errors[0])
    return errors[0]


def tree_digest(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file below ``folder``: 'nothing lost' means this is unchanged."""
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }
