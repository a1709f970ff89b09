"""PG2 presets: TOML files in ``generators/pg2/presets/``, loaded and validated here.

A preset is named either by its file stem (``cpu-small``) or by a path to a
TOML file. ``overrides`` such as ``{"train.stage1_steps": 100}`` change single
values after loading (the CLI's ``--set key=value``), and are validated like
the file itself.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Mapping

from augreid.errors import ConfigError
from augreid.tomlfile import parse_override  # noqa: F401  (re-exported for the CLI)


@dataclass
class ModelConfig:
    image_size: tuple[int, int] = (128, 64)
    blocks: int = 5
    hidden: int = 128
    z_dim: int = 64
    g2_hidden: int = 128
    activation: str = "relu"
    d_hidden: int = 64
    d_layers: int = 4  # DCGAN: stride-2 convs; multiscale: layers of each PatchGAN
    d_norm: str = "batch"
    # Stage II's discriminator: "dcgan" (PG2's) or "multiscale" (pix2pixHD's: d_scales
    # PatchGANs on the pair at scales 1, 1/2, 1/4, ...).
    d_type: str = "dcgan"
    d_scales: int = 3


@dataclass
class PoseConfig:
    map_mode: str = "disk"
    radius: float = 4.0
    sigma: float = 6.0
    mask_radius: float = 4.0


@dataclass
class DataConfig:
    max_pairs: int = 0
    different_cameras: bool = False
    min_visible: int = 0
    flip: bool = True


@dataclass
class TrainConfig:
    batch_size: int = 16
    lr_g: float = 2e-5
    lr_d: float = 2e-5
    betas: tuple[float, float] = (0.5, 0.999)
    stage1_steps: int = 22000
    stage2_steps: int = 14000
    joint_steps: int = 0
    l1_weight: float = 10.0
    gan_loss: str = "bce"  # bce (PG2), lsgan or hinge
    fm_weight: float = 0.0  # feature matching over every discriminator layer (pix2pixHD: 10); multiscale only
    lr_halve_every: int = 0
    seed: int = 0


@dataclass
class LogConfig:
    log_every: int = 50
    image_every: int = 1000
    checkpoint_every: int = 2000
    keep_last: int = 3


@dataclass
class RuntimeConfig:
    num_workers: int = 0
    amp: bool = True
    channels_last: bool = True


@dataclass
class PG2Config:
    name: str = "custom"
    description: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    pose: PoseConfig = field(default_factory=PoseConfig)
    data: DataConfig = field(default_factory=DataConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    log: LogConfig = field(default_factory=LogConfig)
    runtime: RuntimeConfig = field(default_factory=RuntimeConfig)

    @property
    def total_steps(self) -> int:
        return self.train.stage1_steps + self.train.stage2_steps + self.train.joint_steps

    @property
    def has_g2(self) -> bool:
        return self.train.stage2_steps + self.train.joint_steps > 0

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "<dict>") -> "PG2Config":
        config = cls()
        for key, value in data.items():
            if key in ("name", "description"):
                setattr(config, key, str(value))
                continue
            section = getattr(config, key, None)
            if not dataclasses.is_dataclass(section):
                raise ConfigError(f"{source}: unknown section [{key}] (known: {', '.join(_SECTIONS)})")
            if not isinstance(value, Mapping):
                raise ConfigError(f"{source}: [{key}] must be a table")
            for name, item in value.items():
                _set_field(section, name, item, f"{source}: {key}.{name}")
        validate(config, source)
        return config


_SECTIONS = ("model", "pose", "data", "train", "log", "runtime")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _coerce(value: Any, default: Any, where: str) -> Any:
    """Convert a TOML value to the type of the default, or fail naming the key."""
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if isinstance(default, int):
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if isinstance(default, float):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    if isinstance(default, tuple):
        if not isinstance(value, (list, tuple)) or len(value) != len(default):
            raise ConfigError(f"{where} must be a list of {len(default)} values, got {value!r}")
        return tuple(_coerce(v, d, where) for v, d in zip(value, default))
    raise ConfigError(f"{where}: unsupported value {value!r}")


def _set_field(section: Any, name: str, value: Any, where: str) -> None:
    names = {f.name for f in dataclasses.fields(section)}
    if name not in names:
        raise ConfigError(f"{where}: unknown key (known: {', '.join(sorted(names))})")
    setattr(section, name, _coerce(value, getattr(section, name), where))


def validate(config: PG2Config, source: str = "<config>") -> None:
    m, p, t, lg = config.model, config.pose, config.train, config.log
    h, w = m.image_size
    factor = 2 ** (m.blocks - 1)
    problems = []
    if m.blocks < 3:
        problems.append(f"model.blocks must be >= 3 (G2 has blocks - 2), got {m.blocks}")
    elif h % factor or w % factor:
        problems.append(f"model.image_size {h}x{w} must be divisible by 2^(blocks-1) = {factor}")
    if m.d_type == "dcgan" and (h % 2 ** m.d_layers or w % 2 ** m.d_layers):
        problems.append(f"model.image_size {h}x{w} must be divisible by 2^d_layers = {2 ** m.d_layers}")
    for key in ("hidden", "z_dim", "g2_hidden", "d_hidden", "d_layers"):
        if getattr(m, key) < 1:
            problems.append(f"model.{key} must be positive")
    if m.activation not in ("relu", "elu"):
        problems.append(f"model.activation must be 'relu' or 'elu', got {m.activation!r}")
    if m.d_norm not in ("batch", "instance", "none"):
        problems.append(f"model.d_norm must be 'batch', 'instance' or 'none', got {m.d_norm!r}")
    if m.d_type not in ("dcgan", "multiscale"):
        problems.append(f"model.d_type must be 'dcgan' or 'multiscale', got {m.d_type!r}")
    if not 1 <= m.d_scales <= 4:
        problems.append(f"model.d_scales must be 1 to 4, got {m.d_scales}")
    if t.gan_loss not in ("bce", "lsgan", "hinge"):
        problems.append(f"train.gan_loss must be 'bce', 'lsgan' or 'hinge', got {t.gan_loss!r}")
    if t.fm_weight < 0 or (t.fm_weight > 0 and m.d_type != "multiscale"):
        problems.append("train.fm_weight must be >= 0, and > 0 only with model.d_type = 'multiscale'")
    if p.map_mode not in ("disk", "gaussian"):
        problems.append(f"pose.map_mode must be 'disk' or 'gaussian', got {p.map_mode!r}")
    if p.radius <= 0 or p.mask_radius <= 0 or p.sigma <= 0:
        problems.append("pose.radius, pose.mask_radius and pose.sigma must be positive")
    if t.batch_size < 1:
        problems.append("train.batch_size must be >= 1")
    if min(t.stage1_steps, t.stage2_steps, t.joint_steps) < 0 or config.total_steps < 1:
        problems.append("train.*_steps must be >= 0 and add up to at least 1")
    if t.lr_g <= 0 or t.lr_d <= 0:
        problems.append("train.lr_g and train.lr_d must be positive")
    if min(lg.log_every, lg.image_every, lg.checkpoint_every, lg.keep_last) < 1:
        problems.append("log.* must be >= 1")
    if config.data.max_pairs < 0:
        problems.append("data.max_pairs must be >= 0 (0 = all)")
    if problems:
        raise ConfigError(f"{source}: " + "; ".join(problems))


def preset_names() -> list[str]:
    folder = resources.files("generators.pg2") / "presets"
    return sorted(p.name[:-5] for p in folder.iterdir() if p.name.endswith(".toml"))


def _preset_text(preset: str | Path) -> tuple[str, str, str]:
    """(text, name, source) of a preset given by name or path."""
    path = Path(preset)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise ConfigError(f"preset file {path} does not exist")
        return path.read_text(encoding="utf-8"), path.stem, str(path)
    resource = resources.files("generators.pg2") / "presets" / f"{preset}.toml"
    if not resource.is_file():
        raise ConfigError(f"unknown preset {preset!r} (known: {', '.join(preset_names())}, or a path to a .toml file)")
    return resource.read_text(encoding="utf-8"), str(preset), f"preset {preset}"


def load_preset(preset: str | Path, overrides: Mapping[str, Any] | None = None) -> PG2Config:
    """Load a preset by name or path, apply ``{"section.key": value}`` overrides, validate."""
    text, name, source = _preset_text(preset)
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{source}: invalid TOML ({err})") from None
    data = {"name": name, **data}
    for dotted, value in (overrides or {}).items():
        section, _, key = dotted.partition(".")
        if not key:
            raise ConfigError(f"override {dotted!r} must look like section.key")
        data.setdefault(section, {})
        if not isinstance(data[section], dict):
            raise ConfigError(f"override {dotted!r}: {section} is not a section")
        data[section] = {**data[section], key: value}
    return PG2Config.from_dict(data, source)
