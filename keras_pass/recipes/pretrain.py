"""The official PASS pre-training recipe as one function.

`pretrain(PretrainConfig(data=..., output_dir=...))` builds the region-bound
multi-crop stream, a PASS ViT student/teacher and the release's schedules,
trains with `model.fit`, and writes under `output_dir`:

    checkpoint/        resumable state (student, teacher, centers, optimizer)
    logs/              TensorBoard
    history.json       per-epoch metrics, written at every epoch end
    teacher_preset/    the teacher backbone: what users fine-tune from
    student_preset/
    unreadable_images.txt  the images left out by the up-front checks, if any

`objective="dino"` pre-trains the DINO baseline instead: CLS only, the
same multi-crop stream without region binding (one region, the whole
image, with `local_crops_per_part` x the backbone's parts local crops at
half `local_scale`, i.e. the same crop areas in image terms: PASS's
(0.1, 0.8) of a half-height region is DINO's (0.05, 0.4)).

The folder is a run folder (`keras_pass.runs`, docs/runs.md): locked,
its settings recorded in `run.json`. Re-running with the same
`output_dir` resumes exactly: the whole state of
the last saved step and the data stream at that step (bit-identical to an
uninterrupted run: tests/recipes/pretrain_test.py); re-running a
finished run does nothing (`overwrite=True` trains again). Defaults reproduce
`PASS/script/vit-s_full_lup-pass.sh` (with the global batch you choose; the
release used 8 x 128).
"""

import dataclasses
import os

import keras

from keras_pass import io
from keras_pass.checkpoint import TrainingCheckpoint, read_state

from keras_pass.backend.distribution import DISTRIBUTIONS
from keras_pass.backend.processes import data_shard, writer_callback
from keras_pass.data.formats import IMAGE_FORMATS_HELP
from keras_pass.data.images import SkippedImages
from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.configs import ARCHITECTURES, arch_config
from keras_pass.pretraining.callbacks import EpochHistoryFile
from keras_pass.pretraining.data import make_pass_dataset
from keras_pass.pretraining.shards import is_shard_folder
from keras_pass.models.heads import RELEASE_OUT_DIM
from keras_pass.pretraining.schedules import RELEASE_TEACHER_MOMENTUM, pass_schedules
from keras_pass.pretraining.trainer import OBJECTIVES, PASSPretrainer
from keras_pass.recipes.config import check_crop_fits, setting
from keras_pass.loading import load_backbone
from keras_pass.reid.progress import fit_verbosity
from keras_pass.runs import run_recipe

DEFAULT_IMAGE_SIZE = (256, 128)


@dataclasses.dataclass
class PretrainConfig:
    """Every setting of `pretrain`; defaults: the release's ViT-S script.
    Each one is a `keras-pass pretrain` flag (help text below)."""

    data: object = setting(help=f"Image folder (any depth), list file, list of paths or `keras-pass shard` "
                           f"folder. {IMAGE_FORMATS_HELP}", group="data", flag="data_dir")
    output_dir: str = setting(help="Checkpoints, TensorBoard logs, history.json, presets.", group="output",
                              cli_default="runs/pretrain", output=True)
    arch: str = setting("vit_small", "Architecture of a random start.", "model", choices=tuple(ARCHITECTURES))
    backbone_overrides: dict = setting(None, "Backbone config overrides, a Python dict literal, e.g. "
                                       "\"{'hidden_dim': 96, 'num_layers': 4}\".", "model", literal=True)
    preset: str = setting(None, "Start from this preset instead of random weights.", "model")
    image_size: tuple = setting(None, "Global crop height,width (default: the preset's, else 256,128).",
                                "data", length=2, minimum=1)
    local_size: tuple = setting(None, "Local crop height,width (default: half of image_size).", "data",
                                length=2, minimum=1)
    stride: int = setting(None, "Patch stride (default: the preset's, else the patch size).", "model",
                          minimum=1)
    global_scale: tuple = setting((0.4, 1.0), "Area fraction range of the global crops.", "data",
                                  item=float, length=2, minimum=0.0, maximum=1.0)
    local_scale: tuple = setting((0.1, 0.8), "Area fraction range of the local crops (of their region).",
                                 "data", item=float, length=2, minimum=0.0, maximum=1.0)
    local_crops_per_part: int = setting(3, "Local crops per region.", "data", minimum=1)
    view_augmentations: object = setting(None, "Per-view augmentation overrides (a dict literal) or "
                                         "'none'; default: the release's DINO views.", "data", literal=True)
    epochs: int = setting(100, "Epochs.", "schedule", minimum=1)
    batch_size: int = setting(128, "Global batch size (the release: 8 GPUs x 128).", "schedule", minimum=1)
    steps_per_epoch: int = setting(None, "Steps per epoch (default: one pass over the images).",
                                   "schedule", minimum=1)
    base_lr: float = setting(5e-4, "Learning rate per 256 images (scaled by batch_size / 256).",
                             "optimisation", minimum=0.0)
    min_lr: float = setting(1e-6, "Final learning rate of the cosine.", "optimisation", minimum=0.0)
    warmup_epochs: int = setting(10, "Linear learning-rate warm-up epochs.", "schedule", minimum=0)
    weight_decay: tuple = setting((0.04, 0.4), "Weight decay start,end (cosine).", "optimisation",
                                  item=float, length=2, minimum=0.0)
    teacher_momentum: tuple = setting((RELEASE_TEACHER_MOMENTUM, 1.0), "Teacher EMA momentum start,end "
                                      "(cosine).", "teacher", item=float, length=2,
                                      minimum=0.0, maximum=1.0)
    teacher_temp: float = setting(0.04, "Teacher temperature after the warm-up.", "teacher", minimum=1e-6)
    warmup_teacher_temp: float = setting(0.04, "Teacher temperature at the start.", "teacher", minimum=1e-6)
    warmup_teacher_temp_epochs: int = setting(0, "Epochs of the teacher temperature warm-up.", "teacher",
                                              minimum=0)
    freeze_last_layer_epochs: int = setting(1, "Epochs with the heads' last layer frozen.", "optimisation",
                                            minimum=0)
    out_dim: int = setting(RELEASE_OUT_DIM, "Prototypes per head (one: a constant loss of 0).", "heads",
                           minimum=2)
    head_hidden_dim: int = setting(2048, "Hidden width of the heads' MLP.", "heads", minimum=1)
    bottleneck_dim: int = setting(256, "Bottleneck width of the heads.", "heads", minimum=1)
    drop_path_rate: float = setting(0.1, "Stochastic depth of the student.", "model", minimum=0.0,
                                   maximum=0.99)
    clip_grad: float = setting(3.0, "Per-parameter gradient norm limit.", "optimisation", minimum=0.0)
    objective: str = setting("pass", "pass: CLS + part tokens; dino: the CLS-only baseline.", "model",
                             choices=OBJECTIVES)
    save_freq: int = setting(500, "Checkpoint every N steps (and every epoch).", "output", minimum=1)
    distribution: str = setting("none", "mirrored: tf.distribute (TensorFlow); data_parallel: "
                                "keras.distribution (JAX), multi-process from KERAS_DISTRIBUTION_* "
                                "(docs/scaling_out.md); multi_worker_mirrored: refused.", "hardware",
                                choices=DISTRIBUTIONS)
    dtype: str = setting(None, "Backbone compute precision (heads stay float32).", "hardware",
                         flag="precision", choices=(None, "mixed_bfloat16", "mixed_float16"),
                         none_as="float32")
    seed: int = setting(0, "Random seed (data and initialisation).", "general", minimum=0)
    verbose: object = setting("auto", "Keras verbosity (auto, 0, 1, 2).", "output", literal=True,
                              choices=("auto", 0, 1, 2))

    def check(self):  # a preset's own size is known once it is loaded
        check_crop_fits(self.local_size, self.image_size or (None if self.preset else DEFAULT_IMAGE_SIZE))
    overwrite: bool = setting(False, "Train again when output_dir holds a finished run (default: do "
                              "nothing and say so).", "output")


def build_backbone(config):
    """The student backbone: pre-training semantics (pos grid resampled on
    every call) and drop path, from a preset or random weights."""
    semantics = dict(drop_path_rate=config.drop_path_rate, pos_embed_interpolation="always", dtype=config.dtype)
    if config.preset:  # size and stride override the preset's only when given
        return load_backbone(config.preset, image_size=config.image_size, stride=config.stride, **semantics)
    architecture = arch_config(config.arch, **(config.backbone_overrides or {}))
    return PASSBackbone(**{
        **architecture, **semantics,
        "image_shape": (*(config.image_size or DEFAULT_IMAGE_SIZE), 3),
        "stride": config.stride or architecture["patch_size"],
    })


def crop_sizes(config, backbone):
    """(global, local) crop sizes: the backbone's native size and, unless
    given, half of it (the release's 256x128 / 128x64)."""
    height, width = backbone.image_shape[:2]
    return (height, width), tuple(config.local_size or (height // 2, width // 2))


def crop_regions(config, num_parts):
    """Local-crop settings of `make_pass_dataset` for the objective: PASS's
    regions, or DINO's one whole-image region with as many local crops."""
    if config.objective == "dino":
        return dict(num_parts=1, region_bounds=((0.0, 1.0),),
                    local_crops_per_part=config.local_crops_per_part * num_parts,
                    local_scale=tuple(0.5 * s for s in config.local_scale))
    return dict(num_parts=num_parts, local_crops_per_part=config.local_crops_per_part,
                local_scale=config.local_scale)


OUTPUTS = ("checkpoint", "logs", "history.json", "teacher_preset", "student_preset")


def _finished(config, checkpoint_dir):
    """True if `output_dir` holds this run finished: its last checkpoint at
    the end of epoch `epochs`, presets and history written."""
    state = read_state(checkpoint_dir)
    written = all(os.path.exists(os.path.join(config.output_dir, name)) for name in OUTPUTS[2:])
    return bool(state and written and state["epoch"] >= config.epochs and not state.get("step_in_epoch"))


def pretrain(config):
    """Runs (or resumes) pre-training in its run folder (`keras_pass.runs`);
    returns (model, history). A finished run is not redone unless
    `overwrite`: then (None, the saved history dict) is returned and
    nothing is touched."""
    checkpoint_dir = os.path.join(config.output_dir, "checkpoint")
    history_path = os.path.join(config.output_dir, "history.json")

    def finished():
        return (None, io.read_json(history_path)) if _finished(config, checkpoint_dir) else None

    return run_recipe(config, "pretrain", lambda run: _train(config, run, checkpoint_dir, history_path),
                      finished, f"{config.epochs} epochs", OUTPUTS)


def _train(config, run, checkpoint_dir, history_path):
    keras.utils.set_random_seed(config.seed)
    backbone = build_backbone(config)
    model = PASSPretrainer(
        backbone, out_dim=config.out_dim, head_hidden_dim=config.head_hidden_dim,
        bottleneck_dim=config.bottleneck_dim, teacher_temp=config.warmup_teacher_temp,
        teacher_momentum=config.teacher_momentum[0], clip_grad=config.clip_grad,
        objective=config.objective,
    )
    stream = _stream(config, backbone)
    run.record(config.data, stream.num_images)  # once the data are known to be readable
    steps = config.steps_per_epoch or stream.data_steps
    saved = read_state(checkpoint_dir)
    if saved:
        run.resuming(saved["step"], config.epochs * steps, saved["epoch"])
    schedules = pass_schedules(
        config.epochs, steps, config.batch_size, base_lr=config.base_lr, min_lr=config.min_lr,
        warmup_epochs=config.warmup_epochs, weight_decay=config.weight_decay,
        teacher_momentum=config.teacher_momentum, teacher_temp=config.teacher_temp,
        warmup_teacher_temp=config.warmup_teacher_temp,
        warmup_teacher_temp_epochs=config.warmup_teacher_temp_epochs,
        freeze_last_layer_epochs=config.freeze_last_layer_epochs,
    )
    model.compile(schedules=schedules, jit_compile=False if config.distribution == "mirrored" else "auto")
    callbacks = [EpochHistoryFile(history_path), TrainingCheckpoint(checkpoint_dir, config.save_freq),
                 writer_callback(keras.callbacks.TensorBoard(os.path.join(config.output_dir, "logs")))]
    history = model.fit(stream, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks,
                        verbose=fit_verbosity(config.verbose))
    model.save_teacher_preset(os.path.join(config.output_dir, "teacher_preset"))
    model.student_backbone.save_to_preset(os.path.join(config.output_dir, "student_preset"))
    run.summary(stream.num_images, stream.skipped_images.count, config.epochs * steps,
                ("teacher_preset/", "student_preset/", "history.json", "checkpoint/", "logs/"))
    return model, history


def _stream(config, backbone):
    """The data stream as a function of the global step (what
    `PASSPretrainer.fit` resumes with): data epoch `step // data_steps`,
    then its first `step % data_steps` batches left out. Keras draws
    `steps_per_epoch` batches per fit epoch from one endless stream, so fit
    and data epochs need not coincide. A shard folder starts at that
    position without reading what comes before; an image folder skips the
    batches, decoding them again (at most one data epoch: the cost of an
    exact mid-epoch resume)."""
    global_size, local_size = crop_sizes(config, backbone)
    local_batch = config.batch_size // data_shard().get("num_shards", 1)
    skipped_images = SkippedImages(list_file=os.path.join(config.output_dir, "unreadable_images.txt"))

    def dataset(epoch, position=0):
        return make_pass_dataset(
            config.data, config.batch_size, global_size=global_size,
            local_size=local_size, global_scale=config.global_scale,
            view_augmentations=config.view_augmentations, seed=config.seed, repeat=True,
            initial_epoch=epoch, **({"initial_position": position} if position else {}),
            skipped_images=skipped_images,
            **crop_regions(config, backbone.num_parts), **data_shard(),
        )

    first = dataset(0)

    def from_step(step):
        epoch, offset = divmod(step, first.steps_per_epoch)
        if offset and is_shard_folder(config.data):
            return dataset(epoch, offset * local_batch)
        stream = first if epoch == 0 else dataset(epoch)
        return stream.skip(offset) if offset else stream

    from_step.data_steps = first.steps_per_epoch
    from_step.num_images, from_step.skipped_images = first.num_images, first.skipped_images
    return from_step
