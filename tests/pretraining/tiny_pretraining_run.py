"""A tiny deterministic pre-training run, for subprocess tests.

    python -m tests.pretraining.tiny_pretraining_run OUT.npz CKPT_DIR
        [--devices N]

Every batch is the same fixed batch, so a resumed run sees the same data as
an uninterrupted one. With --devices 2 the run is data-parallel over two
simulated CPU devices (JAX DataParallel / TF MirroredStrategy).
"""

import argparse
import os

parser = argparse.ArgumentParser()
parser.add_argument("out")
parser.add_argument("checkpoint_dir", nargs="?")
parser.add_argument("--devices", type=int, default=1)
parser.add_argument("--steps-per-epoch", type=int, default=4)
parser.add_argument("--epochs", type=int, default=2)
args = parser.parse_args()
if args.devices > 1:
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"


import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from keras_pass.checkpoint import TrainingCheckpoint  # noqa: E402
from keras_pass.pretraining.schedules import pass_schedules  # noqa: E402
from tests.helpers import simulated_devices_scope, tiny_crops, tiny_pretrainer  # noqa: E402

with simulated_devices_scope(args.devices):
    keras.utils.set_random_seed(0)
    model = tiny_pretrainer(drop_path_rate=float(os.environ.get("DROP_PATH", "0.1")))
    model.compile(schedules=pass_schedules(args.epochs, args.steps_per_epoch, batch_size=4, warmup_epochs=1),
                  jit_compile=False if args.devices > 1 else "auto")
    if keras.config.backend() == "jax":  # the devices the run really spreads over
        distribution = keras.distribution.distribution()
        replicas = 1 if distribution is None else distribution.device_mesh.devices.size
    else:
        replicas = tf.distribute.get_strategy().num_replicas_in_sync
batch = {k: v[:4] for k, v in tiny_crops(batch=4).items()}
dataset = tf.data.Dataset.from_tensors(batch).repeat()
callbacks = []
if args.checkpoint_dir:
    callbacks.append(TrainingCheckpoint(args.checkpoint_dir, save_freq=1))
history = model.fit(dataset, epochs=args.epochs, steps_per_epoch=args.steps_per_epoch, callbacks=callbacks, verbose=0)
arrays = {f"teacher_{i}": keras.ops.convert_to_numpy(t) for i, (_, t) in enumerate(model._ema_pairs)}
arrays.update({f"student_{i}": keras.ops.convert_to_numpy(s) for i, (s, _) in enumerate(model._ema_pairs)})
arrays.update({f"optimizer_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(model.optimizer.variables)})
arrays["centers"] = keras.ops.convert_to_numpy(model.centers)
arrays["loss"] = np.array(history.history["loss"])
arrays["replicas"] = np.array(replicas)
np.savez(args.out, **arrays)
