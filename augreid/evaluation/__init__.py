"""Re-ID evaluation: the exact Market-1501 protocol, block-wise and fast; faiss search; bootstrap CIs.

``evaluate_rank`` is a drop-in replacement for torchreid's function of the same
name (same arguments, same ``(cmc, mAP)``); ``evaluate_features`` scores query
and gallery features block by block and returns per-query results, which
``IdentityResampler``/``paired_bootstrap`` resample by query identity.
``compare_runs`` + ``write_comparison_report`` are what ``augreid eval`` runs.
"""

from augreid.lazy import lazy_exports

_EXPORTS = {
    "BootstrapCI": "augreid.evaluation.bootstrap",
    "ComparisonResult": "augreid.evaluation.compare",
    "AP_MODES": "augreid.evaluation.protocol",
    "EvalOptions": "augreid.evaluation.options",
    "EvaluationError": "augreid.evaluation.protocol",
    "Metrics": "augreid.evaluation.protocol",
    "PerQueryResult": "augreid.evaluation.protocol",
    "TIE_RULE": "augreid.evaluation.protocol",
    "evaluate_distmat": "augreid.evaluation.protocol",
    "evaluate_rank": "augreid.evaluation.protocol",
    "summarize": "augreid.evaluation.protocol",
    "IdentityResampler": "augreid.evaluation.bootstrap",
    "RerankOptions": "augreid.evaluation.distance",
    "compare_runs": "augreid.evaluation.compare",
    "distance_matrix": "augreid.evaluation.distance",
    "evaluate_features": "augreid.evaluation.distance",
    "extract_features": "augreid.evaluation.features",
    "knn_search": "augreid.evaluation.search",
    "paired_bootstrap": "augreid.evaluation.bootstrap",
    "parse_run_specs": "augreid.evaluation.compare",
    "rerank_distances": "augreid.evaluation.distance",
    "resolve_options": "augreid.evaluation.options",
    "run_features": "augreid.evaluation.features",
    "summary_table": "augreid.evaluation.report",
    "top_matches": "augreid.evaluation.search",
    "write_comparison_report": "augreid.evaluation.report",
}
__getattr__ = lazy_exports(__name__, _EXPORTS)

__all__ = [
    "AP_MODES",
    "TIE_RULE",
    "BootstrapCI",
    "EvaluationError",
    "IdentityResampler",
    "Metrics",
    "PerQueryResult",
    "RerankOptions",
    "distance_matrix",
    "evaluate_distmat",
    "evaluate_features",
    "evaluate_rank",
    "paired_bootstrap",
    "rerank_distances",
    "summarize",
    "ComparisonResult",
    "compare_runs",
    "parse_run_specs",
    "extract_features",
    "run_features",
    "EvalOptions",
    "resolve_options",
    "summary_table",
    "write_comparison_report",
    "knn_search",
    "top_matches",
]
