"""The official supervised fine-tuning recipe as one function.

`finetune(FinetuneConfig(...))` parses the dataset, builds `ReIDModel` from
a preset (or an official pre-training `.pth`), trains with `model.fit` on
the P x K stream with the warm-up + cosine SGD, evaluates every
`eval_every` epochs (and after the last), and writes to `output_dir`:

    checkpoint/latest/    resume state (`keras_pass.checkpoint`)
    best.weights.h5(.json)  weights and metrics of the best mAP
    final.keras           the trained model (load with keras.saving.load_model)
    backbone_preset/      the fine-tuned backbone as a KerasHub preset
    history.csv, results.json

The folder is a run folder (`keras_pass.runs`, docs/runs.md): locked,
its settings recorded in `run.json`. Re-running with the same
`output_dir` resumes an interrupted run at its last finished epoch (weights, optimizer, random state, data position) and
does nothing after a finished one (`overwrite=True` trains again).
Defaults reproduce `PASS_transreid/configs/market/vit_small.yml` + seed 42.
"""

import dataclasses
import os

import keras

from keras_pass import io
from keras_pass.checkpoint import TrainingCheckpoint, fit_resuming, keep_history_rows, read_state
from keras_pass.backend.processes import data_shard, writer_callback
from keras_pass.data.images import naming_undecodable_images
from keras_pass.finite import NonFiniteLossGuard
from keras_pass.models.image_converter import image_converter_of
from keras_pass.reid.callbacks import ReIDEvaluation
from keras_pass.reid.data import PKSampler, make_train_dataset
from keras_pass.reid.datasets import DATASETS, check_dataset_images, load_dataset
from keras_pass.reid.evaluation import format_results
from keras_pass.reid.features import evaluate_model
from keras_pass.recipes.config import check_pk_batch, setting
from keras_pass.loading import load_training_backbone
from keras_pass.reid.model import FEATURE_FUSIONS, ReIDModel
from keras_pass.reid.overlap import check_split_overlap
from keras_pass.reid.optimizers import make_optimizer
from keras_pass.reid.progress import fit_verbosity
from keras_pass.runs import run_recipe


@dataclasses.dataclass
class FinetuneConfig:
    """Every setting of `finetune`; defaults: `PASS_transreid`'s ViT-S
    Market-1501 config + seed 42. Each one is a `keras-pass finetune` flag."""

    data_root: str = setting(help="Dataset folder (or its parent).", group="data")
    output_dir: str = setting(help="Checkpoints, logs, final.keras, backbone_preset/, results.json.",
                              group="output", cli_default="runs/finetune", output=True)
    dataset: str = setting("market1501", "Dataset layout.", "data", choices=tuple(DATASETS))
    preset: str = setting(None, "PASS backbone preset folder or registered name.", "model")
    checkpoint: str = setting(None, "Official pre-training .pth instead of a preset (needs torch).", "model")
    arch: str = setting(None, "Architecture of --checkpoint (default: inferred from its shapes).", "model")
    image_size: tuple = setting(None, "Input height,width (default: the preset's; .pth: 256,128).", "data",
                                length=2, minimum=1)
    stride: int = setting(None, "Patch stride (default: the preset's).", "model", minimum=1)
    epochs: int = setting(120, "Training epochs.", "schedule", minimum=1)
    batch_size: int = setting(64, "Images per batch (P x K).", "schedule", minimum=1)
    num_instances: int = setting(4, "K: images per identity in a batch.", "schedule", minimum=1)
    steps_per_epoch: int = setting(None, "Steps per epoch (default: the sampler's epoch length).",
                                   "schedule", minimum=1)
    base_lr: float = setting(4e-4, "Base learning rate (biases: x bias_lr_factor).", "optimisation",
                             minimum=0.0)
    bias_lr_factor: float = setting(2.0, "Learning-rate factor of biases.", "optimisation", minimum=0.0)
    weight_decay: float = setting(1e-4, "SGD weight decay.", "optimisation", minimum=0.0)
    warmup_epochs: int = setting(20, "Linear warm-up epochs from 0.01 x lr (pre-trained starts need "
                                 "it: see docs/experiments/demo_diagnosis.md).", "schedule", minimum=0)
    drop_path_rate: float = setting(0.1, "Stochastic depth of the backbone.", "model", minimum=0.0,
                                   maximum=0.99)
    feature_fusion: str = setting("cat", "How CLS and PART features are fused.", "model",
                                  choices=FEATURE_FUSIONS)
    multi_neck: bool = setting(True, "One BNNeck per token (the release) instead of one.", "model")
    test_feature: str = setting("before", "Test feature: before or after the BNNecks.", "evaluation",
                                choices=("before", "after"))
    label_smoothing: float = setting(0.0, "Label smoothing of the ID loss.", "optimisation", minimum=0.0,
                                    maximum=1.0)
    triplet_margin: float = setting(None, "Triplet margin (default: soft margin).", "optimisation",
                                    minimum=0.0)
    eval_every: int = setting(120, "Evaluate every N epochs (and after the last).", "evaluation", minimum=1)
    rerank: bool = setting(False, "k-reciprocal re-ranking in evaluations.", "evaluation")
    allow_overlap: bool = setting(False, "Train and evaluate even when train and query/gallery share "
                                  "person ids or images (default: refuse, naming them).", "evaluation")
    seed: int = setting(42, "Random seed.", "general", minimum=0)
    jit_compile: object = setting("auto", "Keras jit_compile (auto, True, False).", "hardware", literal=True)
    distribution: str = setting("none", "data_parallel: keras.distribution (JAX) over every device, "
                                "multi-process from KERAS_DISTRIBUTION_* (docs/scaling_out.md); triplets "
                                "are mined over the global batch.", "hardware",
                                choices=("none", "data_parallel", "multi_worker_mirrored"))
    verbose: int = setting(1, "Keras verbosity (0, 1, 2).", "output", minimum=0, maximum=2)
    overwrite: bool = setting(False, "Train again when output_dir holds a finished run (default: do "
                              "nothing and say so).", "output")

    def check(self):
        check_pk_batch(self.batch_size, self.num_instances)


def build_model(config, num_classes):
    head = dict(feature_fusion=config.feature_fusion, multi_neck=config.multi_neck,
                test_feature=config.test_feature, label_smoothing=config.label_smoothing,
                triplet_margin=config.triplet_margin)
    return ReIDModel(load_training_backbone(config), num_classes, **head)


OUTPUTS = ("checkpoint", "best.weights.h5", "best.weights.h5.json", "final.keras", "backbone_preset",
           "history.csv", "results.json")


def finished_results(config):
    """The final results of a finished run in `output_dir`, else None."""
    path = os.path.join(config.output_dir, "results.json")
    return io.read_json(path)["final"] if os.path.isfile(path) else None


def finetune(config):
    """Runs the recipe (or resumes it) in its run folder (`keras_pass.runs`);
    returns the final evaluation results. A finished run (its
    `results.json`) is not redone unless `overwrite`."""
    return run_recipe(config, "finetune", lambda run: _train(config, run), lambda: finished_results(config),
                      "results.json", OUTPUTS)


def _train(config, run):
    keras.utils.set_random_seed(config.seed)
    dataset = load_dataset(config.dataset, config.data_root, verbose=config.verbose > 0)
    listed = len(dataset.train)
    dataset = check_dataset_images(dataset)  # before training: query/gallery are read only to evaluate
    check_split_overlap(dataset, config.allow_overlap, verbose=config.verbose > 0)
    model = build_model(config, dataset.num_train_ids)
    run.record(config.data_root, listed + len(dataset.query) + len(dataset.gallery))
    checkpoint_dir = os.path.join(config.output_dir, "checkpoint")
    image_size = tuple(model.backbone.image_shape[:2])
    steps = config.steps_per_epoch or PKSampler(
        dataset.train.pids, config.batch_size, config.num_instances).steps_per_epoch
    saved = read_state(checkpoint_dir)
    if saved:
        run.resuming(saved["step"], config.epochs * steps, saved["epoch"])

    def stream(step):  # Keras draws `steps` batches per epoch from one endless stream
        return make_train_dataset(dataset.train, image_size, config.batch_size, config.num_instances,
                                  seed=config.seed, first_batch=step, **data_shard())[0]

    model.compile(
        optimizer=make_optimizer(
            steps, config.epochs, config.base_lr, config.bias_lr_factor, config.weight_decay,
            warmup_epochs=config.warmup_epochs,
        ),
        jit_compile=config.jit_compile,
    )
    evaluation = ReIDEvaluation(
        dataset.query, dataset.gallery, every_n_epochs=config.eval_every,
        rerank=config.rerank, verbose=config.verbose,
        best_checkpoint=os.path.join(config.output_dir, "best.weights.h5"),
    )
    history_path = os.path.join(config.output_dir, "history.csv")
    keep_history_rows(history_path, saved["epoch"] if saved else 0)
    callbacks = [  # the guard first; the history row of an epoch before its checkpoint
        NonFiniteLossGuard(),
        evaluation,
        writer_callback(keras.callbacks.CSVLogger(history_path, append=True)),
        TrainingCheckpoint(checkpoint_dir),
    ]
    with naming_undecodable_images(dataset.train.paths, "the train set"):
        fit_resuming(model.fit, model, stream, config.epochs, steps, callbacks, shuffle=False,
                     verbose=fit_verbosity(config.verbose))
    results = evaluation.last_results or evaluate_model(
        model, dataset.query, dataset.gallery, rerank=config.rerank, verbose=config.verbose > 0)
    _save_outputs(model, config, results, evaluation.best)
    print(format_results(results, title=f"{dataset.name} (final epoch{', re-ranked' if config.rerank else ''})"))
    run.summary(len(dataset.train), listed - len(dataset.train), config.epochs * steps,
                ("final.keras", "backbone_preset/", "best.weights.h5", "results.json", "history.csv"))
    return results


def _save_outputs(model, config, results, best):
    io.save_model(model, os.path.join(config.output_dir, "final.keras"))
    model.backbone.save_to_preset(os.path.join(config.output_dir, "backbone_preset"),
                                  image_converter=image_converter_of(model))
    summary = {
        "final": {"mAP": results["mAP"], "mINP": results["mINP"],
                  "cmc": [float(v) for v in results["cmc"][:20]]},
        "best": best,
        "config": io.jsonable(config),
    }
    io.write_json(os.path.join(config.output_dir, "results.json"), summary)
