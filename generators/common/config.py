"""Settings sections every trained generator shares, and preset files.

A trained generator's config is a dataclass of sections (``model``, ``pose``,
``data``, ``train``, ``log``, ``runtime``); the sections below mean the same in
every plug-in, so the shared data pipeline (``generators.common.data``) and
training loop (``generators.common.loop``) read them directly. A plug-in adds its
own ``model`` and ``train`` sections.

Presets are TOML files in ``generators/<name>/presets/``, named by file stem or
given as a path; :func:`load_preset` layers the dataclass defaults, the preset
file and ``{"section.key": value}`` overrides (the CLI's ``--set``) and reports
every problem at once.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Mapping, TypeVar

from augreid import settings
from augreid.errors import ConfigError

T = TypeVar("T")


@dataclass
class PoseConfig:
    """How a pose becomes the generator's input maps and the pose mask its losses weight."""

    map_mode: Literal["disk", "gaussian"] = "disk"
    radius: float = 4.0
    sigma: float = 6.0
    mask_radius: float = 4.0


@dataclass
class DataConfig:
    """Which training pairs are built (``augreid.data.build_pairs``) and whether they are flipped."""

    max_pairs: int = 0
    different_cameras: bool = False
    min_visible: int = 0
    flip: bool = True


@dataclass
class LogConfig:
    """Every how many steps the loop logs scalars, writes previews and checkpoints; how many checkpoints it keeps."""

    log_every: int = 50
    image_every: int = 1000
    checkpoint_every: int = 2000
    keep_last: int = 3


@dataclass
class RuntimeConfig:
    """Loader workers, and the CUDA-only bfloat16 autocast and channels-last memory format."""

    num_workers: int = 0
    amp: bool = True
    channels_last: bool = True


def section_problems(pose: PoseConfig, data: DataConfig, log: LogConfig) -> list[str]:
    """Range checks of the shared sections, worded with their section names (``pose.radius, ...``)."""
    problems = []
    if pose.radius <= 0 or pose.mask_radius <= 0 or pose.sigma <= 0:
        problems.append("pose.radius, pose.mask_radius, pose.sigma: must be positive")
    if min(log.log_every, log.image_every, log.checkpoint_every, log.keep_last) < 1:
        problems.append("log.*: must be >= 1")
    if data.max_pairs < 0:
        problems.append(f"data.max_pairs: must be >= 0 (0 = all), got {data.max_pairs}")
    return problems


def plain(value: Any) -> Any:
    """A dataclass's ``asdict`` with tuples as lists: what JSON and TOML write and read back."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, dict):
        return {k: plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [plain(v) for v in value]
    return value


def preset_names(package: str) -> list[str]:
    """Stems of the ``presets/*.toml`` files shipped in ``package``."""
    folder = resources.files(package) / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def preset_text(package: str, preset: str | Path) -> tuple[str, str, str]:
    """``(text, name, source)`` of a preset given by name (a file of ``package``) or by path."""
    path = Path(preset)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist")
        return path.read_text(encoding="utf-8"), path.stem, str(path)
    resource = resources.files(package) / "presets" / f"{preset}.toml"
    if not resource.is_file():
        known = ", ".join(preset_names(package))
        raise ConfigError(f"unknown preset {preset!r} (known: {known}, or a path to a .toml file)")
    return resource.read_text(encoding="utf-8"), str(preset), f"preset {preset}"


def load_preset(
    cls: type[T], package: str, preset: str | Path, overrides: Mapping[str, Any] | None = None, *, what: str
) -> T:
    """``cls`` from its defaults, the preset (with ``name`` = its stem) and dotted overrides, validated.

    ``what`` names the settings in the error message (``"PG2 settings"``).
    """
    text, name, source = preset_text(package, preset)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: invalid TOML ({err})") from None
    layers = [
        settings.Layer(source, {"name": name, **data}),
        settings.Layer("the overrides", settings.nest(dict(overrides or {}))),
    ]
    return settings.load(cls, layers, what=f"{source}: {what}")
