"""Pseudo-labels: DBSCAN on the k-reciprocal Jaccard distance.

As the release: DBSCAN with a precomputed distance (eps 0.6 for Market-1501
targets, 0.7 for MSMT17; min_samples 4), outliers (label -1) dropped from the
epoch's training set, the cluster memory initialised with the L2-normalised
mean feature of each cluster.
"""

import dataclasses
import time

import numpy as np
from sklearn.cluster import DBSCAN

from keras_pass.uda.jaccard import jaccard_distance

OUTLIER = -1


@dataclasses.dataclass(frozen=True, eq=False)
class Clustering:
    """The result of one clustering round.

    labels: (N,) cluster ids 0..num_clusters-1, -1 for outliers.
    centroids: (num_clusters, D) L2-normalised cluster means.
    seconds: time spent (Jaccard distance + DBSCAN).
    """

    labels: np.ndarray
    centroids: np.ndarray
    seconds: float = 0.0

    @property
    def num_clusters(self):
        return len(self.centroids)

    @property
    def num_outliers(self):
        return int((self.labels == OUTLIER).sum())

    @property
    def kept(self):
        """Indices of the items that belong to a cluster."""
        return np.flatnonzero(self.labels != OUTLIER)

    def summary(self):
        return (f"{self.num_clusters} clusters, {self.num_outliers} outliers of "
                f"{len(self.labels)} items ({self.seconds:.1f} s)")


def relabel(labels):
    """Cluster ids renumbered 0..C-1 (in the order of the original ids);
    outliers (-1) stay -1."""
    labels = np.asarray(labels)
    result = np.full(labels.shape, OUTLIER, dtype=np.int64)
    inliers = labels != OUTLIER
    _, result[inliers] = np.unique(labels[inliers], return_inverse=True)
    return result


def cluster_centroids(features, labels):
    """(C, D) L2-normalised mean feature of each cluster 0..C-1 (outliers
    ignored)."""
    features = np.asarray(features, dtype=np.float32)
    labels = np.asarray(labels)
    inliers = labels != OUTLIER
    num_clusters = int(labels[inliers].max()) + 1 if inliers.any() else 0
    sums = np.zeros((num_clusters, features.shape[1]), np.float64)
    np.add.at(sums, labels[inliers], features[inliers])
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12)).astype(np.float32)


def _validate(eps, min_samples):
    if not 0.0 < eps < 1.0:
        raise ValueError(f"Expected 0 < eps < 1 (a Jaccard distance). Received: eps={eps}")
    if not (isinstance(min_samples, (int, np.integer)) and min_samples >= 1):
        raise ValueError(f"Expected an integer min_samples >= 1. Received: min_samples={min_samples}")


def dbscan_labels(distances, eps=0.6, min_samples=4):
    """DBSCAN labels of a precomputed (dense or sparse) distance matrix,
    relabelled 0..C-1 with -1 for outliers."""
    _validate(eps, min_samples)
    labels = DBSCAN(eps=eps, min_samples=min_samples, metric="precomputed").fit_predict(distances)
    return relabel(labels)


def cluster_features(features, eps=0.6, min_samples=4, k1=30, k2=6, search="auto", verbose=False):
    """Jaccard distance -> DBSCAN -> `Clustering` of (N, D) features."""
    _validate(eps, min_samples)
    start = time.perf_counter()
    distances = jaccard_distance(features, k1, k2, max_distance=eps, search=search, verbose=verbose)
    labels = dbscan_labels(distances, eps, min_samples)
    centroids = cluster_centroids(features, labels)
    return Clustering(labels, centroids, time.perf_counter() - start)
