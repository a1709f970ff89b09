"""Settings of ``augreid eval`` and ``augreid eval-gen``: the dataclasses below hold the defaults;
a TOML file (its keys at top level or under ``[eval]`` / ``[eval_gen]``) and command-line values override them.

The defaults reproduce torchreid's own test: euclidean distance on raw
features, no flip, no re-ranking, torchreid's non-interpolated AP.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augreid import settings
from augreid.evaluation.protocol import AP_LABELS, AP_MODES, TIE_RULE


# The distances distance.py computes; settings name them, so they are defined with the settings.
METRICS = ("euclidean", "cosine")


@dataclass(frozen=True)
class RerankOptions:
    """torchreid ``re_ranking`` parameters (Zhong et al., CVPR 2017)."""

    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3

    def label(self) -> str:
        return f"k-reciprocal re-ranking (k1={self.k1}, k2={self.k2}, lambda={self.lambda_value})"


@dataclass
class EvalOptions:
    # features
    flip: bool = False  # average the features of each image and its mirror image
    normalize: bool = False  # L2-normalise features before computing distances
    batch_size: int = 64
    device: str = "cpu"  # torch device of the model and of the distance blocks
    threads: int = 0  # CPU threads for extraction (torch) and ranking; 0 = all available
    cache: bool = True  # reuse features cached under $AUGREID_HOME/features
    # protocol
    metric: str = "euclidean"  # "euclidean" (squared, as torchreid) or "cosine"
    ap: str = "torchreid"  # "torchreid" (non-interpolated) or "trapezoid" (official Market-1501 MATLAB code)
    rerank: bool = False  # k-reciprocal re-ranking (torchreid re_ranking); holds full matrices in memory
    rerank_k1: int = 20
    rerank_k2: int = 6
    rerank_lambda: float = 0.3
    max_rank: int = 50
    ranks: list[int] = field(default_factory=lambda: [1, 5, 10, 20])
    block_size: int = 256  # query rows per distance block
    # statistics
    resamples: int = 1000  # paired bootstrap resamples over query identities
    seed: int = 0  # of the bootstrap and of the strip queries
    ci_level: float = 0.95
    # outputs
    plots: bool = True
    strip_queries: int = 6  # queries shown in each retrieval strip
    strip_topk: int = 10
    cache_dir: str | None = None  # where features are cached; None = $AUGREID_HOME/features
    allow_unfinished: bool = False  # score runs stopped before their last epoch (marked in every output); else refuse

    def problems(self) -> list[str]:
        return check_values(self)

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
            "bootstrap": {
                "unit": "query identity",
                "paired": True,
                "resamples": self.resamples,
                "seed": self.seed,
                "level": self.ci_level,
                "interval": "percentile",
            },
        }

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


FIELDS = {f.name: f for f in dataclasses.fields(EvalOptions)}


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
    return settings.load(
        EvalOptions, settings.command_layers(config_file, "eval", overrides), what="evaluation settings"
    )


@dataclass
class GeneratorEvalOptions:
    """Settings of ``augreid eval-gen`` (and a recipe's ``[eval_gen]``)."""

    max_pairs: int = 500  # score at most this many held-out pairs (a seeded random subset); 0 = all
    batch_size: int = 32  # pairs per generator batch
    device: str = "cpu"  # cpu, cuda or cuda:N
    seed: int = 0  # of the pair subset (and of the realism features' subsample)
    examples: int = 6  # hardest and easiest pairs on the contact sheet (each)
    realism: bool = True  # FID-MNv2 and KID on offline ImageNet MobileNetV2 features
    pose_fidelity: bool = True  # PCKh (MediaPipe) and detection rate; needs the [pose] extra, else skipped

    def problems(self) -> list[str]:
        problems = []
        for key in ("max_pairs", "examples"):
            if getattr(self, key) < 0:
                problems.append(f"{key}: must be 0 or more, got {getattr(self, key)}")
        if self.batch_size < 1:
            problems.append(f"batch_size: must be at least 1, got {self.batch_size}")
        return problems


def resolve_generator_eval(
    config_file: str | Path | None = None, overrides: dict[str, Any] | None = None
) -> GeneratorEvalOptions:
    """Defaults, then ``config_file``, then ``overrides`` (``None`` there means "not given")."""
    return settings.load(
        GeneratorEvalOptions,
        settings.command_layers(config_file, "eval_gen", overrides),
        what="generator evaluation settings",
    )
