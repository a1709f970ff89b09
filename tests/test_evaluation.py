"""The evaluation protocol against torchreid, faiss search against brute force, bootstrap CIs."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from augreid.errors import AugreidError
from augreid.evaluation import (
    EvaluationError,
    IdentityResampler,
    RerankOptions,
    evaluate_distmat,
    evaluate_features,
    evaluate_rank,
    paired_bootstrap,
    summarize,
)
from augreid.evaluation.compare import group_scores, score_run
from augreid.evaluation.options import EvalOptions, resolve_options
from augreid.evaluation.search import brute_force_knn, knn_search, top_matches

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Cython evaluation")
    from torchreid.reid.metrics import compute_distance_matrix
    from torchreid.reid.metrics.rank import evaluate_rank as torchreid_evaluate_rank
    from torchreid.reid.utils import re_ranking


def random_case(
    rng: np.random.Generator, num_q: int, num_g: int, num_ids: int = 12, num_cams: int = 3, distractors: int = 0
):
    """Random labels with same-camera matches, distractors (pid 0) and some queries without a match."""
    q_pids = rng.integers(1, num_ids + 3, num_q)  # ids above num_ids have no gallery image
    g_pids = rng.integers(1, num_ids + 1, num_g)
    g_pids[:distractors] = 0
    q_cams = rng.integers(1, num_cams + 1, num_q)
    g_cams = rng.integers(1, num_cams + 1, num_g)
    return q_pids, g_pids, q_cams, g_cams


def assert_same_as_torchreid(dist, q_pids, g_pids, q_cams, g_cams, max_rank=20):
    cmc_ref, map_ref = torchreid_evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
    cmc, mean_ap = evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=max_rank)
    assert cmc.dtype == cmc_ref.dtype == np.float32
    assert cmc.shape == cmc_ref.shape
    np.testing.assert_allclose(cmc, cmc_ref, rtol=0, atol=1e-6)
    assert abs(mean_ap - map_ref) < 1e-6
    return cmc, mean_ap


# ---------------------------------------------------------------- protocol


@pytest.mark.parametrize("seed", range(8))
def test_random_cases_equal_torchreid(seed):
    rng = np.random.default_rng(seed)
    num_q, num_g = int(rng.integers(10, 80)), int(rng.integers(80, 300))
    labels = random_case(rng, num_q, num_g, distractors=int(rng.integers(0, 20)))
    dist = rng.random((num_q, num_g))
    if seed % 2:
        dist = dist.astype(np.float32)
    result = evaluate_distmat(dist, *labels)
    # The random labels must really exercise skipped queries and same-camera junk.
    assert 0 < result.num_skipped < num_q
    assert_same_as_torchreid(dist, *labels)


def test_crafted_query_junk_distractor_and_ap_variants():
    # Gallery in distance order: same pid+camera (junk), distractor, match, other person, match.
    dist = np.array([[0.1, 0.2, 0.3, 0.4, 0.5]])
    q_pids, q_cams = np.array([2]), np.array([1])
    g_pids, g_cams = np.array([2, 0, 2, 3, 2]), np.array([1, 2, 3, 2, 2])
    cmc, mean_ap = assert_same_as_torchreid(dist, q_pids, g_pids, q_cams, g_cams, max_rank=4)
    np.testing.assert_array_equal(cmc, [0, 1, 1, 1])
    assert mean_ap == pytest.approx((1 / 2 + 2 / 4) / 2)
    result = evaluate_distmat(dist, q_pids, g_pids, q_cams, g_cams)
    assert result.first_rank.tolist() == [1]
    assert result.num_matches.tolist() == [2]
    # Official Market-1501 compute_AP.m: recall steps of 1/2, trapezoids over precision.
    expected_trapezoid = 0.5 * (0 + 1 / 2) / 2 + 0.5 * (1 / 3 + 2 / 4) / 2
    trap = summarize(result, max_rank=4, ap_mode="trapezoid")
    assert trap.mAP == pytest.approx(expected_trapezoid)
    assert trap.mAP < mean_ap


def test_same_camera_only_matches_are_skipped_and_counted():
    dist = np.array([[0.3, 0.1, 0.2], [0.2, 0.3, 0.1], [0.1, 0.2, 0.3]])
    q_pids, q_cams = np.array([1, 2, 1]), np.array([1, 1, 2])
    g_pids, g_cams = np.array([1, 2, 3]), np.array([1, 1, 1])
    # Query 0 and 1 only have same-camera matches; query 2 (camera 2) sees pid 1 from camera 1.
    result = evaluate_distmat(dist, q_pids, g_pids, q_cams, g_cams)
    assert result.valid.tolist() == [False, False, True]
    assert result.num_skipped == 2
    metrics = summarize(result, max_rank=3)
    assert metrics.num_valid == 1 and metrics.num_skipped == 2
    assert_same_as_torchreid(dist, q_pids, g_pids, q_cams, g_cams, max_rank=3)


def test_no_valid_query_is_an_error_not_zero():
    dist = np.random.default_rng(0).random((3, 4))
    with pytest.raises(EvaluationError, match="no valid query"):
        evaluate_rank(dist, np.array([1, 1, 2]), np.array([1, 3, 3, 4]), np.array([1, 1, 1]), np.array([1, 2, 2, 2]))


def test_ties_follow_gallery_index():
    q_pids, q_cams = np.array([1]), np.array([1])
    g_pids, g_cams = np.array([3, 1, 1, 1]), np.array([2, 2, 1, 3])
    dist = np.zeros((1, 4))  # everything tied: order is 0, 1, (2 is junk), 3
    result = evaluate_distmat(dist, q_pids, g_pids, q_cams, g_cams)
    assert result.first_rank.tolist() == [1]
    assert result.ap[0] == pytest.approx((1 / 2 + 2 / 3) / 2)
    # A tie that puts the wrong item after the matches when the matches come first by index.
    result = evaluate_distmat(dist[:, ::-1].copy(), q_pids, g_pids[::-1].copy(), q_cams, g_cams[::-1].copy())
    assert result.first_rank.tolist() == [0]
    assert result.ap[0] == pytest.approx(1.0)
    # Partial ties: match at 0.5 tied with a wrong item of lower index, a closer match at 0.2.
    dist = np.array([[0.5, 0.5, 0.2, 0.9]])
    result = evaluate_distmat(dist, q_pids, np.array([3, 1, 1, 2]), q_cams, np.array([2, 2, 3, 2]))
    assert result.first_rank.tolist() == [0]
    assert result.ap[0] == pytest.approx((1 / 1 + 2 / 3) / 2)


def test_block_size_and_threads_do_not_change_results():
    rng = np.random.default_rng(3)
    labels = random_case(rng, 57, 140, distractors=10)
    dist = rng.random((57, 140))
    ref = evaluate_distmat(dist, *labels, block_size=1000, workers=1)
    for block_size, workers in ((1, 1), (7, 2), (16, 3)):
        got = evaluate_distmat(dist, *labels, block_size=block_size, workers=workers)
        np.testing.assert_array_equal(got.first_rank, ref.first_rank)
        np.testing.assert_array_equal(got.ap, ref.ap)


def test_torch_inputs_and_short_gallery():
    rng = np.random.default_rng(4)
    q_pids, g_pids = np.array([1, 2]), np.array([1, 2, 1, 2, 3])
    q_cams, g_cams = np.array([1, 1]), np.array([2, 2, 1, 3, 1])
    dist = rng.random((2, 5))
    cmc, _ = evaluate_rank(
        torch.from_numpy(dist),
        torch.from_numpy(q_pids),
        torch.from_numpy(g_pids),
        torch.from_numpy(q_cams),
        torch.from_numpy(g_cams),
        max_rank=50,
    )
    # CMC is as long as the gallery; torchreid itself fails here (query 1 keeps only 4 items).
    assert cmc.shape == (5,) and cmc[-1] == 1.0
    np.testing.assert_allclose(cmc, evaluate_rank(dist, q_pids, g_pids, q_cams, g_cams, max_rank=5)[0])


@pytest.mark.parametrize(
    "case, message",
    [
        (dict(q_pids=np.array([1, 2])), "q_pids has 2 entries"),
        (dict(g_camids=np.array([1, 2, 3])), "g_camids has 3 entries"),
        (dict(distmat=np.zeros((0, 4))), "query set is empty"),
        (dict(distmat=np.zeros((3, 0))), "gallery is empty"),
        (dict(distmat=np.full((3, 4), np.nan)), "NaN"),
        (dict(q_pids=np.array([1.5, 2, 3])), "integers"),
    ],
)
def test_bad_inputs_name_the_problem(case, message):
    args = dict(
        distmat=np.zeros((3, 4)),
        q_pids=np.array([1, 2, 3]),
        g_pids=np.array([1, 2, 3, 4]),
        q_camids=np.array([1, 1, 1]),
        g_camids=np.array([2, 2, 2, 2]),
    )
    args.update(case)
    if args["distmat"].shape[0] == 0:
        args["q_pids"] = args["q_camids"] = np.array([], dtype=int)
    if args["distmat"].shape[1] == 0:
        args["g_pids"] = args["g_camids"] = np.array([], dtype=int)
    with pytest.raises(AugreidError, match=message):
        evaluate_rank(**args)


def test_cuhk03_metric_is_refused():
    with pytest.raises(EvaluationError, match="CUHK03"):
        evaluate_rank(np.zeros((1, 1)), [1], [1], [1], [2], use_metric_cuhk03=True)


# ---------------------------------------------------------------- features


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_features_equal_torchreid_distance_and_rank(metric):
    rng = np.random.default_rng(5)
    labels = random_case(rng, 90, 400, distractors=30)
    qf = torch.from_numpy(rng.standard_normal((90, 32)).astype(np.float32))
    gf = torch.from_numpy(rng.standard_normal((400, 32)).astype(np.float32))
    dist_ref = compute_distance_matrix(qf, gf, metric).numpy()
    cmc_ref, map_ref = torchreid_evaluate_rank(dist_ref, *labels, max_rank=50)
    result = evaluate_features(qf, gf, *labels, metric=metric, block_size=13)
    metrics = summarize(result, max_rank=50)
    np.testing.assert_allclose(metrics.cmc, cmc_ref, atol=1e-6)
    assert abs(metrics.mAP - map_ref) < 1e-6


def test_rerank_equals_torchreid_re_ranking():
    rng = np.random.default_rng(6)
    labels = random_case(rng, 30, 120, distractors=5)
    qf = rng.standard_normal((30, 16)).astype(np.float32)
    gf = rng.standard_normal((120, 16)).astype(np.float32)
    t_q, t_g = torch.from_numpy(qf), torch.from_numpy(gf)
    dist = re_ranking(
        compute_distance_matrix(t_q, t_g).numpy(),
        compute_distance_matrix(t_q, t_q).numpy(),
        compute_distance_matrix(t_g, t_g).numpy(),
        k1=20,
        k2=6,
        lambda_value=0.3,
    )
    cmc_ref, map_ref = torchreid_evaluate_rank(dist, *labels, max_rank=20)
    result = evaluate_features(qf, gf, *labels, rerank=RerankOptions())
    metrics = summarize(result, max_rank=20)
    np.testing.assert_allclose(metrics.cmc, cmc_ref, atol=1e-6)
    assert abs(metrics.mAP - map_ref) < 1e-6
    plain = summarize(evaluate_features(qf, gf, *labels), max_rank=20)
    assert plain.mAP != pytest.approx(metrics.mAP)  # the option really changes the ranking


@pytest.mark.parametrize(
    "qf, gf, labels, message",
    [
        (np.zeros((3, 4)), np.zeros((5, 4)), ([1, 2], [1] * 5, [1] * 3, [2] * 5), "q_pids has 2 entries"),
        (np.zeros((3, 4)), np.zeros((5, 4)), ([1] * 3, [1] * 6, [1] * 3, [2] * 5), "g_pids has 6 entries"),
        (np.zeros((0, 4)), np.zeros((5, 4)), ([], [1] * 5, [], [2] * 5), "query set is empty"),
        (np.zeros((3, 4)), np.zeros((0, 4)), ([1] * 3, [], [1] * 3, []), "gallery set is empty"),
        (np.zeros((3, 4)), np.zeros((5, 3)), ([1] * 3, [1] * 5, [1] * 3, [2] * 5), "dimension 4 but gallery"),
        (np.full((3, 4), np.nan), np.zeros((5, 4)), ([1] * 3, [1] * 5, [1] * 3, [2] * 5), "NaN"),
    ],
)
def test_bad_features_name_the_problem(qf, gf, labels, message):
    with pytest.raises(EvaluationError, match=message):
        evaluate_features(qf.astype(np.float32), gf.astype(np.float32), *labels)


# ---------------------------------------------------------------- faiss


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_faiss_knn_equals_brute_force(metric):
    rng = np.random.default_rng(7)
    query = rng.standard_normal((64, 48)).astype(np.float32)
    gallery = rng.standard_normal((700, 48)).astype(np.float32)
    dist, idx = knn_search(query, gallery, 25, metric)
    ref_dist, ref_idx = brute_force_knn(query, gallery, 25, metric)
    np.testing.assert_array_equal(idx, ref_idx)
    np.testing.assert_allclose(dist, ref_dist, rtol=1e-5, atol=1e-5)
    assert knn_search(query, gallery, 5000, metric)[1].shape == (64, 700)  # k clipped to the gallery


def test_faiss_ties_follow_gallery_index_and_junk_is_dropped():
    gallery = np.repeat(np.eye(3, dtype=np.float32), 2, axis=0)  # rows 2i and 2i+1 identical
    query = np.eye(3, dtype=np.float32)[[1]]
    _, idx = knn_search(query, gallery, 6)
    assert idx[0, :2].tolist() == [2, 3]
    assert idx[0, 2:].tolist() == [0, 1, 4, 5]
    g_pids, g_cams = np.array([5, 5, 1, 1, 2, 2]), np.array([1, 2, 1, 2, 1, 2])
    top = top_matches(query, gallery, [1], [1], g_pids, g_cams, k=3)
    assert top[0].tolist() == [3, 0, 1]  # gallery 2 is pid 1 seen by the query's camera


def test_knn_rejects_dimension_mismatch():
    with pytest.raises(EvaluationError, match="dimension"):
        knn_search(np.zeros((2, 3)), np.zeros((4, 5)), 2)


# ---------------------------------------------------------------- bootstrap


def test_identical_runs_give_zero_difference_with_ci_containing_zero():
    rng = np.random.default_rng(8)
    values = rng.random(200)
    pids = rng.integers(0, 40, 200)
    ci = paired_bootstrap(values, values.copy(), pids, resamples=300, seed=1)
    assert ci.estimate == 0.0 and ci.low == 0.0 and ci.high == 0.0 and ci.contains(0.0)
    assert ci.resamples == 300 and ci.seed == 1


def test_clearly_better_ranking_gives_ci_above_zero():
    rng = np.random.default_rng(9)
    labels = random_case(rng, 150, 500, num_ids=40, distractors=20)
    q_pids, g_pids, q_cams, g_cams = labels
    noise = rng.random((150, 500))
    better = noise - 0.5 * (q_pids[:, None] == g_pids[None, :])  # matches pulled forward
    base = evaluate_distmat(noise, *labels)
    good = evaluate_distmat(better, *labels)
    ci = paired_bootstrap(base.ap, good.ap, q_pids, valid=base.valid, resamples=500, seed=0)
    assert ci.low > 0 and ci.estimate > 0.3
    worse = paired_bootstrap(good.ap, base.ap, q_pids, valid=base.valid, resamples=500, seed=0)
    assert worse.high < 0


def test_bootstrap_resamples_identities_not_queries():
    # One identity owns all queries: every resample draws it, so there is no spread at all.
    values = np.linspace(0, 1, 50)
    resampler = IdentityResampler.create(np.full(50, 7), np.ones(50, bool), resamples=100, seed=0)
    assert np.allclose(resampler.resampled_means(values), values.mean())
    # Same seed, same draws; different seed, different draws.
    pids = np.arange(50) % 10
    a = IdentityResampler.create(pids, np.ones(50, bool), 100, seed=3).resampled_means(values)
    b = IdentityResampler.create(pids, np.ones(50, bool), 100, seed=3).resampled_means(values)
    c = IdentityResampler.create(pids, np.ones(50, bool), 100, seed=4).resampled_means(values)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_group_scores_mean_std_across_seeds():
    rng = np.random.default_rng(10)
    labels = random_case(rng, 60, 200, num_ids=15)
    options = EvalOptions(resamples=200, ranks=[1, 5])
    runs = {}
    for name, shift in (("baseline", 0.0), ("augmented", 0.3)):
        runs[name] = []
        for seed in range(3):
            dist = rng.random((60, 200)) - shift * (labels[0][:, None] == labels[1][None, :])
            runs[name].append(score_run(name, f"{name}#{seed}", evaluate_distmat(dist, *labels), options))
    groups, diffs = group_scores(runs, options)
    maps = [r.metrics.mAP for r in runs["augmented"]]
    assert groups[1].mean["mAP"] == pytest.approx(np.mean(maps))
    assert groups[1].std["mAP"] == pytest.approx(np.std(maps, ddof=1))
    diff = next(d for d in diffs if d.metric == "mAP")
    assert diff.group == "augmented" and diff.baseline == "baseline"
    assert diff.ci.estimate == pytest.approx(groups[1].mean["mAP"] - groups[0].mean["mAP"])
    assert diff.ci.low > 0
    assert {d.metric for d in diffs} == {"rank1", "rank5", "mAP", "mINP"}


# ---------------------------------------------------------------- options


def test_options_defaults_config_file_and_overrides(tmp_path):
    defaults = resolve_options()
    assert defaults == EvalOptions()
    config = tmp_path / "eval.toml"
    config.write_text('[eval]\nmetric = "cosine"\nresamples = 50\n')
    options = resolve_options(config, {"resamples": 70, "flip": None})
    assert options.metric == "cosine" and options.resamples == 70 and options.flip is False
    config.write_text('metric = "hamming"\nbogus = 1\n')
    with pytest.raises(AugreidError) as err:
        resolve_options(config)
    assert "bogus" in str(err.value)
    config.write_text('metric = "hamming"\n')
    with pytest.raises(AugreidError, match="metric"):
        resolve_options(config)
