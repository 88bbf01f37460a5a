"""Multi-device training: the scope a recipe builds its model in, and the
loss scaling TensorFlow's replicas need.

`data_parallel` (JAX) spreads each global batch over every device of every
process; a multi-process run is started from the Keras environment variables
(`keras_pass.backend.processes`). `multi_worker_mirrored` (TensorFlow's
MultiWorkerMirroredStrategy) is refused: Keras 3.15's `fit` fails under it
(measured: docs/experiments/multi_worker.md).
"""

import contextlib

import keras

from keras_pass.backend import processes

DISTRIBUTIONS = ("none", "mirrored", "data_parallel", "multi_worker_mirrored")
MULTI_WORKER_REFUSAL = (
    "Expected distribution 'data_parallel' on the JAX backend for multi-host training "
    "(KERAS_BACKEND=jax, KERAS_DISTRIBUTION_* variables; docs/scaling_out.md): TensorFlow's "
    "MultiWorkerMirroredStrategy fails inside Keras 3.15's fit. Received: distribution=multi_worker_mirrored"
)


def distribution_scope(distribution):
    """`mirrored`: tf.distribute.MirroredStrategy over all local devices
    (TensorFlow backend); `data_parallel`: keras.distribution.DataParallel
    (JAX backend). Returns a context manager to build and train the model in."""
    backend = keras.config.backend()
    if distribution == "multi_worker_mirrored":
        raise ValueError(MULTI_WORKER_REFUSAL)
    if distribution == "none":
        if processes.multi_process_requested():
            raise ValueError(
                "Expected distribution='data_parallel' with KERAS_DISTRIBUTION_* variables set "
                f"(a multi-process run). Received: distribution={distribution}")
        return contextlib.nullcontext()
    if distribution == "mirrored" and backend == "tensorflow":
        import tensorflow as tf

        return tf.distribute.MirroredStrategy().scope()
    if distribution == "data_parallel" and backend == "jax":
        return _data_parallel_scope()
    raise ValueError(
        "Expected distribution 'none', 'mirrored' (TensorFlow backend) or "
        f"'data_parallel' (JAX backend). Received: distribution={distribution} "
        f"with backend={backend}"
    )


@contextlib.contextmanager
def _data_parallel_scope():
    # Keras's distribution is a process-wide setting: restored on exit, so a
    # recipe run in a notebook or a test does not distribute what follows.
    previous = keras.distribution.distribution()
    set_data_parallel()
    try:
        yield
    finally:
        keras.distribution.set_distribution(previous)


def set_data_parallel():
    """keras.distribution.DataParallel over every device of every process.
    Each process already reads its own slice of the global batch
    (`processes.data_shard`), so Keras's auto-sharding is off."""
    processes.start_multi_process()
    devices = keras.distribution.list_devices()
    keras.distribution.set_distribution(
        keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False))


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
