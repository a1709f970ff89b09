"""Re-ID evaluation: the exact Market-1501 protocol, block-wise and fast; faiss search; bootstrap CIs.

``evaluate_rank`` is a drop-in replacement for torchreid's function of the same
name (same arguments, same ``(cmc, mAP)``); ``evaluate_features`` scores query
and gallery features block by block and returns per-query results, which
``IdentityResampler``/``paired_bootstrap`` resample by query identity.
``compare_runs`` + ``write_comparison_report`` are what ``augreid eval`` runs.

Only numpy is imported here; torch, faiss and torchreid are imported by the
functions that use them.
"""

from augreid.evaluation.bootstrap import BootstrapCI, IdentityResampler, paired_bootstrap
from augreid.evaluation.distance import RerankOptions, distance_matrix, evaluate_features, rerank_distances
from augreid.evaluation.protocol import (
    AP_MODES,
    TIE_RULE,
    EvaluationError,
    Metrics,
    PerQueryResult,
    evaluate_distmat,
    evaluate_rank,
    summarize,
)

# Loaded on first use: these pull in the data layer, the checkpoint code or faiss.
_LAZY = {
    "compare_runs": "augreid.evaluation.compare",
    "parse_run_specs": "augreid.evaluation.compare",
    "ComparisonResult": "augreid.evaluation.compare",
    "write_comparison_report": "augreid.evaluation.report",
    "summary_table": "augreid.evaluation.report",
    "EvalOptions": "augreid.evaluation.options",
    "resolve_options": "augreid.evaluation.options",
    "knn_search": "augreid.evaluation.search",
    "top_matches": "augreid.evaluation.search",
    "extract_features": "augreid.evaluation.features",
    "run_features": "augreid.evaluation.features",
}

__all__ = [
    "AP_MODES", "TIE_RULE", "BootstrapCI", "EvaluationError", "IdentityResampler", "Metrics", "PerQueryResult",
    "RerankOptions", "distance_matrix", "evaluate_distmat", "evaluate_features", "evaluate_rank",
    "paired_bootstrap", "rerank_distances", "summarize", *_LAZY,
]


def __getattr__(name: str):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'augreid.evaluation' has no attribute {name!r}")
