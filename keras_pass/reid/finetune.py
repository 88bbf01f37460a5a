"""The official supervised fine-tuning recipe as one function.

`finetune(FinetuneConfig(...))` parses the dataset, builds `ReIDModel` from
a preset (or an official pre-training `.pth`), trains with `model.fit` on
the P x K stream with the warm-up + cosine SGD, evaluates every
`eval_every` epochs (and after the last), and writes to `output_dir`:

    backup/               resume state (deleted once training completes)
    best.weights.h5(.json)  weights and metrics of the best mAP
    final.keras           the trained model (load with keras.saving.load_model)
    backbone_preset/      the fine-tuned backbone as a KerasHub preset
    history.csv, results.json

Re-running with the same `output_dir` resumes an interrupted run.
Defaults reproduce `PASS_transreid/configs/market/vit_small.yml` + seed 42.
"""

import dataclasses
import os

import keras

from keras_pass import io
from keras_pass.reid.callbacks import AtomicBackupAndRestore, ReIDEvaluation, read_backup_epoch
from keras_pass.reid.data import make_train_dataset
from keras_pass.reid.datasets import load_dataset
from keras_pass.reid.evaluation import format_results
from keras_pass.reid.features import evaluate_model
from keras_pass.reid.model import ReIDModel, training_backbone
from keras_pass.reid.optimizers import make_optimizer


@dataclasses.dataclass
class FinetuneConfig:
    data_root: str
    output_dir: str
    dataset: str = "market1501"
    preset: str = None  # preset dir or registered name
    checkpoint: str = None  # official pre-training .pth (needs torch)
    arch: str = "vit_small"  # for `checkpoint`
    image_size: tuple = (256, 128)
    stride: int = 16
    epochs: int = 120
    batch_size: int = 64
    num_instances: int = 4
    steps_per_epoch: int = None  # None: the sampler's epoch length
    base_lr: float = 4e-4
    bias_lr_factor: float = 2.0
    weight_decay: float = 1e-4
    warmup_epochs: int = 20
    drop_path_rate: float = 0.1
    feature_fusion: str = "cat"
    multi_neck: bool = True
    test_feature: str = "before"
    label_smoothing: float = 0.0
    triplet_margin: float = None  # None: soft margin
    eval_every: int = 120
    rerank: bool = False
    seed: int = 42
    jit_compile: object = "auto"
    verbose: int = 1


def load_backbone(config):
    """The `PASSBackbone` of `config.preset` or of an official `.pth`
    (`config.checkpoint`, needs torch) at the training size and stride."""
    if (config.preset is None) == (config.checkpoint is None):
        raise ValueError(
            "Expected exactly one of `preset` and `checkpoint`. Received: "
            f"preset={config.preset}, checkpoint={config.checkpoint}"
        )
    if config.preset is not None:
        return training_backbone(config.preset, (*config.image_size, 3), config.stride,
                                 config.drop_path_rate)
    from keras_pass.models.convert import convert_checkpoint

    backbone, report = convert_checkpoint(  # grid resized bilinearly to image_size/stride
        config.checkpoint, arch=config.arch, image_size=tuple(config.image_size),
        stride=config.stride, drop_path_rate=config.drop_path_rate,
    )
    for line in report.lines():
        print(line)
    return backbone


def build_model(config, num_classes):
    head = dict(feature_fusion=config.feature_fusion, multi_neck=config.multi_neck,
                test_feature=config.test_feature, label_smoothing=config.label_smoothing,
                triplet_margin=config.triplet_margin)
    return ReIDModel(load_backbone(config), num_classes, **head)


def finetune(config):
    """Runs the recipe; returns the final evaluation results."""
    keras.utils.set_random_seed(config.seed)
    os.makedirs(config.output_dir, exist_ok=True)
    dataset = load_dataset(config.dataset, config.data_root, verbose=config.verbose > 0)
    model = build_model(config, dataset.num_train_ids)
    backup_dir = os.path.join(config.output_dir, "backup")
    train, steps = make_train_dataset(
        dataset.train, tuple(config.image_size), config.batch_size, config.num_instances,
        seed=config.seed, first_epoch=read_backup_epoch(backup_dir),
    )
    steps = config.steps_per_epoch or steps
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
    callbacks = [
        evaluation,
        AtomicBackupAndRestore(backup_dir),
        keras.callbacks.CSVLogger(os.path.join(config.output_dir, "history.csv"), append=True),
    ]
    model.fit(train, epochs=config.epochs, steps_per_epoch=steps, callbacks=callbacks,
              shuffle=False, verbose=config.verbose)
    results = evaluation.last_results or evaluate_model(
        model, dataset.query, dataset.gallery, rerank=config.rerank, verbose=config.verbose > 0)
    _save_outputs(model, config, results, evaluation.best)
    print(format_results(results, title=f"{dataset.name} (final epoch{', re-ranked' if config.rerank else ''})"))
    return results


def _save_outputs(model, config, results, best):
    io.save_model(model, os.path.join(config.output_dir, "final.keras"))
    model.backbone.save_to_preset(os.path.join(config.output_dir, "backbone_preset"))
    summary = {
        "final": {"mAP": results["mAP"], "mINP": results["mINP"],
                  "cmc": [float(v) for v in results["cmc"][:20]]},
        "best": best,
        "config": io.jsonable(config),
    }
    io.write_json(os.path.join(config.output_dir, "results.json"), summary)
