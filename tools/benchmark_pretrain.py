"""Images/s of one PASS pre-training step (ViT-S/16, 2 x 256x128 + 9 x 128x64
crops, batch 8) on the current backend, median of >= 10 steps after warm-up,
and the multi-crop data pipeline's speed alone.

    KERAS_BACKEND=tensorflow python tools/benchmark_pretrain.py [--steps 10] [--official-repo PATH]

Same as `python tools/benchmark.py pretrain data ...` (all options apply).

    KERAS_BACKEND=jax python tools/benchmark_pretrain.py overhead --config tiny --steps-per-execution 4

ms per step of `fit` with the release's schedules (`pass_schedules`), each
epoch of `--steps` steps timed whole (so `--steps-per-execution` > 1 counts
fairly), the first epoch (compilation) left out: `--config readme` is the
benchmark above, `tiny` a model where per-step overhead shows (width 32,
depth 1, patch 8, 32x16 global and 16x8 local crops, batch 4, 64 prototypes).
"""

import argparse
import json
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def _overhead_model(config):
    from keras_pass import PASSBackbone
    from keras_pass.models.configs import arch_config
    from keras_pass.pretraining import PASSPretrainer

    if config == "readme":
        arch, image, local, batch = arch_config("vit_small"), (256, 128), (128, 64), 8
        heads = dict(out_dim=65536)
    else:
        arch = arch_config("vit_tiny", hidden_dim=32, num_layers=1, num_heads=2, mlp_dim=64, patch_size=8)
        image, local, batch = (32, 16), (16, 8), 4
        heads = dict(out_dim=64, head_hidden_dim=64, bottleneck_dim=32)
    backbone = PASSBackbone(**{**arch, "image_shape": (*image, 3), "stride": arch["patch_size"]},
                            drop_path_rate=0.1, pos_embed_interpolation="always")
    return PASSPretrainer(backbone, **heads), image, local, batch


def overhead(argv):
    import keras
    import numpy as np
    import tensorflow as tf

    from keras_pass.pretraining import pass_schedules

    parser = argparse.ArgumentParser(prog="benchmark_pretrain.py overhead")
    parser.add_argument("--config", choices=("readme", "tiny"), default="tiny")
    parser.add_argument("--steps-per-execution", type=int, default=1)
    parser.add_argument("--steps", type=int, default=200, help="steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=3, help="timed epochs")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    model, image, local, batch = _overhead_model(args.config)
    epochs = 1 + args.repeats
    model.compile(schedules=pass_schedules(epochs, args.steps, batch_size=batch, warmup_epochs=1),
                  steps_per_execution=args.steps_per_execution)
    rng = np.random.default_rng(0)
    data = {"global_crops": rng.normal(size=(batch, 2, *image, 3)).astype("float32"),
            "local_crops": rng.normal(size=(batch, 3, 3, *local, 3)).astype("float32")}
    times = []

    class EpochTimer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.start = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            float(keras.ops.convert_to_numpy(logs["loss"]))  # JAX: wait for the step
            times.append(time.perf_counter() - self.start)

    model.fit(tf.data.Dataset.from_tensors(data).repeat(), epochs=epochs, steps_per_epoch=args.steps,
              callbacks=[EpochTimer()], verbose=0)
    per_step = [1e3 * t / args.steps for t in times[1:]]
    print(json.dumps({"backend": keras.config.backend(), "config": args.config,
                      "steps_per_execution": args.steps_per_execution, "steps": args.steps,
                      "ms_per_step_median": round(statistics.median(per_step), 3),
                      "ms_per_step": [round(t, 3) for t in per_step], "load": os.getloadavg()}))


if __name__ == "__main__":
    if sys.argv[1:2] == ["overhead"]:
        overhead(sys.argv[2:])
    else:
        from benchmark import main

        main(["pretrain", "data", *sys.argv[1:]])
