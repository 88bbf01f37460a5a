"""One process of a tiny recipe run, for the multi-process tests.

    python -m tests.backend.recipe_run {pretrain,finetune,usl,both} DATA OUT_DIR RESULT.npz
        [--devices N]

DATA holds `lup/` (unlabeled images, pre-training), a Market-1501 folder and
`preset/` (fine-tuning; USL too, with `usl`, run by hand: not in the tests);
`both` runs pre-training and fine-tuning one after the other in
the same processes (into OUT_DIR/pretrain and OUT_DIR/finetune).

A multi-process run is started by the recipe itself from the
KERAS_DISTRIBUTION_* variables the test sets; --devices N simulates N CPU
devices in this process. Saves (per process) the final student, teacher and
centers (pretrain) or the loss history and weights (finetune).
"""

import argparse
import os

if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("recipe", choices=("pretrain", "finetune", "usl", "both"))
    parser.add_argument("data")
    parser.add_argument("out_dir")
    parser.add_argument("result")
    parser.add_argument("--devices", type=int, default=1)
    args = parser.parse_args()
    os.environ["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={args.devices}"

import jax  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402

from keras_pass.backend import processes  # noqa: E402
from tests.helpers import TINY_BACKBONE  # noqa: E402

TINY = {k: v for k, v in TINY_BACKBONE.items() if k != "image_shape"}


def pretrain(data, out_dir, distribution):
    from keras_pass.recipes.pretrain import PretrainConfig, pretrain

    model, history = pretrain(PretrainConfig(
        data=os.path.join(data, "lup"), output_dir=str(out_dir), arch="vit_tiny", backbone_overrides=TINY,
        image_size=(64, 32), local_size=(32, 16), local_crops_per_part=1, epochs=1, batch_size=4,
        steps_per_epoch=2, warmup_epochs=0, out_dim=32, head_hidden_dim=16, bottleneck_dim=8,
        drop_path_rate=0.0, save_freq=2, verbose=0, seed=3, distribution=distribution,
        view_augmentations="none",
    ))
    arrays = {f"teacher_{i}": t for i, t in enumerate(model.teacher_backbone.get_weights())}
    arrays.update({f"student_{i}": s for i, s in enumerate(model.student_backbone.get_weights())})
    arrays["centers"] = keras.ops.convert_to_numpy(model.centers)
    arrays["loss"] = np.array(history.history["loss"])
    return arrays


def finetune(data, out_dir, distribution):
    from keras_pass.recipes.finetune import FinetuneConfig, finetune

    finetune(FinetuneConfig(
        data_root=str(data), output_dir=str(out_dir), preset=os.path.join(data, "preset"),
        epochs=2, batch_size=8, num_instances=2, steps_per_epoch=2, warmup_epochs=0, eval_every=2,
        drop_path_rate=0.0, verbose=0, distribution=distribution,
    ))
    import csv

    with open(os.path.join(out_dir, "history.csv")) as handle:
        rows = list(csv.DictReader(handle))
    return {"loss": np.array([float(row["loss"]) for row in rows])}


def usl(data, out_dir, distribution):
    from keras_pass.recipes.cluster_contrast import USLConfig, train_usl

    history = train_usl(USLConfig(
        data_root=str(data), output_dir=str(out_dir), preset=os.path.join(data, "preset"), image_size=(64, 32),
        epochs=1, iters=2, batch_size=8, num_instances=2, k1=10, k2=3, eps=0.6, min_samples=2,
        drop_path_rate=0.0, verbose=0, distribution=distribution,
    ))
    return {"loss": np.array([e["loss"] for e in history[1:]]),
            "mAP": np.array([e["mAP"] for e in history if "mAP" in e])}


def run(recipe, data, out_dir, devices=1):
    """The recipe's results and the processes/devices it ran on."""
    distribution = "data_parallel" if devices > 1 or processes.multi_process_requested() else "none"
    arrays = {}
    for name, function in (("pretrain", pretrain), ("finetune", finetune), ("usl", usl)):
        if recipe == name or (recipe == "both" and name != "usl"):
            outputs = function(data, os.path.join(out_dir, name), distribution)
            arrays.update({f"{name}/{key}": value for key, value in outputs.items()})
    # The recipe restores the distribution on exit: count the devices it spread over.
    arrays["num_devices"] = np.array(jax.device_count() if distribution == "data_parallel" else 1)
    arrays["num_processes"] = np.array(processes.process_count())
    return arrays


if __name__ == "__main__":
    np.savez(args.result, **run(args.recipe, args.data, args.out_dir, args.devices))
