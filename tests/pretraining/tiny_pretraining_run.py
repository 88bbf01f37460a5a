"""A tiny deterministic pre-training run (`PASSPretrainer.fit`), for the
multi-device test: `run(out, devices)` in this process, or

    python -m tests.pretraining.tiny_pretraining_run OUT.npz [--devices N]

Every batch is the same fixed batch. With --devices 2 the run is
data-parallel over two simulated CPU devices (JAX DataParallel / TF
MirroredStrategy), which must be set up before the backend starts: a fresh
process.
"""

import argparse
import os

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--steps-per-epoch", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--drop-path-rate", type=float, default=0.1)
    args = parser.parse_args()
    if args.devices > 1:
        os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_pass.pretraining.schedules import pass_schedules  # noqa: E402
from tests.helpers import simulated_devices_scope, tiny_crops, tiny_pretrainer  # noqa: E402


def run(out, devices=1, epochs=2, steps_per_epoch=4, drop_path_rate=0.1):
    """Trains; saves student, teacher, optimizer state, centers, losses and
    the number of replicas to `out` (.npz)."""
    with simulated_devices_scope(devices):
        keras.utils.set_random_seed(0)
        model = tiny_pretrainer(drop_path_rate=drop_path_rate)
        model.compile(schedules=pass_schedules(epochs, steps_per_epoch, batch_size=4, warmup_epochs=1),
                      jit_compile=False if devices > 1 else "auto")
        if keras.config.backend() == "jax":  # the devices the run really spreads over
            distribution = keras.distribution.distribution()
            replicas = 1 if distribution is None else distribution.device_mesh.devices.size
        else:
            replicas = tf.distribute.get_strategy().num_replicas_in_sync
    batch = {k: v[:4] for k, v in tiny_crops(batch=4).items()}
    dataset = tf.data.Dataset.from_tensors(batch).repeat()
    history = model.fit(dataset, epochs=epochs, steps_per_epoch=steps_per_epoch, verbose=0)
    arrays = {f"teacher_{i}": keras.ops.convert_to_numpy(t) for i, (_, t) in enumerate(model._ema_pairs)}
    arrays.update({f"student_{i}": keras.ops.convert_to_numpy(s) for i, (s, _) in enumerate(model._ema_pairs)})
    arrays.update({f"optimizer_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)})
    arrays["centers"] = keras.ops.convert_to_numpy(model.centers)
    arrays["loss"] = np.array(history.history["loss"])
    arrays["replicas"] = np.array(replicas)
    np.savez(out, **arrays)


if __name__ == "__main__":
    run(args.out, args.devices, args.epochs, args.steps_per_epoch, args.drop_path_rate)
