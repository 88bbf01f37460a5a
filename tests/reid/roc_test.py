import numpy as np
import pytest
from sklearn.metrics import roc_curve

from keras_pass.reid.roc import blockwise_tpr_at_fpr, tpr_at_fpr, verification_distances
from tests.helpers import once_under_tensorflow

# `keras_pass.reid.roc` is NumPy, no Keras op: the backend cannot change what is checked here.
pytestmark = once_under_tensorflow


def _independent_tpr(positive, negative, rate):
    """The best TPR with FPR <= rate on sklearn's ROC (scores = -distance)."""
    labels = np.r_[np.ones(len(positive)), np.zeros(len(negative))]
    fpr, tpr, _ = roc_curve(labels, -np.r_[positive, negative])
    return tpr[fpr <= rate].max()


@pytest.mark.parametrize("seed", [0, 1])
def test_tpr_at_fpr_matches_sklearn_roc(seed):
    rng = np.random.default_rng(seed)
    positive = rng.normal(0.6, 0.25, size=3_000)
    negative = rng.normal(1.4, 0.25, size=200_000)
    results = tpr_at_fpr(positive, negative)
    for rate, (tpr, threshold) in results.items():
        assert tpr == pytest.approx(_independent_tpr(positive, negative, rate), abs=1e-12)
        assert np.mean(negative < threshold) <= rate
        assert np.mean(positive < threshold) == pytest.approx(tpr)
    assert results[1e-4][0] < results[1e-3][0] < results[1e-2][0]


def test_pairs_follow_the_ranking_protocol():
    distances = np.arange(12, dtype=float).reshape(2, 6)
    query_pids, query_camids = np.array([1, 2]), np.array([0, 0])
    gallery_pids, gallery_camids = np.array([1, 1, 2, 3, -1, 2]), np.array([0, 1, 1, 1, 1, 0])
    positive, negative = verification_distances(distances, query_pids, gallery_pids, query_camids,
                                                gallery_camids)
    # query 1: gallery 0 is same id same camera (left out), 1 positive, 2-3 negative, 4 junk,
    # 5 negative; query 2: 0, 1, 3 negative, 2 positive, 5 same camera (left out).
    np.testing.assert_array_equal(positive, [1, 8])
    np.testing.assert_array_equal(negative, [2, 3, 5, 6, 7, 9])


def test_bad_input():
    with pytest.raises(ValueError, match="positive and negative pairs"):
        tpr_at_fpr([], [1.0])
    with pytest.raises(ValueError, match="fpr=2"):
        tpr_at_fpr([0.1], [1.0], (2,))
    with pytest.raises(ValueError, match="distances.shape"):
        verification_distances(np.zeros((2, 2)), [1], [1, 2], [0], [0, 0])


@pytest.mark.parametrize("block_size", [1, 7, 1000])
def test_blockwise_equals_the_whole_matrix(block_size):
    rng = np.random.default_rng(3)
    query_pids, gallery_pids = rng.integers(-1, 12, 40), rng.integers(-1, 12, 300)
    query_camids, gallery_camids = rng.integers(0, 3, 40), rng.integers(0, 3, 300)
    distances = rng.random((40, 300)) + 0.3 * (query_pids[:, None] != gallery_pids[None, :])
    ids = (query_pids, gallery_pids, query_camids, gallery_camids)
    rates = (1e-3, 2e-2, 0.3)
    expected = tpr_at_fpr(*verification_distances(distances, *ids), rates)
    blockwise = blockwise_tpr_at_fpr(lambda start, stop: distances[start:stop], *ids, rates,
                                     block_size=block_size)
    assert blockwise == expected
    assert expected[0.3][0] > expected[1e-3][0]  # the rates do differ here


def test_too_few_smallest_negatives_is_an_error():
    with pytest.raises(ValueError, match="smallest 4 negatives"):
        tpr_at_fpr([0.1], [0.2, 0.3], (0.3,), num_negatives=10)
