"""mINP (mean inverse negative penalty, Ye et al., TPAMI 2021) in the evaluator, the comparison and the report."""

from __future__ import annotations

import numpy as np
import pytest

from augreid.evaluation.compare import ComparisonResult, group_scores, per_query_values, score_run
from augreid.evaluation.options import EvalOptions
from augreid.evaluation.protocol import evaluate_distmat, summarize
from augreid.evaluation.report import other_differences_table, result_to_dict, runs_table, summary_table

# Gallery: index -> (pid, camera).
G_PIDS = np.array([1, 1, 2, 0, 1, 3, 2, 2])
G_CAMS = np.array([1, 2, 2, 3, 3, 1, 3, 1])


def hand_case():
    """Three queries; distances chosen so that the kept rankings are easy to read off.

    Query 0 (pid 1, camera 1): g0 (pid 1, camera 1) is junk and nearest. Kept ranking:
      g1 match (1), g2 (2), g3 distractor (3), g4 match (4), g5, g6, g7.
      n = 2, last match at rank 4 -> INP = 2/4 = 1/2   (AP = (1/1 + 2/4) / 2 = 3/4).
      Without removing the junk it would be 3/5.
    Query 1 (pid 2, camera 2): g2 (pid 2, camera 2) is junk and nearest. Kept ranking:
      g7 match (1), g5 (2), g6 match (3), g0, g1, g3, g4.
      n = 2, last match at rank 3 -> INP = 2/3         (AP = (1/1 + 2/3) / 2 = 5/6).
      Without removing the junk it would be 3/4.
    Query 2 (pid 3, camera 1): its only gallery image g5 is on camera 1 -> junk; skipped, INP NaN.
    mINP = (1/2 + 2/3) / 2 = 7/12; mAP = (3/4 + 5/6) / 2 = 19/24.
    """
    dist = np.array(
        [
            [0.05, 0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70],
            [0.30, 0.40, 0.01, 0.50, 0.60, 0.10, 0.20, 0.05],
            [0.10, 0.20, 0.30, 0.40, 0.50, 0.60, 0.70, 0.80],
        ]
    )
    return dist, np.array([1, 2, 3]), G_PIDS, np.array([1, 2, 1]), G_CAMS


def test_hand_computed_inp_with_junk_and_skipped_query():
    result = evaluate_distmat(*hand_case())
    assert result.valid.tolist() == [True, True, False]
    np.testing.assert_allclose(result.inp[:2], [1 / 2, 2 / 3])
    assert np.isnan(result.inp[2])
    metrics = summarize(result, max_rank=5)
    assert metrics.mINP == pytest.approx(7 / 12)
    assert metrics.mAP == pytest.approx(19 / 24)
    np.testing.assert_allclose(per_query_values(result, "mINP", "torchreid"), [1 / 2, 2 / 3])
    # INP ignores the AP mode: the trapezoid AP changes mAP, not mINP.
    assert summarize(result, max_rank=5, ap_mode="trapezoid").mINP == pytest.approx(7 / 12)


def test_inp_counts_ties_by_gallery_index():
    # Everything tied: the order is the gallery index; g0 is junk, so the kept ranking is
    # g1 match (1), g2 (2), g3 (3), g4 match (4), ... -> INP = 2/4.
    dist = np.zeros((1, len(G_PIDS)))
    result = evaluate_distmat(dist, np.array([1]), G_PIDS, np.array([1]), G_CAMS)
    assert result.inp[0] == pytest.approx(1 / 2)


def test_perfect_ranking_gives_minp_one_and_a_late_match_lowers_it():
    q_pids, q_cams = np.array([1, 2]), np.array([1, 1])
    g_pids, g_cams = np.array([1, 1, 2, 3, 4]), np.array([2, 3, 2, 2, 2])
    perfect = np.array([[0.1, 0.2, 0.5, 0.6, 0.7], [0.5, 0.6, 0.1, 0.7, 0.8]])
    assert summarize(evaluate_distmat(perfect, q_pids, g_pids, q_cams, g_cams), max_rank=5).mINP == 1.0
    # Query 0's second match moved behind every wrong item: rank-1 stays 1, INP drops to 2/5.
    late = perfect.copy()
    late[0, 1] = 0.9
    metrics = summarize(evaluate_distmat(late, q_pids, g_pids, q_cams, g_cams), max_rank=5)
    assert metrics.rank(1) == 1.0
    assert metrics.mINP == pytest.approx((2 / 5 + 1) / 2)


def reference_inp(dist, q_pids, g_pids, q_cams, g_cams) -> np.ndarray:
    """A plain loop as fast-reid's eval_market1501 computes INP, with a stable sort for ties."""
    out = np.full(len(q_pids), np.nan)
    for q in range(len(q_pids)):
        order = np.argsort(dist[q], kind="stable")
        keep = ~((g_pids[order] == q_pids[q]) & (g_cams[order] == q_cams[q]))
        matches = g_pids[order][keep] == q_pids[q]
        if matches.any():
            last = np.nonzero(matches)[0].max()
            out[q] = matches.sum() / (last + 1)
    return out


@pytest.mark.parametrize("seed", range(4))
def test_inp_matches_a_loop_reference_block_by_block(seed):
    rng = np.random.default_rng(seed)
    num_q, num_g = 70, 180
    q_pids, g_pids = rng.integers(1, 14, num_q), rng.integers(0, 12, num_g)
    q_cams, g_cams = rng.integers(1, 4, num_q), rng.integers(1, 4, num_g)
    dist = rng.random((num_q, num_g))
    if seed % 2:
        dist = np.round(dist * 6) / 6  # many exact ties
    expected = reference_inp(dist, q_pids, g_pids, q_cams, g_cams)
    for block_size, workers in ((256, 1), (16, 3)):
        got = evaluate_distmat(dist, q_pids, g_pids, q_cams, g_cams, block_size=block_size, workers=workers)
        np.testing.assert_array_equal(np.isnan(got.inp), np.isnan(expected))
        np.testing.assert_allclose(got.inp[got.valid], expected[got.valid])


def make_runs(options: EvalOptions):
    """Two groups of three seeds; "augmented" pulls every correct match closer, so it ranks the hardest ones better."""
    rng = np.random.default_rng(10)
    q_pids, g_pids = rng.integers(1, 18, 60), rng.integers(1, 16, 200)
    q_cams, g_cams = rng.integers(1, 4, 60), rng.integers(1, 4, 200)
    labels = (q_pids, g_pids, q_cams, g_cams)
    same = q_pids[:, None] == g_pids[None, :]
    runs: dict = {}
    for name, shift in (("baseline", 0.0), ("augmented", 0.3)):
        runs[name] = [
            score_run(name, f"{name}#{seed}", evaluate_distmat(rng.random((60, 200)) - shift * same, *labels), options)
            for seed in range(3)
        ]
    return runs


def test_group_scores_give_minp_mean_std_ci_and_difference():
    options = EvalOptions(resamples=200, ranks=[1, 5])
    runs = make_runs(options)
    groups, diffs = group_scores(runs, options)
    minps = [r.metrics.mINP for r in runs["augmented"]]
    assert len(set(minps)) == 3  # the seeds really differ
    assert groups[1].mean["mINP"] == pytest.approx(np.mean(minps))
    assert groups[1].std["mINP"] == pytest.approx(np.std(minps, ddof=1))
    ci = groups[1].ci["mINP"]
    assert ci.low <= groups[1].mean["mINP"] <= ci.high and ci.low < ci.high
    diff = next(d for d in diffs if d.metric == "mINP")
    assert (diff.group, diff.baseline) == ("augmented", "baseline")
    assert diff.ci.estimate == pytest.approx(groups[1].mean["mINP"] - groups[0].mean["mINP"])
    assert diff.ci.low > 0  # the shift helps every correct match, so the hardest one too
    # The mINP difference is its own metric, not a copy of the mAP one.
    map_diff = next(d for d in diffs if d.metric == "mAP")
    assert diff.ci.estimate != pytest.approx(map_diff.ci.estimate)
    assert [d.metric for d in diffs] == ["rank1", "rank5", "mAP", "mINP"]


def test_report_tables_and_json_show_minp():
    options = EvalOptions(resamples=100, ranks=[1, 5])
    runs = make_runs(options)
    runs["copy"] = runs.pop("augmented")[:2]  # a third group so that the other-differences table exists
    runs["augmented"] = make_runs(options)["augmented"]
    groups, diffs = group_scores(runs, options)
    result = ComparisonResult(groups, diffs, options, dataset={}, versions={})
    header = summary_table(result).splitlines()[0]
    assert "| mINP |" in header and "Δ mINP [95% CI]" in header
    assert "Δ mINP [95% CI]" in other_differences_table(result).splitlines()[0]
    runs_lines = runs_table(result).splitlines()
    assert "| mINP |" in runs_lines[0]
    first = result.runs[0]
    assert f"| {100 * first.metrics.mINP:.2f} |" in runs_lines[2]
    data = result_to_dict(result)
    assert data["runs"][0]["mINP"] == pytest.approx(first.metrics.mINP)
    assert data["groups"][0]["mean"]["mINP"] == pytest.approx(groups[0].mean["mINP"])
    assert set(data["groups"][0]["ci"]) == {"rank1", "rank5", "mAP", "mINP"}
    minp_pairs = {(d["group"], d["baseline"]) for d in data["differences"] if d["metric"] == "mINP"}
    assert minp_pairs == {("copy", "baseline"), ("augmented", "baseline"), ("augmented", "copy")}
