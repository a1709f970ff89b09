"""Checks of a recipe that need more than its dataclasses, run by ``validate`` before any stage (and by ``--dry-run``).

Types, choices and ranges are the sections' own (``augreid.settings``); these
say whether named presets and models exist and whether the generator plug-in
accepts its settings, so that a mistake costs seconds instead of the stages
that run before it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from augreid import settings
from augreid.errors import AugreidError, ConfigError
from augreid.reid.checkpoint import model_names
from generators.base import GeneratorPlugin, generator_plugin


def preset_path(preset: str, base_dir: Path | None) -> Path | None:
    """The file a preset given as a path names (relative to the recipe), or None for a preset name."""
    if not (preset.endswith(".toml") or "/" in preset):
        return None
    path = Path(preset).expanduser()
    candidates = [path] if path.is_absolute() or base_dir is None else [base_dir / path, path]
    return next((p for p in candidates if p.is_file()), candidates[0])


def resolved_preset(preset: str | None, base_dir: Path | None) -> str | None:
    """A preset file's path made absolute, so that training finds it from any working directory; a name as it is."""
    path = None if preset is None else preset_path(preset, base_dir)
    return preset if path is None else str(path.resolve())


def preset_problems(generator: dict[str, Any], base_dir: Path | None) -> list[str]:
    """A preset must be one the generator ships or an existing ``.toml`` file."""
    preset = generator.get("preset")
    if not isinstance(preset, str):
        return []
    path = preset_path(preset, base_dir)
    if path is not None:
        return [] if path.is_file() else [f"generator.preset: preset file {preset} does not exist"]
    try:
        plugin = generator_plugin(generator.get("name") or "pg2")
    except AugreidError:
        return []  # an unknown generator name is reported on its own
    known = plugin.presets() if plugin.presets else []
    if known and preset not in known:
        return [f"generator.preset: unknown preset {preset!r} (known: {', '.join(known)}, or a path to a .toml file)"]
    return []


def config_loader(plugin: GeneratorPlugin) -> Callable[..., Any] | None:
    """The plug-in's ``load_config(preset, overrides)``: its settings, checked, without training."""
    return plugin.load_config


def generator_problems(generator: dict[str, Any], tables: dict[str, Any], base_dir: Path | None) -> list[str]:
    """The plug-in's own problems with the preset and the recipe's ``[generator.*]`` tables."""
    plugin = generator_plugin(generator["name"])
    loader = config_loader(plugin)
    preset = generator.get("preset") or plugin.default_preset
    if loader is None or preset is None:
        return []
    try:
        loader(preset_path(preset, base_dir) or preset, settings.flatten(tables))
    except ConfigError as err:
        return [f"generator.{line}" for line in settings.error_lines(err)]
    return []


def model_problems(reid: dict[str, Any]) -> list[str]:
    """The re-ID model must be one torchreid builds."""
    model = reid.get("model")
    if not isinstance(model, str):
        return []
    names = model_names()
    if model in names:
        return []
    close = [n for n in names if n.startswith(model[:4])][:6]
    hint = f" (did you mean {', '.join(close)}?)" if close else f" (torchreid knows {len(names)} models)"
    return [f"reid.model: unknown model {model!r}{hint}"]
