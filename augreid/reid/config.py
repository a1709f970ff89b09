"""Settings of a re-ID training run: defaults from ``defaults.toml``, a user TOML, CLI overrides.

The resolved settings are written to ``RUN/config.toml`` so that a run can be
repeated with ``--config RUN/config.toml``; ``None`` values are left out of that
file because every optional key defaults to ``None``.
"""

from __future__ import annotations

import dataclasses
import json
import math
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from augreid.errors import ConfigError
from augreid.tomlfile import read_toml

LABEL_SCHEMES = ("same-id", "lsro", "smoothed-id")
METHODS = ("softmax", "triplet", "bot")  # augreid.reid.methods registers them; checked there too
# What torchreid's build_optimizer / build_lr_scheduler accept (torchreid 0.2.5).
OPTIMIZERS = ("adam", "amsgrad", "sgd", "rmsprop", "radam")
LR_SCHEDULERS = ("single_step", "multi_step", "cosine")
DEVICES = ("auto", "cpu", "cuda")


@dataclass
class ReidConfig:
    # data
    data: str | None
    synthetic: str | None
    synthetic_ratio: float | None
    max_synthetic_per_id: int | None
    # labelling
    label_scheme: str
    label_smoothing: float
    real_label_smoothing: float
    # model
    model: str
    pretrained: str | None
    height: int
    width: int
    norm_mean: list[float]
    norm_std: list[float]
    transforms: list[str]
    # optimisation
    method: str
    last_stride: int
    warmup_epochs: int
    warmup_factor: float
    margin: float
    num_instances: int
    epochs: int
    batch_size: int
    optimizer: str
    lr: float
    weight_decay: float
    lr_scheduler: str
    stepsize: list[int]
    gamma: float
    max_iters_per_epoch: int | None
    # run
    seed: int
    device: str
    workers: int
    threads: int
    evaluate: bool

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_toml(self) -> str:
        lines = ["# Resolved settings of this run (augreid train-reid --config this-file repeats it)."]
        for key, value in self.to_dict().items():
            if value is not None:
                lines.append(f"{key} = {toml_value(value)}")
        return "\n".join(lines) + "\n"

    @property
    def uses_synthetic(self) -> bool:
        return self.synthetic is not None and self.synthetic_ratio != 0


FIELDS = {f.name: f for f in dataclasses.fields(ReidConfig)}
OPTIONAL = {name for name, f in FIELDS.items() if "None" in str(f.type)}


def toml_value(value: Any) -> str:
    """TOML for the scalars and flat lists a config holds (json quoting is valid TOML for these)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(toml_value(v) for v in value) + "]"
    return json.dumps(value)


PATH_KEYS = ("data", "synthetic", "pretrained")


PRETRAINED_NAMES = ("auto", "imagenet", "none")  # --pretrained values that are names, not files


def absolute(value: Any, base: Path) -> Any:
    """A path setting made absolute (relative to the config file, or to the working folder for options)."""
    if not isinstance(value, (str, Path)) or value in PRETRAINED_NAMES:
        return value
    path = Path(value).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())


def default_settings() -> dict[str, Any]:
    text = resources.files("augreid.reid").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _coerce(key: str, value: Any, problems: list[str]) -> Any:
    """Check one value against the field's type; ints are accepted where floats are expected."""
    if value is None:
        if key not in OPTIONAL:
            problems.append(f"{key}: must be set")
        return value
    kind = str(FIELDS[key].type)
    if kind.startswith("list"):
        if not isinstance(value, (list, tuple)):
            problems.append(f"{key}: expected a list, got {value!r}")
            return value
        inner = "float" if "float" in kind else "int" if "int" in kind else "str"
        return [_coerce_scalar(f"{key}[{i}]", v, inner, problems) for i, v in enumerate(value)]
    base = kind.split(" |")[0]
    return _coerce_scalar(key, value, base, problems)


def _coerce_scalar(where: str, value: Any, base: str, problems: list[str]) -> Any:
    if base == "bool":
        if not isinstance(value, bool):
            problems.append(f"{where}: expected true/false, got {value!r}")
        return value
    if isinstance(value, bool):
        problems.append(f"{where}: expected {base}, got a boolean")
        return value
    if base == "float" and isinstance(value, (int, float)):
        return float(value)
    if base == "int" and isinstance(value, int):
        return value
    if base == "str" and isinstance(value, (str, Path)):
        return str(value)
    problems.append(f"{where}: expected {base}, got {type(value).__name__} {value!r}")
    return value


def resolve_config(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> ReidConfig:
    """Defaults, then ``config_file``, then ``overrides`` (``None`` values in overrides mean "not given")."""
    settings: dict[str, Any] = {name: None for name in FIELDS}
    settings.update(default_settings())
    problems: list[str] = []
    if config_file is not None:
        given = read_toml(config_file)
        problems += [f"{k}: unknown setting in {config_file}" for k in given if k not in FIELDS]
        base = Path(config_file).expanduser().resolve().parent
        settings.update({k: absolute(v, base) if k in PATH_KEYS else v for k, v in given.items() if k in FIELDS})
    for key, value in (overrides or {}).items():
        if key not in FIELDS:
            raise ConfigError(f"{key}: unknown setting")
        if value is not None:
            settings[key] = absolute(value, Path.cwd()) if key in PATH_KEYS else value
    resolved = {key: _coerce(key, settings[key], problems) for key in FIELDS}
    if not problems:
        problems += check_values(resolved)
    if problems:
        raise ConfigError("re-ID settings are invalid:\n  - " + "\n  - ".join(problems))
    return ReidConfig(**resolved)


def check_values(s: dict[str, Any]) -> list[str]:
    """Range and choice checks that need no data (the model name is checked against torchreid later)."""
    problems = []
    if s["label_scheme"] not in LABEL_SCHEMES:
        problems.append(f"label_scheme: {s['label_scheme']!r} is not one of {', '.join(LABEL_SCHEMES)}")
    if s["optimizer"] not in OPTIMIZERS:
        problems.append(f"optimizer: {s['optimizer']!r} is not one of {', '.join(OPTIMIZERS)}")
    if s["lr_scheduler"] not in LR_SCHEDULERS:
        problems.append(f"lr_scheduler: {s['lr_scheduler']!r} is not one of {', '.join(LR_SCHEDULERS)}")
    if not s["stepsize"] or any(step < 1 for step in s["stepsize"]):
        problems.append(f"stepsize: {s['stepsize']!r} must list at least one epoch (>= 1)")
    if s["device"] not in DEVICES:
        problems.append(f"device: {s['device']!r} is not one of {', '.join(DEVICES)}")
    if s["method"] not in METHODS:
        problems.append(f"method: {s['method']!r} is not one of {', '.join(METHODS)}")
    if s["last_stride"] not in (1, 2):
        problems.append(f"last_stride: {s['last_stride']} must be 1 or 2")
    if s["warmup_epochs"] < 0:
        problems.append(f"warmup_epochs: {s['warmup_epochs']} must be at least 0")
    if not 0.0 < s["warmup_factor"] <= 1.0:
        problems.append(f"warmup_factor: {s['warmup_factor']} is outside (0, 1]")
    for key in ("lr", "weight_decay", "margin", "gamma"):
        if not math.isfinite(s[key]) or s[key] < 0 or (key == "lr" and s[key] == 0):
            problems.append(f"{key}: {s[key]} must be a finite number {'> 0' if key == 'lr' else '>= 0'}")
    if s["height"] < 32 or s["width"] < 16:
        problems.append(f"height/width: {s['height']}x{s['width']} is too small for a re-ID backbone (min 32x16)")
    for key in ("label_smoothing", "real_label_smoothing"):
        if not 0.0 <= s[key] <= 1.0:
            problems.append(f"{key}: {s[key]} is outside [0, 1]")
    if s["synthetic_ratio"] is not None and not 0.0 <= s["synthetic_ratio"] < 1.0:
        problems.append(f"synthetic_ratio: {s['synthetic_ratio']} is outside [0, 1)")
    if s["synthetic_ratio"] is not None and s["synthetic"] is None:
        problems.append("synthetic_ratio: given without a synthetic folder (--synthetic)")
    if s["max_synthetic_per_id"] is not None and s["max_synthetic_per_id"] < 1:
        problems.append(f"max_synthetic_per_id: {s['max_synthetic_per_id']} must be at least 1")
    for key in ("height", "width", "epochs", "batch_size", "num_instances"):
        if s[key] < 1:
            problems.append(f"{key}: {s[key]} must be at least 1")
    for key in ("workers", "threads"):
        if s[key] < 0:
            problems.append(f"{key}: {s[key]} must be at least 0")
    if s["max_iters_per_epoch"] is not None and s["max_iters_per_epoch"] < 1:
        problems.append(f"max_iters_per_epoch: {s['max_iters_per_epoch']} must be at least 1")
    if s["method"] != "softmax" and s["batch_size"] < s["num_instances"]:
        problems.append(f"batch_size: {s['batch_size']} is smaller than num_instances={s['num_instances']}")
    if len(s["norm_mean"]) != 3 or len(s["norm_std"]) != 3:
        problems.append("norm_mean/norm_std: expected three values (RGB)")
    return problems
