import numpy as np
import pytest

from keras_pass.uda.clustering import cluster_centroids, cluster_features, relabel
from tests.helpers import once_under_tensorflow

# `keras_pass.uda.clustering` is NumPy and scikit-learn, no Keras op: the backend cannot change what
# is checked here.
pytestmark = once_under_tensorflow


def test_relabel_keeps_outliers_and_numbers_clusters_from_zero():
    np.testing.assert_array_equal(relabel([7, -1, 3, 7, 9, -1]), [1, -1, 0, 1, 2, -1])


def test_centroids_are_normalised_means_ignoring_outliers():
    features = np.array([[1, 0], [0, 1], [3, 4], [9, 9]], np.float32)
    centroids = cluster_centroids(features, np.array([0, 0, 1, -1]))
    np.testing.assert_allclose(centroids, [[0.70710677, 0.70710677], [0.6, 0.8]], rtol=1e-6)


def test_groups_become_clusters_and_stragglers_are_dropped():
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(4, 16))
    groups = np.repeat(centers, 10, 0) + 0.1 * rng.normal(size=(40, 16))
    stragglers = rng.normal(size=(3, 16))
    features = np.concatenate([groups, stragglers]).astype(np.float32)
    result = cluster_features(features, eps=0.6, min_samples=4, k1=10, k2=2, search="numpy")
    assert result.num_clusters == 4 and result.num_outliers == 3
    np.testing.assert_array_equal(result.labels[40:], -1)
    truth = np.repeat(np.arange(4), 10)
    # one cluster per group (pure and complete), whatever the numbering
    assert len(set(zip(truth, result.labels[:40]))) == 4
    np.testing.assert_array_equal(result.kept, np.arange(40))
    assert result.centroids.shape == (4, 16)
    np.testing.assert_allclose(np.linalg.norm(result.centroids, axis=1), 1, rtol=1e-5)


@pytest.mark.parametrize("kwargs, name", [({"eps": 1.2}, "eps"), ({"min_samples": 0}, "min_samples")])
def test_bad_arguments(kwargs, name):
    with pytest.raises(ValueError, match=name):
        cluster_features(np.eye(5, dtype=np.float32), k1=3, k2=1, **kwargs)
