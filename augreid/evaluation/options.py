"""Settings of ``augreid eval``: ``defaults.toml``, then a user TOML file, then command-line values."""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from augreid.errors import ConfigError
from augreid.tomlfile import read_toml
from augreid.evaluation.distance import METRICS, RerankOptions
from augreid.evaluation.protocol import AP_LABELS, AP_MODES, TIE_RULE


@dataclass
class EvalOptions:
    flip: bool = False
    normalize: bool = False
    batch_size: int = 64
    device: str = "cpu"
    threads: int = 0
    cache: bool = True
    metric: str = "euclidean"
    ap: str = "torchreid"
    rerank: bool = False
    rerank_k1: int = 20
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    max_rank: int = 50
    ranks: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    block_size: int = 256
    resamples: int = 1000
    seed: int = 0
    ci_level: float = 0.95
    plots: bool = True
    strip_queries: int = 6
    strip_topk: int = 10
    cache_dir: str | None = None
    allow_unfinished: bool = False  # score runs stopped before their last epoch (marked in every output)

    def rerank_options(self) -> RerankOptions | None:
        if not self.rerank:
            return None
        return RerankOptions(self.rerank_k1, self.rerank_k2, self.rerank_lambda)

    def protocol(self) -> dict[str, Any]:
        """The settings that change the numbers, each in words, for every report."""
        rerank = self.rerank_options()
        return {
            "protocol": "Market-1501 single query (torchreid eval_market1501): same-pid same-camera gallery "
                        "items removed, distractors kept, queries without a match skipped",
            "ap": self.ap,
            "ap_label": AP_LABELS[self.ap],
            "metric": self.metric,
            "metric_label": "squared euclidean" if self.metric == "euclidean" else "cosine distance (1 - cos)",
            "rerank": rerank.label() if rerank else "off",
            "flip": self.flip,
            "normalize": self.normalize,
            "max_rank": self.max_rank,
            "tie_rule": TIE_RULE,
            "bootstrap": {"unit": "query identity", "paired": True, "resamples": self.resamples,
                          "seed": self.seed, "level": self.ci_level, "interval": "percentile"},
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(EvalOptions)}


def default_settings() -> dict[str, Any]:
    text = resources.files("augreid.evaluation").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def read_settings_file(path: str | Path) -> dict[str, Any]:
    data = read_toml(path)
    return data.get("eval", data) if isinstance(data.get("eval"), dict) else data


def _check_type(key: str, value: Any) -> str | None:
    default = getattr(EvalOptions(), key)
    if key == "cache_dir":
        return None if value is None or isinstance(value, str) else f"{key}: expected a path string"
    if isinstance(default, bool):
        return None if isinstance(value, bool) else f"{key}: expected true/false, got {value!r}"
    if isinstance(default, int):
        ok = isinstance(value, int) and not isinstance(value, bool)
        return None if ok else f"{key}: expected an integer, got {value!r}"
    if isinstance(default, float):
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else f"{key}: expected a number, got {value!r}"
    if isinstance(default, str):
        return None if isinstance(value, str) else f"{key}: expected a string, got {value!r}"
    if isinstance(default, list):
        ok = isinstance(value, list) and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
        return None if ok else f"{key}: expected a list of integers, got {value!r}"
    return None


def check_values(o: EvalOptions) -> list[str]:
    problems = []
    if o.metric not in METRICS:
        problems.append(f"metric: {o.metric!r} is not one of {', '.join(METRICS)}")
    if o.ap not in AP_MODES:
        problems.append(f"ap: {o.ap!r} is not one of {', '.join(AP_MODES)}")
    for key in ("batch_size", "block_size", "resamples", "max_rank", "strip_topk", "rerank_k1", "rerank_k2"):
        if getattr(o, key) < 1:
            problems.append(f"{key}: must be at least 1, got {getattr(o, key)}")
    if o.threads < 0:
        problems.append(f"threads: must be 0 (all available) or more, got {o.threads}")
    if o.strip_queries < 0:
        problems.append(f"strip_queries: must be 0 or more, got {o.strip_queries}")
    if not 0 < o.ci_level < 1:
        problems.append(f"ci_level: must be between 0 and 1, got {o.ci_level}")
    if not 0 <= o.rerank_lambda <= 1:
        problems.append(f"rerank_lambda: must be between 0 and 1, got {o.rerank_lambda}")
    if not o.ranks or any(r < 1 for r in o.ranks):
        problems.append(f"ranks: must be a non-empty list of ranks >= 1, got {o.ranks}")
    elif max(o.ranks) > o.max_rank:
        problems.append(f"ranks: {max(o.ranks)} is beyond max_rank {o.max_rank}")
    return problems


def resolve_options(config_file: str | Path | None = None, overrides: dict[str, Any] | None = None) -> EvalOptions:
    """Defaults, then ``config_file``, then ``overrides`` (``None`` there means "not given")."""
    settings = default_settings()
    problems = [f"{k}: unknown setting in the defaults" for k in settings if k not in FIELDS]
    if config_file is not None:
        given = read_settings_file(config_file)
        problems += [f"{k}: unknown setting in {config_file}" for k in given if k not in FIELDS]
        settings.update({k: v for k, v in given.items() if k in FIELDS})
    for key, value in (overrides or {}).items():
        if key not in FIELDS:
            raise ConfigError(f"{key}: unknown evaluation setting")
        if value is not None:
            settings[key] = value
    problems += [p for p in (_check_type(k, v) for k, v in settings.items() if k in FIELDS) if p]
    if problems:
        raise ConfigError("evaluation settings are invalid:\n  - " + "\n  - ".join(problems))
    options = EvalOptions(**{k: (float(v) if isinstance(getattr(EvalOptions(), k), float) else v)
                             for k, v in settings.items()})
    problems = check_values(options)
    if problems:
        raise ConfigError("evaluation settings are invalid:\n  - " + "\n  - ".join(problems))
    return options
