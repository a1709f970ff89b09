"""Settings of a synth run: one dataclass, defaults here, overrides from a TOML file or the CLI.

A TOML file may hold the keys at top level or under ``[synth]``; unknown keys
are an error (a typo must not silently fall back to a default). Loading goes
through ``augreid.settings``, like every command's settings.

Settings split in two: those that change what is generated (part of the run's
identity, see ``identity_settings``; resuming with a different value is
refused) and runtime ones (workers, threads, device, pictures) that do not.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augreid import settings
from augreid.errors import ConfigError
from augreid.poses.targets import MODES

RUNTIME_KEYS = frozenset({"num_workers", "writer_threads", "device", "contact_rows", "plot_examples"})


SCORES = ("pose", "pckh", "identity")  # what a --min-quality filter may name (synth/quality.py scores them)
DEFAULT_MIN_PCKH = 0.2


def default_min_quality() -> dict[str, float]:
    """The filter synth applies when none is given."""
    return {"pckh": DEFAULT_MIN_PCKH}


@dataclass
class SynthConfig:
    # what to generate
    poses: str = "clustered"  # clustered | random | file
    num_poses: int = 8  # K; the canonical-pose setting of pose-normalised re-ID work
    pose_file: str | None = None
    per_id: int = 1  # condition images per identity
    max_ids: int | None = None  # first N training identities only (quick runs)
    batch_size: int = 32
    seed: int = 0
    min_quality: dict[str, float] = field(default_factory=default_min_quality)  # PCKh >= 0.2 (quality.py); {} = none
    amp: bool = True  # bfloat16 autocast on CUDA; ignored on CPU
    jpeg_quality: int = 95
    # target poses
    min_cluster_joints: int = 8  # joints a training pose needs to take part in clustering
    min_target_joints: int = 14  # joints (incl. both shoulders and hips) a target needs
    min_torso_fraction: float = 0.15  # shorter torsos (in image heights) are failed detections
    missing_penalty: float = 1.0  # medoid cost of a missing joint, in squared torso lengths
    kmeans_n_init: int = 10
    kmeans_max_rounds: int = 20
    # quality scores
    mask_radius_fraction: float = 0.0625  # limb radius of the target mask, in image heights (8 px at 128)
    border: int = 2  # columns at each side used to estimate the background
    min_foreground_contrast: float = 0.08  # lower bound of the foreground threshold (RGB distance in [0, 1])
    # runtime
    num_workers: int = -1  # DataLoader workers decoding condition images; -1 = auto (CUDA: up to 4, CPU: 1)
    writer_threads: int = 2  # threads scoring and writing JPEGs
    device: str = "auto"
    contact_rows: int = 8
    plot_examples: int = 5

    def __post_init__(self) -> None:
        # Built directly (not only through load_synth_config): check here too.
        settings.raise_problems(self, "synth settings")

    def problems(self) -> list[str]:
        problems = []
        if self.poses not in MODES:
            problems.append(f"poses: must be one of {', '.join(MODES)}, got {self.poses!r}")
        if self.poses == "file" and not self.pose_file:
            problems.append("pose_file: --poses file needs --pose-file PATH (a keypoint CSV)")
        if self.poses != "file" and self.pose_file:
            problems.append(f"pose_file: --pose-file is only used with --poses file (got --poses {self.poses})")
        for name in ("num_poses", "per_id", "batch_size", "jpeg_quality", "kmeans_n_init", "kmeans_max_rounds"):
            if getattr(self, name) < 1:
                problems.append(f"{name}: must be at least 1, got {getattr(self, name)}")
        if self.max_ids is not None and self.max_ids < 1:
            problems.append(f"max_ids: must be at least 1, got {self.max_ids}")
        if self.jpeg_quality > 100:
            problems.append(f"jpeg_quality: must be at most 100, got {self.jpeg_quality}")
        for key, value in self.min_quality.items():
            if key not in SCORES:
                problems.append(f"min_quality: unknown quality filter {key!r}: use {' or '.join(SCORES)}")
            elif not isinstance(value, (int, float)) or not -1.0 <= float(value) <= 1.0:
                problems.append(f"min_quality: {key}={value!r} must be a number in [-1, 1]")
        return problems

    def identity_settings(self) -> dict[str, Any]:
        """Settings that change the generated set (compared when resuming).

        The pose file enters by content (its hash, added by the caller), not by
        path, so that a resume may name the same file differently."""
        return {k: v for k, v in dataclasses.asdict(self).items() if k not in RUNTIME_KEYS and k != "pose_file"}

    def replace(self, **changes: Any) -> "SynthConfig":
        return dataclasses.replace(self, **changes)


def parse_min_quality(items: list[str] | None) -> dict[str, float]:
    """``["pose=0.5", "identity=0.3"]`` or ``["pose=0.5,identity=0.3"]`` -> dict."""
    out: dict[str, float] = {}
    for item in items or []:
        for part in item.split(","):
            if not part.strip():
                continue
            if part.strip().lower() == "none":  # no filter at all, not even the default PCKh one
                continue
            key, sep, value = part.partition("=")
            if not sep:
                raise ConfigError(f"--min-quality expects NAME=VALUE (e.g. pose=0.5), got {part!r}")
            try:
                out[key.strip()] = float(value)
            except ValueError:
                raise ConfigError(f"--min-quality {key.strip()}: {value!r} is not a number") from None
    return out


def load_synth_config(path: str | Path | None = None, **overrides: Any) -> SynthConfig:
    """Defaults, then the TOML file (if any), then non-None ``overrides``."""
    return settings.load(SynthConfig, settings.command_layers(path, "synth", overrides), what="synth settings")
