import numpy as np
import pytest

from keras_pass.uda import jaccard
from keras_pass.uda.jaccard import jaccard_distance, search_neighbours
from tests.helpers import once_under_tensorflow

# `keras_pass.uda.jaccard` is NumPy (and faiss), no Keras op: the backend cannot change what is
# checked here.
pytestmark = once_under_tensorflow


def reference_jaccard(features, k1, k2):
    """Plain loops over the definition (cluster-contrast variant)."""
    f = features / np.linalg.norm(features, axis=1, keepdims=True)
    n = len(f)
    d = ((f[:, None] - f[None]) ** 2).sum(-1)
    rank = np.argsort(d, axis=1, kind="stable")[:, :k1]

    def reciprocal(i, k):
        return [j for j in rank[i, :k] if i in rank[j, :k]]

    v = np.zeros((n, n))
    for i in range(n):
        own = reciprocal(i, k1)
        members = set(own)
        for c in own:
            theirs = reciprocal(c, int(round(k1 / 2)) + 1)
            if len(set(theirs) & set(own)) > 2 / 3 * len(theirs):
                members |= set(theirs)
        idx = sorted(members)
        w = np.exp(-d[i, idx])
        v[i, idx] = w / w.sum()
    if k2 > 1:
        v = np.stack([v[rank[i, :k2]].mean(0) for i in range(n)])
    result = np.zeros((n, n))
    for i in range(n):
        for j in range(n):
            result[i, j] = 1 - np.minimum(v[i], v[j]).sum() / np.maximum(v[i], v[j]).sum()
    return np.maximum(result, 0)


def grouped_features(seed=0, groups=5, per_group=8, dim=8, spread=0.35):
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(groups, dim))
    noise = spread * rng.normal(size=(groups * per_group, dim))
    return (np.repeat(centers, per_group, 0) + noise).astype(np.float32)


@pytest.mark.parametrize("k1,k2", [(6, 3), (10, 1), (12, 6)])
def test_matches_loop_reference(k1, k2):
    features = grouped_features()
    expected = reference_jaccard(features.astype(np.float64), k1, k2)
    actual = jaccard_distance(features, k1, k2, search="numpy")
    np.testing.assert_allclose(actual, expected, atol=2e-5)
    assert expected.min() == 0 and (expected < 1).mean() < 0.9  # a non-trivial case


def test_chunked_blocks_give_the_same_result(monkeypatch):
    from keras_pass.reid import reranking

    features = grouped_features(seed=1)
    whole = jaccard_distance(features, 8, 4, search="numpy")
    monkeypatch.setattr(reranking, "_CHUNK_ELEMENTS", 90)  # two rows per block
    np.testing.assert_allclose(jaccard_distance(features, 8, 4, search="numpy"), whole, atol=1e-6)


def test_sparse_output_keeps_the_close_pairs_and_zeros():
    features = grouped_features(seed=2)
    features[1] = features[0]  # identical items: distance exactly 0, stored
    dense = jaccard_distance(features, 8, 4, search="numpy")
    close = jaccard_distance(features, 8, 4, max_distance=0.6, search="numpy")
    rows, cols = np.nonzero(dense <= 0.6)
    assert close.nnz == len(rows)
    np.testing.assert_allclose(np.asarray(close[rows, cols]).ravel(), dense[rows, cols], atol=1e-7)
    assert close[0, 1] == 0 and close.has_canonical_format


def test_faiss_search_agrees_with_numpy():
    if not jaccard.faiss_available():
        pytest.skip("faiss-cpu is not installed (optional)")
    features = grouped_features(seed=3)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    np.testing.assert_array_equal(search_neighbours(features, 7, "faiss"),
                                  search_neighbours(features, 7, "numpy"))


def test_bad_arguments():
    features = grouped_features()
    with pytest.raises(ValueError, match="k1"):
        jaccard_distance(features, k1=1000)
    with pytest.raises(ValueError, match="k2"):
        jaccard_distance(features, k1=6, k2=7)
    with pytest.raises(ValueError, match="max_distance"):
        jaccard_distance(features, max_distance=1.5)
    with pytest.raises(ValueError, match="search"):
        jaccard_distance(features, k1=6, search="annoy")
