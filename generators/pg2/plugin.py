"""PG2 as a ``generators.base`` plug-in: how to load, train and list presets."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from generators.base import GeneratorPlugin
from generators.pg2.checkpoint import load_generator
from generators.pg2.config import load_preset, preset_names
from generators.pg2.train import train_generator


def _load(path: Path, device: str):
    return load_generator(path, device=device)


def _train(preset: str | Path, overrides: dict[str, Any] | None, data_root: str | Path | None = None, **options: Any):
    """``options``: the keyword arguments of :func:`generators.pg2.train.train_generator`."""
    return train_generator(load_preset(preset, overrides), data_root, **options)


def _presets() -> list[str]:
    return preset_names()


PLUGIN = GeneratorPlugin(
    name="pg2",
    load=_load,
    train=_train,
    presets=_presets,
    default_preset="cpu-small",
    load_config=load_preset,
    description="PG2 (Ma et al. 2017): G1 + G2; stage II with a DCGAN or a pix2pixHD-style multi-scale discriminator",
)
