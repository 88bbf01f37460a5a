"""The official PASS pre-training recipe as one function.

`pretrain(PretrainConfig(data=..., output_dir=...))` builds the region-bound
multi-crop stream, a PASS ViT student/teacher and the release's schedules,
trains with `model.fit`, and writes under `output_dir`:

    checkpoint/        resumable state (student, teacher, centers, optimizer)
    logs/              TensorBoard
    history.json       per-epoch metrics of every (resumed) run
    teacher_preset/    the teacher backbone: what users fine-tune from
    student_preset/

`objective="dino"` pre-trains the DINO baseline instead: CLS only, the
same multi-crop stream without region binding (one region, the whole
image, with `local_crops_per_part` x the backbone's parts local crops at
half `local_scale`, i.e. the same crop areas in image terms: PASS's
(0.1, 0.8) of a half-height region is DINO's (0.05, 0.4)).

Re-running with the same `output_dir` resumes: the weights from the last
saved step, the data stream from that epoch. Defaults reproduce
`PASS/script/vit-s_full_lup-pass.sh` (with the global batch you choose; the
release used 8 x 128).
"""

import contextlib
import dataclasses
import os

import keras

from keras_pass import io

from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.configs import arch_config
from keras_pass.pretraining.callbacks import pass_schedules
from keras_pass.pretraining.checkpoint import PretrainingCheckpoint
from keras_pass.pretraining.data import make_pass_dataset
from keras_pass.pretraining.trainer import PASSPretrainer

DISTRIBUTIONS = ("none", "mirrored", "data_parallel")


@dataclasses.dataclass
class PretrainConfig:
    data: object  # image folder (any depth), list file, or list of paths
    output_dir: str
    arch: str = "vit_small"
    backbone_overrides: dict = None  # e.g. hidden_dim/num_layers for small models
    preset: str = None  # start from a preset instead of random weights
    image_size: tuple = (256, 128)
    local_size: tuple = (128, 64)
    stride: int = 16
    global_scale: tuple = (0.4, 1.0)
    local_scale: tuple = (0.1, 0.8)
    local_crops_per_part: int = 3
    view_augmentations: object = None  # None: the release's; see make_pass_dataset
    epochs: int = 100
    batch_size: int = 128
    steps_per_epoch: int = None  # None: one pass over the images
    base_lr: float = 5e-4  # x batch_size / 256
    min_lr: float = 1e-6
    warmup_epochs: int = 10
    weight_decay: tuple = (0.04, 0.4)
    teacher_momentum: tuple = (0.996, 1.0)
    teacher_temp: float = 0.04
    warmup_teacher_temp: float = 0.04
    warmup_teacher_temp_epochs: int = 0
    freeze_last_layer_epochs: int = 1
    out_dim: int = 65536
    head_hidden_dim: int = 2048
    bottleneck_dim: int = 256
    drop_path_rate: float = 0.1
    clip_grad: float = 3.0
    objective: str = "pass"  # or "dino": the CLS-only baseline
    save_freq: int = 500
    distribution: str = "none"
    dtype: str = None  # e.g. "mixed_bfloat16"
    seed: int = 0
    verbose: object = "auto"


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


def build_backbone(config):
    """The student backbone: pre-training semantics (pos grid resampled on
    every call) and drop path, from a preset or random weights."""
    overrides = dict(
        image_shape=(*config.image_size, 3), stride=config.stride,
        drop_path_rate=config.drop_path_rate, pos_embed_interpolation="always", dtype=config.dtype,
    )
    if config.preset:
        return PASSBackbone.from_preset(config.preset, **overrides)
    return PASSBackbone(**arch_config(config.arch, **(config.backbone_overrides or {}), **overrides))


def crop_regions(config, num_parts):
    """Local-crop settings of `make_pass_dataset` for the objective: PASS's
    regions, or DINO's one whole-image region with as many local crops."""
    if config.objective == "dino":
        return dict(num_parts=1, region_bounds=((0.0, 1.0),),
                    local_crops_per_part=config.local_crops_per_part * num_parts,
                    local_scale=tuple(0.5 * s for s in config.local_scale))
    return dict(num_parts=num_parts, local_crops_per_part=config.local_crops_per_part,
                local_scale=config.local_scale)


def pretrain(config):
    """Runs (or resumes) pre-training; returns (model, history)."""
    keras.utils.set_random_seed(config.seed)
    checkpoint = PretrainingCheckpoint(os.path.join(config.output_dir, "checkpoint"), config.save_freq)
    saved = checkpoint.saved_state() or {}
    with distribution_scope(config.distribution):
        backbone = build_backbone(config)
        model = PASSPretrainer(
            backbone, out_dim=config.out_dim, head_hidden_dim=config.head_hidden_dim,
            bottleneck_dim=config.bottleneck_dim, teacher_temp=config.warmup_teacher_temp,
            teacher_momentum=config.teacher_momentum[0], clip_grad=config.clip_grad,
            objective=config.objective,
        )
        model.compile(jit_compile=False if config.distribution == "mirrored" else "auto")
    dataset = make_pass_dataset(
        config.data, config.batch_size, global_size=config.image_size,
        local_size=config.local_size, global_scale=config.global_scale,
        view_augmentations=config.view_augmentations, seed=config.seed, repeat=True,
        initial_epoch=saved.get("epoch", 0), **crop_regions(config, backbone.num_parts),
    )
    steps = config.steps_per_epoch or dataset.steps_per_epoch
    callbacks = pass_schedules(
        config.epochs, steps, config.batch_size, base_lr=config.base_lr, min_lr=config.min_lr,
        warmup_epochs=config.warmup_epochs, weight_decay=config.weight_decay,
        teacher_momentum=config.teacher_momentum, teacher_temp=config.teacher_temp,
        warmup_teacher_temp=config.warmup_teacher_temp,
        warmup_teacher_temp_epochs=config.warmup_teacher_temp_epochs,
        freeze_last_layer_epochs=config.freeze_last_layer_epochs,
    ) + [checkpoint, keras.callbacks.TensorBoard(os.path.join(config.output_dir, "logs"))]
    history = model.fit(
        dataset, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks,
        verbose=config.verbose,
    )
    model.save_teacher_preset(os.path.join(config.output_dir, "teacher_preset"))
    model.student_backbone.save_to_preset(os.path.join(config.output_dir, "student_preset"))
    _append_history(os.path.join(config.output_dir, "history.json"), history.history)
    return model, history


def _append_history(path, history):
    """Keeps the curves of every (resumed) run in one file, atomically."""
    previous = io.read_json(path) if os.path.exists(path) else {}
    merged = {k: previous.get(k, []) + [float(x) for x in v] for k, v in history.items()}
    io.write_json(path, merged, indent=None)
