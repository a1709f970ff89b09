"""A re-ID run folder: what may be resumed and what ``--overwrite`` may delete."""

from __future__ import annotations

import shutil
from pathlib import Path

from augreid.errors import ConfigError
from augreid.io import atomic_write_text, clean_stale_temporaries
from augreid.reid.checkpoint import CHECKPOINT_NAME, RUN_JSON
from augreid.reid.config import ReidConfig

CONFIG_NAME = "config.toml"
TENSORBOARD_DIR = "tensorboard"
CONFIG_HEADER = "# Resolved settings of this run"  # the first line ReidConfig.to_toml writes
OWN_FILES = (CHECKPOINT_NAME, RUN_JSON, CONFIG_NAME)


def is_augreid_run(run_dir: Path) -> bool:
    config = run_dir / CONFIG_NAME
    try:
        return config.is_file() and config.read_text(encoding="utf-8").startswith(CONFIG_HEADER)
    except (OSError, UnicodeDecodeError):
        return False


def prepare_run_dir(run_dir: Path, config: ReidConfig, resume: bool, overwrite: bool) -> bool:
    """Create ``run_dir`` or check it holds this very run; return True when there is a checkpoint to resume.

    ``overwrite`` deletes only what train-reid writes, and only in a folder that
    is an augreid re-ID run: a user's folder that merely holds a ``tensorboard/``
    or a ``checkpoint.pth`` is never touched.
    """
    if run_dir.exists() and not run_dir.is_dir():
        raise ConfigError(f"--out {run_dir} is a file, not a folder")
    ours = is_augreid_run(run_dir)
    non_empty = run_dir.is_dir() and any(run_dir.iterdir())
    if non_empty and not ours:
        raise ConfigError(f"{run_dir} is not empty and holds no augreid re-ID run; choose another --out")
    config_path, checkpoint = run_dir / CONFIG_NAME, run_dir / CHECKPOINT_NAME
    if ours and not overwrite:
        if config_path.read_text(encoding="utf-8") != config.to_toml():
            raise ConfigError(
                f"{run_dir} holds a run with other settings ({config_path}); choose another --out, "
                "or pass --overwrite to start it again"
            )
        if checkpoint.is_file() and not resume:
            raise ConfigError(f"{run_dir} already has a checkpoint; pass --resume to continue it or --overwrite")
    if ours:
        clean_stale_temporaries(run_dir)  # a SIGKILL during a checkpoint write leaves one behind
    if ours and overwrite:
        for name in OWN_FILES:
            (run_dir / name).unlink(missing_ok=True)
        shutil.rmtree(run_dir / TENSORBOARD_DIR, ignore_errors=True)
    try:
        run_dir.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise ConfigError(f"--out {run_dir}: cannot create the folder ({err.strerror})") from None
    atomic_write_text(config_path, config.to_toml())
    return resume and checkpoint.is_file()
