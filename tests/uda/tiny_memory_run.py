"""A few cluster-memory train steps on 1 or 2 simulated CPU devices:
`run(out)` in this process, or `python -m tests.uda.tiny_memory_run OUT.npz
[--devices 2]` (simulated devices are set up before the backend starts: a
fresh process).

The model is a Dense layer (no BatchNorm, whose per-replica statistics would
differ from one device under tf.distribute) feeding `ClusterMemory`; each
cluster has one instance in each replica's half of the batch, so a memory
update from a replica's half batch would differ from the global rule.
"""

import argparse
import os

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--devices", type=int, default=1)
    args = parser.parse_args()
    if args.devices > 1:
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_pass.backend.distribution import scale_loss_for_replicas  # noqa: E402
from keras_pass.uda.memory import ClusterMemory, l2_normalize  # noqa: E402
from tests.helpers import simulated_devices_scope  # noqa: E402


class TinyMemoryModel(keras.Model):
    def __init__(self):
        super().__init__()
        self.dense = keras.layers.Dense(8)
        self.memory = ClusterMemory(8, capacity=6)

    def call(self, x, training=False):
        return l2_normalize(self.dense(x))

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        return scale_loss_for_replicas(self.memory.loss_and_update(y_pred, y, update=training))


def run(out, devices=1):
    """Three train steps; saves the memory, the kernel and the losses to `out` (.npz)."""
    rng = np.random.default_rng(0)
    images = rng.normal(size=(8, 5)).astype("float32")
    labels = np.array([0, 1, 2, 3, 0, 1, 2, 3], "int32")
    with simulated_devices_scope(devices):
        keras.utils.set_random_seed(0)
        model = TinyMemoryModel()
        model.build((None, 5))
        model.memory.reset(rng.normal(size=(4, 8)))
        model.compile(optimizer=keras.optimizers.SGD(0.1), jit_compile=False if devices > 1 else "auto")
    dataset = tf.data.Dataset.from_tensors((images, labels)).repeat()
    history = model.fit(dataset, epochs=1, steps_per_epoch=3, verbose=0, shuffle=False)
    np.savez(out, memory=keras.ops.convert_to_numpy(model.memory.centroids),
             kernel=keras.ops.convert_to_numpy(model.dense.kernel),
             loss=np.array(history.history["loss"]))


if __name__ == "__main__":
    run(args.out, args.devices)
