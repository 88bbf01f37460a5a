"""Multi-process runs: starting them, and which process does what.

A multi-process run (several hosts, or several local processes) is started
from the standard Keras environment variables, read by
`keras.distribution.initialize`:

    KERAS_DISTRIBUTION_JOB_ADDRESSES   coordinator "host:port" (or all of them)
    KERAS_DISTRIBUTION_NUM_PROCESSES   number of processes
    KERAS_DISTRIBUTION_PROCESS_ID      this process, 0 .. N-1

Any of them set (JAX backend) starts `jax.distributed`; those left unset are
auto-detected by `jax.distributed.initialize` (Slurm, TPU pod slices, Open
MPI). Every process then trains data-parallel over every device of every
process; each reads its own slice of each global batch (`data_shard`); only
the writer (process 0) writes files (`is_writer`, checked by keras_pass.io).
"""

import os

import keras

ENVIRONMENT = (
    "KERAS_DISTRIBUTION_JOB_ADDRESSES",
    "KERAS_DISTRIBUTION_NUM_PROCESSES",
    "KERAS_DISTRIBUTION_PROCESS_ID",
)


def multi_process_requested():
    """True when a Keras distribution environment variable is set."""
    return any(os.environ.get(name) for name in ENVIRONMENT)


def _jax_distributed_started():
    if keras.config.backend() != "jax":
        return False
    import jax

    return jax.distributed.is_initialized()


def start_multi_process():
    """Starts `jax.distributed` from the environment (once; before any JAX
    computation). On CPU, gloo collectives: JAX has no other cross-process
    CPU all-reduce. Returns True when this is a multi-process run."""
    if _jax_distributed_started():
        return True
    if not multi_process_requested():
        return False
    if keras.config.backend() != "jax":
        raise ValueError(
            "Expected the JAX backend for a multi-process run started from "
            f"{', '.join(ENVIRONMENT)} (TensorFlow: multi-worker is refused, see "
            f"docs/scaling_out.md). Received: backend={keras.config.backend()}"
        )
    import jax

    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    keras.distribution.initialize()
    return True


def process_count():
    """Processes of the run (1 unless `jax.distributed` is started)."""
    if not _jax_distributed_started():
        return 1
    import jax

    return jax.process_count()


def process_index():
    """This process's index, 0 .. process_count() - 1."""
    if not _jax_distributed_started():
        return 0
    import jax

    return jax.process_index()


def is_writer():
    """The one process that writes files (checkpoints, presets, logs,
    pictures, run.json): process 0. Every process reads them."""
    return process_index() == 0


def num_devices():
    """Devices one training step spreads over (all processes together)."""
    if keras.config.backend() == "jax":
        distribution = keras.distribution.distribution()
        return 1 if distribution is None else int(distribution.device_mesh.devices.size)
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return int(tf.distribute.get_strategy().num_replicas_in_sync)
    return 1


def data_shard():
    """`make_pass_dataset` arguments reading this process's slice of each
    global batch: {} in a single-process run."""
    if process_count() == 1:
        return {}
    return {"num_shards": process_count(), "shard_index": process_index()}


def writer_callback(callback):
    """`callback` on the writer; elsewhere a no-op Callback. For callbacks
    that write on their own (TensorBoard, CSVLogger), not through
    keras_pass.io."""
    return callback if is_writer() else keras.callbacks.Callback()
