import numpy as np
import pytest

from keras_pass.reid import evaluation
from keras_pass.reid.evaluation import (
    alpha_query_expansion,
    evaluate_features,
    evaluate_rank,
    pairwise_distance,
)
from tests.helpers import once_under_tensorflow

# `keras_pass.reid.evaluation` is NumPy metrics, no Keras op: the backend cannot change what is
# checked here.
pytestmark = once_under_tensorflow


def loop_reference(distmat, q_pids, g_pids, q_cams, g_cams, max_rank, trapezoid=False):
    """One query at a time, written from the protocol's definition."""
    cmc_sum, aps, inps = np.zeros(max_rank), [], []
    for i in range(len(q_pids)):
        order = np.argsort(distmat[i], kind="stable")  # ties: lower gallery index first
        keep = [j for j in order if g_pids[j] != -1
                and not (g_pids[j] == q_pids[i] and g_cams[j] == q_cams[i])]
        hits = [g_pids[j] == q_pids[i] for j in keep]
        if not any(hits):
            continue
        first = hits.index(True)
        cmc_sum[first:] += 1
        precisions, found, previous = [], 0, 1.0
        for position, hit in enumerate(hits, 1):
            if hit:
                found += 1
                current = found / position
                precisions.append((previous + current) / 2 if trapezoid else current)
                last = position
            previous = found / position
        aps.append(np.mean(precisions))
        inps.append(found / last)
    return cmc_sum / len(aps), np.mean(aps), np.mean(inps), len(aps)


def random_problem(seed, num_query=37, num_gallery=211, num_ids=9, num_cams=3, dtype=np.float32):
    rng = np.random.default_rng(seed)
    q_pids = rng.integers(0, num_ids + 3, num_query)  # ids >= num_ids: no gallery match
    g_pids = rng.integers(-1, num_ids, num_gallery)  # -1 junk, 0 distractor-like
    q_cams = rng.integers(0, num_cams, num_query)
    g_cams = rng.integers(0, num_cams, num_gallery)
    distmat = rng.integers(0, 6, (num_query, num_gallery)).astype(dtype)  # many ties
    return distmat, q_pids, g_pids, q_cams, g_cams


@pytest.fixture(params=["prefix_sort", "row_sort"])
def ranking_path(request, monkeypatch):
    """Forces one of the two ways of ranking a block."""
    monkeypatch.setattr(evaluation, "_PREFIX_MAX_SHARE", 1.0 if request.param == "prefix_sort" else -1.0)
    return request.param


class TestEvaluateRank:
    @pytest.mark.parametrize("seed", [0, 1, 2])
    @pytest.mark.parametrize("chunk_size", [None, 5])
    def test_matches_loop_with_ties_junk_and_skipped_queries(self, seed, chunk_size, ranking_path):
        problem = random_problem(seed)
        result = evaluate_rank(*problem, max_rank=20, chunk_size=chunk_size)
        cmc, mean_ap, minp, num_valid = loop_reference(*problem, max_rank=20)
        assert num_valid < len(problem[1])  # some queries were skipped
        assert result["num_valid_queries"] == num_valid
        assert result["cmc"].shape == (20,)
        np.testing.assert_allclose(result["cmc"], cmc, atol=1e-6)
        np.testing.assert_allclose(result["mAP"], mean_ap, atol=1e-9)
        np.testing.assert_allclose(result["mINP"], minp, atol=1e-9)

    def test_devkit_trapezoidal_ap(self, ranking_path):
        problem = random_problem(3)
        result = evaluate_rank(*problem, ap_method="devkit_trapezoidal")
        _, mean_ap, _, _ = loop_reference(*problem, max_rank=50, trapezoid=True)
        np.testing.assert_allclose(result["mAP"], mean_ap, atol=1e-9)
        assert result["mAP"] < evaluate_rank(*problem)["mAP"]

    def test_float64_values_that_collide_in_float32_keep_their_order(self, ranking_path):
        distmat, q_pids, g_pids, q_cams, g_cams = random_problem(4, dtype=np.float64)
        distmat = 1.0 + distmat * 1e-9  # distinct in float64, equal in float32
        result = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10)
        cmc, mean_ap, minp, _ = loop_reference(distmat, q_pids, g_pids, q_cams, g_cams, 10)
        np.testing.assert_allclose(result["cmc"], cmc)
        np.testing.assert_allclose([result["mAP"], result["mINP"]], [mean_ap, minp])

    @pytest.mark.parametrize("dtype", [np.int64, np.float32])
    def test_negative_and_integer_distances(self, dtype, ranking_path):
        distmat, q_pids, g_pids, q_cams, g_cams = random_problem(6)
        distmat = (distmat - 3).astype(dtype)  # e.g. negated similarities
        result = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams, max_rank=10)
        cmc, mean_ap, minp, _ = loop_reference(distmat, q_pids, g_pids, q_cams, g_cams, 10)
        np.testing.assert_allclose(result["cmc"], cmc)
        np.testing.assert_allclose([result["mAP"], result["mINP"]], [mean_ap, minp])

    def test_hand_computed_case(self, ranking_path):
        # Gallery order by distance: g2 (pid 1, same cam: removed), g0 (pid 2),
        # g3 (pid 1), g1 (pid 1). Valid ranks of hits: 2 and 3.
        distmat = np.array([[0.2, 0.9, 0.1, 0.5]])
        result = evaluate_rank(distmat, [1], [2, 1, 1, 1], [0], [1, 1, 0, 2], max_rank=3)
        np.testing.assert_allclose(result["cmc"], [0, 1, 1])
        np.testing.assert_allclose(result["mAP"], (1 / 2 + 2 / 3) / 2)
        np.testing.assert_allclose(result["mINP"], 2 / 3)

    def test_max_rank_longer_than_gallery_saturates(self):
        result = evaluate_rank(np.array([[0.3, 0.1]]), [1], [1, 2], [0], [1, 1], max_rank=5)
        np.testing.assert_allclose(result["cmc"], [0, 1, 1, 1, 1])

    @pytest.mark.parametrize(
        "change, message",
        [
            (lambda p: (p[0][:, :-1],) + p[1:], "distmat of shape"),
            (lambda p: (p[0][0],) + p[1:], "distmat of shape"),
            (lambda p: (p[0], p[1][:-1]) + p[2:], "query_camids"),
            (lambda p: p[:2] + (p[2].astype(float),) + p[3:], "integer gallery_pids"),
            (lambda p: (np.where(p[0] > 2, np.nan, p[0]),) + p[1:], "finite"),
        ],
    )
    def test_bad_inputs(self, change, message):
        with pytest.raises(ValueError, match=message):
            evaluate_rank(*change(random_problem(5)))

    def test_no_valid_query_is_an_error(self):
        with pytest.raises(ValueError, match="at least one query with a valid"):
            evaluate_rank(np.zeros((1, 2)), [1], [1, 2], [0], [0, 1])

    def test_bad_max_rank_and_ap_method(self):
        with pytest.raises(ValueError, match="max_rank"):
            evaluate_rank(*random_problem(0), max_rank=0)
        with pytest.raises(ValueError, match="ap_method"):
            evaluate_rank(*random_problem(0), ap_method="interpolated")


class TestFeatures:
    def test_pairwise_distances(self):
        rng = np.random.default_rng(0)
        q, g = rng.normal(size=(4, 6)), rng.normal(size=(5, 6))
        expected = ((q[:, None] - g[None]) ** 2).sum(-1)
        np.testing.assert_allclose(pairwise_distance(q, g), expected, rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(pairwise_distance(q, g, "euclidean"), np.sqrt(expected), rtol=1e-4)
        cosine = 1 - (q @ g.T) / np.outer(np.linalg.norm(q, axis=1), np.linalg.norm(g, axis=1))
        np.testing.assert_allclose(pairwise_distance(q, g, "cosine"), cosine, atol=1e-5)
        with pytest.raises(ValueError, match="equal width"):
            pairwise_distance(q, g[:, :3])

    def test_evaluate_features_equals_evaluate_rank(self):
        rng = np.random.default_rng(1)
        _, q_pids, g_pids, q_cams, g_cams = random_problem(6)
        qf, gf = rng.normal(size=(len(q_pids), 8)), rng.normal(size=(len(g_pids), 8))
        chunked = evaluate_features(qf, gf, q_pids, g_pids, q_cams, g_cams, chunk_size=4)
        full = evaluate_rank(pairwise_distance(qf, gf), q_pids, g_pids, q_cams, g_cams)
        np.testing.assert_allclose(chunked["cmc"], full["cmc"])
        assert chunked["mAP"] == pytest.approx(full["mAP"])

    def test_alpha_query_expansion_matches_loop(self):
        rng = np.random.default_rng(2)
        qf, gf = rng.normal(size=(3, 5)), rng.normal(size=(7, 5))
        expanded = alpha_query_expansion(qf, gf, top_k=2, alpha=3.0)
        unit = lambda x: x / np.linalg.norm(x)  # noqa: E731
        for i in range(3):
            q = unit(qf[i])
            sims = [unit(g) @ q for g in gf]
            total = q.copy()
            for j in np.argsort(sims)[::-1][:2]:
                total += max(sims[j], 0.0) ** 3 * unit(gf[j])
            np.testing.assert_allclose(expanded[i], unit(total), atol=1e-5)


def test_evaluate_rank_of_a_python_list():
    """A list of rows is evaluated as the array it spells (it used to be
    refused as "distmat.shape=None"); a ragged one is named."""
    distances = [[0.1, 0.9], [0.8, 0.2]]
    ids = (np.array([1, 2]), np.array([1, 2]), np.array([0, 0]), np.array([1, 1]))
    as_list = evaluate_rank(distances, *ids, max_rank=2)
    as_array = evaluate_rank(np.array(distances), *ids, max_rank=2)
    assert as_list["mAP"] == as_array["mAP"] == 1.0
    with pytest.raises(ValueError, match="distmat"):
        evaluate_rank([[0.1, 0.9], [0.8]], *ids)


def test_bootstrap_interval_of_the_mean_matches_the_normal_approximation():
    bootstrap_interval = evaluation.bootstrap_interval
    values = np.random.default_rng(1).uniform(0, 1, size=400)
    low, high = bootstrap_interval(values)
    half_width = 1.96 * values.std() / np.sqrt(len(values))  # the central limit theorem's
    assert low < values.mean() < high
    assert (high - low) / 2 == pytest.approx(half_width, rel=0.15)
    assert bootstrap_interval([0.3, np.nan, 0.3]) == pytest.approx((0.3, 0.3))  # skipped queries dropped
    with pytest.raises(ValueError, match="at least one finite value"):
        bootstrap_interval([np.nan])
