"""The cluster-level memory of cluster contrast (`ClusterMemory`, 'hard' mode).

The memory holds one L2-normalised centroid per pseudo-identity. With
features f (L2-normalised) and pseudo-labels y of a batch:

    loss = cross_entropy(f . memory^T / temperature, y)     (temperature 0.05)

and after the loss, for every cluster c present in the batch, with h the
instance of c whose similarity f . memory[c] is the LOWEST (the hardest):

    memory[c] <- normalise(momentum * memory[c] + (1 - momentum) * h)   (momentum 0.2)

The memory is a fixed-capacity non-trainable variable (re-filled each epoch
with the new clusters; rows past `num_clusters` are masked out of the
logits), so its shape, and the compiled train step, never change.

Where the update happens: inside `compute_loss` (see `ClusterContrastModel`),
as plain `assign`s, which Keras turns into returned state under JAX's
stateless train step. Under data parallelism the rule needs the hardest
instance over the GLOBAL batch: JAX's `DataParallel` sees the global batch
already; under `tf.distribute` each replica all-gathers features and labels,
computes the same new memory, and the variable's `aggregation="mean"` keeps
the replicas identical.
"""

import keras
import numpy as np
from keras import ops


def l2_normalize(x, axis=-1):
    return x / ops.maximum(ops.norm(x, axis=axis, keepdims=True), 1e-12)


def hard_update(memory, features, labels, momentum=0.2):
    """The new memory after one batch (pure function of tensors).

    Args:
        memory: (C, D) centroids.
        features: (B, D) L2-normalised features.
        labels: (B,) integer cluster ids in [0, C).
        momentum: weight of the old centroid.
    """
    memory = ops.convert_to_tensor(memory, "float32")
    features = ops.cast(features, "float32")
    labels = ops.cast(labels, "int32")
    member = ops.equal(labels[:, None], ops.arange(ops.shape(memory)[0], dtype="int32")[None])
    similarity = ops.sum(features * ops.take(memory, labels, axis=0), axis=-1)
    masked = ops.where(member, similarity[:, None], float("inf"))
    hardest = ops.take(features, ops.argmin(masked, axis=0), axis=0)  # (C, D)
    moved = l2_normalize(momentum * memory + (1.0 - momentum) * hardest)
    present = ops.any(member, axis=0)
    return ops.where(present[:, None], moved, memory)


def _global_batch(features, labels):
    """All replicas' features and labels under `tf.distribute` (no-op elsewhere)."""
    if keras.config.backend() != "tensorflow":
        return features, labels
    import tensorflow as tf

    context = tf.distribute.get_replica_context()
    if context is None or context.num_replicas_in_sync == 1:
        return features, labels
    return context.all_gather(features, axis=0), context.all_gather(labels, axis=0)


@keras.saving.register_keras_serializable(package="keras_pass")
class ClusterMemory(keras.layers.Layer):
    """Cluster centroids for the cluster-contrast loss.

    Args:
        feature_dim: D, the feature width.
        capacity: maximum number of clusters (the number of training images
            always suffices).
        temperature: softmax temperature (0.05).
        momentum: weight of the old centroid in the hard update (0.2).
    """

    def __init__(self, feature_dim, capacity, temperature=0.05, momentum=0.2, **kwargs):
        super().__init__(**kwargs)
        for name, value in (("feature_dim", feature_dim), ("capacity", capacity)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"Expected an integer {name} >= 1. Received: {name}={value}")
        if temperature <= 0:
            raise ValueError(f"Expected temperature > 0. Received: temperature={temperature}")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"Expected 0 <= momentum <= 1. Received: momentum={momentum}")
        self.feature_dim = int(feature_dim)
        self.capacity = int(capacity)
        self.temperature = float(temperature)
        self.momentum = float(momentum)
        self.build()

    def build(self, input_shape=None):
        if self.built:
            return
        self.centroids = self.add_weight(
            shape=(self.capacity, self.feature_dim), initializer="zeros", trainable=False,
            aggregation="mean", name="centroids", dtype="float32",
        )
        self.num_clusters = self.add_weight(
            shape=(), initializer="zeros", trainable=False, dtype="int32", name="num_clusters",
        )
        self.built = True

    def reset(self, centroids):
        """Host side, between epochs: the new (C, D) centroids (normalised here)."""
        centroids = np.asarray(centroids, np.float32)
        if centroids.ndim != 2 or centroids.shape[1] != self.feature_dim:
            raise ValueError(
                f"Expected centroids of shape (C, {self.feature_dim}). "
                f"Received: centroids.shape={centroids.shape}"
            )
        if not 1 <= len(centroids) <= self.capacity:
            raise ValueError(
                f"Expected 1 <= number of clusters <= capacity={self.capacity}. "
                f"Received: {len(centroids)} clusters"
            )
        norms = np.linalg.norm(centroids, axis=1, keepdims=True)
        padded = np.zeros((self.capacity, self.feature_dim), np.float32)
        padded[: len(centroids)] = centroids / np.maximum(norms, 1e-12)
        self.centroids.assign(padded)
        self.num_clusters.assign(len(centroids))

    def logits(self, features):
        """(B, capacity) similarities / temperature; unused rows at -1e9."""
        features = l2_normalize(ops.cast(features, "float32"))
        logits = ops.matmul(features, ops.transpose(self.centroids)) / self.temperature
        valid = ops.arange(self.capacity, dtype="int32") < self.num_clusters
        return ops.where(valid[None], logits, -1e9)

    def loss_and_update(self, features, labels, update=True):
        """The batch's mean cross-entropy on the current memory; then (with
        `update`) the hard update of the memory (no gradient flows into it)."""
        logits = self.logits(features)
        loss = ops.mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        if not update:
            return loss
        all_features, all_labels = _global_batch(
            ops.stop_gradient(l2_normalize(ops.cast(features, "float32"))), labels
        )
        self.centroids.assign(hard_update(self.centroids, all_features, all_labels, self.momentum))
        return loss

    def get_config(self):
        config = super().get_config()
        config.update({"feature_dim": self.feature_dim, "capacity": self.capacity,
                       "temperature": self.temperature, "momentum": self.momentum})
        return config
