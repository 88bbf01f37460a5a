"""Unsupervised (USL) and domain-adaptive (UDA) ReID with cluster contrast:
k-reciprocal Jaccard distance, DBSCAN pseudo-labels, the cluster memory and
its model, and the per-epoch recipes."""

from keras_pass.uda.clustering import Clustering, cluster_centroids, cluster_features, dbscan_labels
from keras_pass.uda.jaccard import jaccard_distance
from keras_pass.uda.memory import ClusterMemory, hard_update
from keras_pass.uda.model import ClusterContrastModel

