"""Multi-device training: the scope a recipe builds its model in, and the
loss scaling TensorFlow's replicas need."""

import contextlib

import keras

DISTRIBUTIONS = ("none", "mirrored", "data_parallel")


def distribution_scope(distribution):
    """`mirrored`: tf.distribute.MirroredStrategy over all local devices
    (TensorFlow backend); `data_parallel`: keras.distribution.DataParallel
    (JAX backend). Returns a context manager to build the model in."""
    backend = keras.config.backend()
    if distribution == "none":
        return contextlib.nullcontext()
    if distribution == "mirrored" and backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    if distribution == "data_parallel" and backend == "jax":
        keras.distribution.set_distribution(keras.distribution.DataParallel())
        return contextlib.nullcontext()
    raise ValueError(
        "Expected distribution 'none', 'mirrored' (TensorFlow backend) or "
        f"'data_parallel' (JAX backend). Received: distribution={distribution} "
        f"with backend={backend}"
    )


def scale_loss_for_replicas(loss):
    """TF + tf.distribute only: Keras's TF trainer expects the per-replica
    loss divided by the replica count (compiled losses are); an overridden
    `compute_loss` must do it itself or the update is N times too large."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        replicas = tf.distribute.get_strategy().num_replicas_in_sync
        if replicas > 1:
            loss = loss / replicas
    return loss
