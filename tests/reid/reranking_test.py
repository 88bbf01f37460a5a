import numpy as np
import pytest

from keras_pass.reid.reranking import re_ranking
from keras_pass.reid.reranking import re_ranking_features
from tests.helpers import once_under_tensorflow

# `keras_pass.reid.reranking` is NumPy, no Keras op: the backend cannot change what is checked here.
pytestmark = once_under_tensorflow


def loop_re_ranking(q_g, q_q, g_g, k1, k2, lambda_value):
    """Straight from the paper's definitions, one item at a time, dense."""
    dist = np.block([[q_q, q_g], [q_g.T, g_g]]).astype(np.float64)
    num_query, total = len(q_q), len(dist)
    normalised = (dist / dist.max(axis=0)).T
    ranked = np.argsort(normalised, axis=1, kind="stable")

    def reciprocal(i, k):
        return [j for j in ranked[i, : k + 1] if i in ranked[j, : k + 1]]

    encoding = np.zeros((total, total))
    for i in range(total):
        own = reciprocal(i, k1)
        expanded = set(own)
        for candidate in own:
            theirs = reciprocal(candidate, round(k1 / 2))
            if len(set(theirs) & set(own)) > 2 / 3 * len(theirs):
                expanded |= set(theirs)
        members = sorted(expanded)
        weights = np.exp(-normalised[i, members])
        encoding[i, members] = weights / weights.sum()
    if k2 > 1:
        encoding = np.stack([encoding[ranked[i, :k2]].mean(0) for i in range(total)])
    result = np.zeros((num_query, total - num_query))
    for i in range(num_query):
        for j in range(total - num_query):
            a, b = encoding[i], encoding[num_query + j]
            jaccard = 1 - np.minimum(a, b).sum() / np.maximum(a, b).sum()
            result[i, j] = (1 - lambda_value) * jaccard + lambda_value * normalised[i, num_query + j]
    return result


def clustered_features(seed, num_query, num_gallery, num_clusters=5, dim=8):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_clusters, dim))
    labels = rng.integers(0, num_clusters, num_query + num_gallery)
    features = centres[labels] + 0.6 * rng.normal(size=(len(labels), dim))
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    return features[:num_query].astype(np.float32), features[num_query:].astype(np.float32)


def squared(a, b):
    return ((a[:, None].astype(np.float64) - b[None]) ** 2).sum(-1).astype(np.float32)


class TestReRanking:
    @pytest.mark.parametrize(
        "seed, k1, k2, lambda_value", [(0, 4, 3, 0.3), (1, 6, 1, 0.5), (2, 20, 6, 0.3)]
    )
    def test_matches_loop_implementation(self, seed, k1, k2, lambda_value):
        qf, gf = clustered_features(seed, 7, 33)
        q_g, q_q, g_g = squared(qf, gf), squared(qf, qf), squared(gf, gf)
        expected = loop_re_ranking(q_g, q_q, g_g, k1, k2, lambda_value)
        actual = re_ranking(q_g, q_q, g_g, k1=k1, k2=k2, lambda_value=lambda_value)
        assert actual.shape == (7, 33)
        np.testing.assert_allclose(actual, expected, atol=2e-5)
        from_features = re_ranking_features(qf, gf, k1=k1, k2=k2, lambda_value=lambda_value)
        np.testing.assert_allclose(from_features, expected, atol=2e-5)

    def test_chunked_blocks_give_the_same_result(self, monkeypatch):
        from keras_pass.reid import reranking

        qf, gf = clustered_features(3, 9, 25)
        args = (squared(qf, gf), squared(qf, qf), squared(gf, gf))
        expected = re_ranking(*args, k1=5, k2=2)
        monkeypatch.setattr(reranking, "_CHUNK_ELEMENTS", 40)  # one or two rows per block
        np.testing.assert_allclose(re_ranking(*args, k1=5, k2=2), expected, atol=1e-6)

    def test_bad_inputs(self):
        qf, gf = clustered_features(4, 3, 6)
        q_g, q_q, g_g = squared(qf, gf), squared(qf, qf), squared(gf, gf)
        with pytest.raises(ValueError, match="q_q_dist of shape"):
            re_ranking(q_g, g_g, g_g)
        with pytest.raises(ValueError, match="2-D q_g_dist"):
            re_ranking(q_g[0], q_q, g_g)
        with pytest.raises(ValueError, match="k1"):
            re_ranking(q_g, q_q, g_g, k1=9)
        with pytest.raises(ValueError, match="k2"):
            re_ranking(q_g, q_q, g_g, k1=3, k2=5)
        with pytest.raises(ValueError, match="lambda_value"):
            re_ranking(q_g, q_q, g_g, k1=3, k2=2, lambda_value=1.5)


def test_nan_distances_are_named_not_a_positive_distance_puzzle():
    rng = np.random.default_rng(0)
    features = rng.normal(size=(6, 4)).astype("float32")
    features[2, 1] = np.nan
    with pytest.raises(ValueError, match="finite numbers in query_features"):
        re_ranking_features(features[:3], features[3:])
    distances = np.ones((3, 3), np.float32)
    distances[0, 0] = np.nan
    with pytest.raises(ValueError, match="q_g_dist with 1 NaN/inf"):
        re_ranking(distances, np.ones((3, 3)), np.ones((3, 3)))
