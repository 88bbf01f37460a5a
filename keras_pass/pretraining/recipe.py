"""The official PASS pre-training recipe as one function (`pretrain`)."""

import contextlib
import json
import os

import keras

from keras_pass.models.backbone import PASSBackbone
from keras_pass.pretraining.callbacks import pass_schedules
from keras_pass.pretraining.checkpoint import PretrainingCheckpoint
from keras_pass.pretraining.trainer import PASSPretrainer

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


def pretrain(
    dataset,
    output_dir,
    steps_per_epoch,
    batch_size,
    arch="vit_small",
    backbone=None,
    epochs=100,
    base_lr=5e-4,
    min_lr=1e-6,
    warmup_epochs=10,
    out_dim=65536,
    drop_path_rate=0.1,
    image_size=(256, 128),
    freeze_last_layer_epochs=1,
    teacher_temp=0.04,
    warmup_teacher_temp=0.04,
    warmup_teacher_temp_epochs=0,
    save_freq=500,
    distribution="none",
    dtype=None,
    verbose="auto",
    extra_callbacks=(),
    model_kwargs=None,
):
    """Pre-trains a PASS ViT and writes, under `output_dir`:
    `checkpoint/` (resumable state), `logs/` (TensorBoard), `history.json`,
    `teacher_preset/` and `student_preset/` (KerasHub presets).

    Re-running with the same `output_dir` resumes from the last checkpoint.
    `backbone` overrides `arch` (e.g. a tiny config); `model_kwargs` go to
    `PASSPretrainer`.
    """
    with distribution_scope(distribution):
        if backbone is None:
            backbone = PASSBackbone.from_arch(
                arch, image_shape=(*image_size, 3), drop_path_rate=drop_path_rate,
                pos_embed_interpolation="always", dtype=dtype,
            )
        model = PASSPretrainer(
            backbone, out_dim=out_dim, teacher_temp=warmup_teacher_temp, **(model_kwargs or {})
        )
        model.compile(jit_compile=False if distribution == "mirrored" else "auto")
    callbacks = pass_schedules(
        epochs, steps_per_epoch, batch_size, base_lr=base_lr, min_lr=min_lr,
        warmup_epochs=warmup_epochs, teacher_temp=teacher_temp,
        warmup_teacher_temp=warmup_teacher_temp,
        warmup_teacher_temp_epochs=warmup_teacher_temp_epochs,
        freeze_last_layer_epochs=freeze_last_layer_epochs,
    )
    callbacks += [
        PretrainingCheckpoint(os.path.join(output_dir, "checkpoint"), save_freq=save_freq),
        keras.callbacks.TensorBoard(os.path.join(output_dir, "logs"), update_freq="epoch"),
        *extra_callbacks,
    ]
    history = model.fit(
        dataset, epochs=epochs, steps_per_epoch=steps_per_epoch,
        callbacks=callbacks, verbose=verbose,
    )
    model.save_teacher_preset(os.path.join(output_dir, "teacher_preset"))
    model.student_backbone.save_to_preset(os.path.join(output_dir, "student_preset"))
    _append_history(os.path.join(output_dir, "history.json"), history.history)
    return model, history


def _append_history(path, history):
    """Keeps the curves of every (resumed) run in one file."""
    previous = {}
    if os.path.exists(path):
        with open(path) as f:
            previous = json.load(f)
    merged = {k: previous.get(k, []) + [float(x) for x in v] for k, v in history.items()}
    staging = path + ".tmp"
    with open(staging, "w") as f:
        json.dump(merged, f)
    os.replace(staging, path)
