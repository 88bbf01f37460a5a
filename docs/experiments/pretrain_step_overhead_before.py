"""`tools/benchmark_pretrain.py overhead` for commit 88a86b3's API (schedules as `fit` callbacks).

Run with PYTHONPATH at a checkout of 88a86b3: `python THIS {tiny,readme} K STEPS REPEATS`.
"""
import json
import os
import statistics
import sys
import time

import keras
import numpy as np
import tensorflow as tf

from keras_pass import PASSBackbone
from keras_pass.models.configs import arch_config
from keras_pass.pretraining import PASSPretrainer, pass_schedules

config, k, steps, repeats = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
keras.utils.set_random_seed(0)
if config == "readme":
    arch, image, local, batch = arch_config("vit_small"), (256, 128), (128, 64), 8
    heads = dict(out_dim=65536)
else:
    arch = arch_config("vit_tiny", hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64, patch_size=8)
    image, local, batch = (32, 16), (16, 8), 4
    heads = dict(out_dim=64, head_hidden_dim=64, bottleneck_dim=32)
backbone = PASSBackbone(**{**arch, "image_shape": (*image, 3), "stride": arch["patch_size"]},
                        drop_path_rate=0.1, pos_embed_interpolation="always")
model = PASSPretrainer(backbone, **heads)
epochs = 1 + repeats
model.compile(steps_per_execution=k)
rng = np.random.default_rng(0)
data = {"global_crops": rng.normal(size=(batch, 2, *image, 3)).astype("float32"),
        "local_crops": rng.normal(size=(batch, 3, 3, *local, 3)).astype("float32")}
times = []


class EpochTimer(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        self.start = time.perf_counter()

    def on_epoch_end(self, epoch, logs=None):
        float(keras.ops.convert_to_numpy(logs["loss"]))
        times.append(time.perf_counter() - self.start)


model.fit(tf.data.Dataset.from_tensors(data).repeat(), epochs=epochs, steps_per_epoch=steps,
          callbacks=[*pass_schedules(epochs, steps, batch_size=batch, warmup_epochs=1), EpochTimer()], verbose=0)
per_step = [1e3 * t / steps for t in times[1:]]
print(json.dumps({"backend": keras.config.backend(), "config": config, "code": "before 88a86b3",
                  "steps_per_execution": k, "steps": steps, "ms_per_step_median": round(statistics.median(per_step), 3),
                  "ms_per_step": [round(t, 3) for t in per_step], "load": os.getloadavg()}))
