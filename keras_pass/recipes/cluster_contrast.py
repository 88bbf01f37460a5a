"""Cluster-contrast training recipes: USL (one dataset) and UDA (a source
model adapted to a target dataset), as functions of plain configs.

Each epoch (`PASS_cluster_contrast_reid`):

1. extract the features of every train image of the target (labels unused);
2. k-reciprocal Jaccard distance + DBSCAN -> pseudo-labels, outliers dropped;
3. memory <- the L2-normalised cluster centroids;
4. one `model.fit` epoch of `iters` P x K batches sampled on pseudo-labels
   (the memory loss, the memory updated inside each step);
5. evaluate on the target's query/gallery (every `eval_every` epochs).

`output_dir` receives `metrics.json` (one entry per epoch: loss, clusters,
outliers, pseudo-label NMI against the true train ids (a diagnostic only),
timings, mAP/rank-k), `best.weights.h5`, `checkpoint/latest/` (resume
state, `keras_pass.checkpoint`: weights with the optimizer, seed-generator
states, the epoch), and at the end `backbone_preset/`. Every file is
written atomically; the folder is a run folder (`keras_pass.runs`,
docs/runs.md); re-running the same config resumes after the last finished
epoch, and does nothing after a finished run (`overwrite` trains again).
A non-finite loss or weights stop the run (`NonFiniteLossError`) before
anything is written.
"""

import dataclasses
import os
import time

import keras
import numpy as np
from sklearn.metrics import normalized_mutual_info_score

from keras_pass import io
from keras_pass.checkpoint import load_checkpoint, save_checkpoint
from keras_pass.backend.processes import data_shard
from keras_pass.finite import NonFiniteLossGuard, check_finite_features
from keras_pass.models.image_converter import image_converter_of
from keras_pass.reid.callbacks import (
    metrics_to_logs,
)
from keras_pass.reid.data import make_train_dataset
from keras_pass.reid.datasets import DATASETS, check_dataset_images, load_dataset
from keras_pass.reid.features import evaluate_feature_sets, extract_features
from keras_pass.recipes.config import check_pk_batch, setting
from keras_pass.loading import load_training_backbone
from keras_pass.reid.optimizers import L2Adam, ReIDSGD
from keras_pass.reid.overlap import check_split_overlap
from keras_pass.reid.progress import fit_verbosity
from keras_pass.runs import run_recipe
from keras_pass.uda.clustering import cluster_features
from keras_pass.reid.model import FEATURE_FUSIONS
from keras_pass.uda.model import ClusterContrastModel


@dataclasses.dataclass
class USLConfig:
    """Unsupervised learning on one dataset; defaults: the release's ViT-S
    Market-1501 script (`market_usl_cat_singleneck.sh`)."""

    data_root: str = setting(help="Target dataset folder (or its parent).", group="data")
    output_dir: str = setting(help="Metrics, checkpoints and the final backbone preset.", group="output",
                              cli_default="runs/usl", output=True)
    dataset: str = setting("market1501", "Target dataset layout.", "data", choices=tuple(DATASETS))
    preset: str = setting(None, "Backbone preset folder or registered name (UDA: the source fine-tuned "
                          "backbone, e.g. finetune's backbone_preset/).", "model")
    checkpoint: str = setting(None, "Official .pth instead of a preset (needs torch).", "model")
    arch: str = setting(None, "Architecture of --checkpoint (default: inferred from its shapes).", "model")
    image_size: tuple = setting(None, "Input height,width (default: the preset's; .pth: 256,128).", "data",
                                length=2, minimum=1)
    stride: int = setting(None, "Patch stride (default: the preset's).", "model", minimum=1)
    epochs: int = setting(50, "Training epochs (one clustering each).", "schedule", minimum=1)
    iters: int = setting(200, "Iterations per epoch.", "schedule", minimum=1)
    batch_size: int = setting(256, "Images per batch (P x K).", "schedule", minimum=1)
    num_instances: int = setting(8, "K: images per pseudo-identity in a batch.", "schedule", minimum=1)
    optimizer: str = setting("sgd", "SGD or Adam, both with coupled L2 weight decay as PyTorch.",
                             "optimisation", choices=("sgd", "adam"))
    lr: float = setting(3.5e-4, "Learning rate.", "optimisation", minimum=0.0)
    momentum: float = setting(0.9, "SGD momentum.", "optimisation", minimum=0.0, maximum=1.0)
    weight_decay: float = setting(5e-4, "Coupled L2 weight decay.", "optimisation", minimum=0.0)
    lr_step_epochs: int = setting(20, "lr x 0.1 every this many epochs.", "schedule", minimum=1)
    drop_path_rate: float = setting(0.3, "Stochastic depth of the backbone.", "model", minimum=0.0,
                                   maximum=0.99)
    padding: int = setting(10, "Zero-padding (pixels) of the random-crop augmentation; 10 at 256x128.",
                           "data", minimum=0)
    feature_fusion: str = setting("cat", "How CLS and PART features are fused ('mean' for MSMT17 targets).",
                                  "model", choices=FEATURE_FUSIONS)
    multi_neck: bool = setting(False, "One BN per token (USL: no, UDA: yes).", "model")
    eps: float = setting(0.6, "DBSCAN eps on the Jaccard distance (0.7 for MSMT17).", "clustering",
                         minimum=0.0)
    min_samples: int = setting(4, "DBSCAN min_samples.", "clustering", minimum=1)
    k1: int = setting(30, "k-reciprocal neighbourhood size.", "clustering", minimum=1)
    k2: int = setting(6, "Query-expansion size.", "clustering", minimum=1)
    search: str = setting("auto", "Neighbour search (auto: faiss-cpu if installed).", "clustering",
                          choices=("auto", "numpy", "faiss"))
    temperature: float = setting(0.05, "Memory softmax temperature.", "memory", minimum=1e-6)
    memory_momentum: float = setting(0.2, "Weight of the old centroid in the hard update.", "memory",
                                     minimum=0.0, maximum=1.0)
    eval_every: int = setting(1, "Evaluate every N epochs (and after the last).", "evaluation", minimum=1)
    test_batch_size: int = setting(128, "Batch size of feature extraction.", "evaluation", minimum=1)
    allow_overlap: bool = setting(False, "Train and evaluate even when train and query/gallery share "
                                  "person ids or images (default: refuse, naming them).", "evaluation")
    seed: int = setting(1, "Random seed.", "general", minimum=0)
    jit_compile: object = setting("auto", "Keras jit_compile (auto, True, False).", "hardware", literal=True)
    distribution: str = setting("none", "data_parallel: keras.distribution (JAX) over every device, "
                                "multi-process from KERAS_DISTRIBUTION_* (docs/scaling_out.md).", "hardware",
                                choices=("none", "data_parallel", "multi_worker_mirrored"))
    verbose: int = setting(1, "Keras verbosity (0, 1, 2).", "output", minimum=0, maximum=2)
    overwrite: bool = setting(False, "Train again when output_dir holds a finished run (default: do "
                              "nothing and say so).", "output")

    def check(self):
        check_pk_batch(self.batch_size, self.num_instances)


@dataclasses.dataclass
class UDAConfig(USLConfig):
    """Domain adaptation: `preset`/`checkpoint` is the SOURCE fine-tuned
    backbone (e.g. `finetune`'s `backbone_preset/`), `data_root`/`dataset`
    the target; fresh necks, one per token (`multi_neck`), 'cat' fusion for
    Market targets, 'mean' (and eps 0.7) for MSMT17 targets."""

    output_dir: str = setting(help="Metrics, checkpoints and the final backbone preset.", group="output",
                              cli_default="runs/uda", output=True)
    multi_neck: bool = setting(True, "One BN per token (USL: no, UDA: yes).", "model")


def build_model(config, capacity):
    return ClusterContrastModel(
        load_training_backbone(config), capacity, feature_fusion=config.feature_fusion,
        multi_neck=config.multi_neck, temperature=config.temperature,
        momentum=config.memory_momentum,
    )


OPTIMIZERS = ("sgd", "adam")


def make_optimizer(config):
    """SGD or Adam (PyTorch semantics: coupled L2 weight decay), lr x 0.1
    every `lr_step_epochs` epochs."""
    if config.optimizer not in OPTIMIZERS:
        raise ValueError(f"Expected optimizer in {OPTIMIZERS}. Received: optimizer={config.optimizer}")
    schedule = keras.optimizers.schedules.ExponentialDecay(
        config.lr, config.lr_step_epochs * config.iters, 0.1, staircase=True)
    if config.optimizer == "adam":
        return L2Adam(learning_rate=schedule, weight_decay=config.weight_decay)
    return ReIDSGD(learning_rate=schedule, momentum=config.momentum,
                   weight_decay=config.weight_decay)


def _paths(config):
    join = lambda name: os.path.join(config.output_dir, name)  # noqa: E731
    return {name: join(name) for name in OUTPUTS}


OUTPUTS = ("metrics.json", "checkpoint", "best.weights.h5", "backbone_preset")


def _best(history):
    """The best-mAP entry's summary, by the training loop's rule (first of
    the highest)."""
    best = None
    for entry in history[1:]:
        if "mAP" in entry and (best is None or entry["mAP"] > best["mAP"]):
            best = {"epoch": entry["epoch"], "mAP": entry["mAP"], "rank1": entry.get("rank1")}
    return best


def _resume(model, paths):
    """(history, best) of the finished epochs of the last checkpoint, whose
    state is loaded into `model`. `metrics.json` is written before the
    checkpoint, so it may hold one epoch more: that epoch is trained again."""
    if not os.path.isfile(paths["metrics.json"]):
        return [], None
    state = load_checkpoint(model, paths["checkpoint"])
    if state is None:
        return [], None
    history = [e for e in io.read_json(paths["metrics.json"])["epochs"] if e["epoch"] <= state["epoch"]]
    return history, _best(history)


def finished_history(config):
    """The per-epoch entries of a finished run in `output_dir`, else None."""
    paths = _paths(config)
    if not (os.path.isfile(paths["metrics.json"]) and os.path.isdir(paths["backbone_preset"])):
        return None
    history = io.read_json(paths["metrics.json"])["epochs"]
    return history if history and history[-1]["epoch"] >= config.epochs else None


def _pseudo_labelled(train, features, config):
    clustering = cluster_features(features, config.eps, config.min_samples, config.k1,
                                  config.k2, config.search, verbose=config.verbose > 1)
    ids_per_batch = config.batch_size // config.num_instances
    if clustering.num_clusters < ids_per_batch:
        raise ValueError(
            f"Expected at least batch_size / num_instances = {ids_per_batch} clusters. "
            f"Received: {clustering.summary()} (raise eps or lower the batch size)"
        )
    kept = clustering.kept
    records = dataclasses.replace(train.select(kept), pids=clustering.labels[kept])
    nmi = normalized_mutual_info_score(train.pids[kept], clustering.labels[kept])
    return clustering, records, float(nmi)


def _train_epoch(model, train, epoch, config):
    """Clusters, trains one epoch; returns its log entry."""
    start = time.perf_counter()
    features = extract_features(model, train.paths, batch_size=config.test_batch_size,
                                verbose=config.verbose > 1)
    check_finite_features(features, f"of the train images before epoch {epoch + 1}")
    clustering, records, nmi = _pseudo_labelled(train, features, config)
    model.memory.reset(clustering.centroids)
    if config.verbose:
        print(f"Epoch {epoch + 1}: {clustering.summary()}, pseudo-label NMI {nmi:.3f}")
    stream, _ = make_train_dataset(  # a fresh seed per epoch for the augmentations
        records, tuple(model.backbone.image_shape[:2]), config.batch_size, config.num_instances,
        seed=config.seed * 1000 + epoch, first_epoch=epoch, padding=config.padding, **data_shard(),
    )
    history = model.fit(stream, initial_epoch=epoch, epochs=epoch + 1,
                        steps_per_epoch=config.iters, shuffle=False, verbose=fit_verbosity(config.verbose),
                        callbacks=[NonFiniteLossGuard()])
    return {
        "epoch": epoch + 1, "loss": float(history.history["loss"][-1]),
        "clusters": clustering.num_clusters, "outliers": clustering.num_outliers,
        "pseudo_label_nmi": nmi, "cluster_seconds": clustering.seconds,
        "epoch_seconds": time.perf_counter() - start,
    }


def _evaluate(model, dataset, config):
    features = [extract_features(model, split.paths, batch_size=config.test_batch_size,
                                 verbose=config.verbose > 1) for split in (dataset.query, dataset.gallery)]
    check_finite_features(np.concatenate(features), "of the query and gallery images")
    return metrics_to_logs(evaluate_feature_sets(*features, dataset.query, dataset.gallery))


def _recipe(config):
    return "uda" if isinstance(config, UDAConfig) else "usl"


def train_usl(config):
    """Runs (or resumes) cluster-contrast training in its run folder
    (`keras_pass.runs`); returns the per-epoch log entries. A finished run
    is not redone unless `overwrite`."""
    return run_recipe(config, _recipe(config), lambda run: _train_usl(config, run),
                      lambda: finished_history(config), f"{config.epochs} epochs, metrics.json", OUTPUTS)


def _train_usl(config, run):
    keras.utils.set_random_seed(config.seed)
    dataset = load_dataset(config.dataset, config.data_root, verbose=config.verbose > 0)
    listed = len(dataset.train)
    dataset = check_dataset_images(dataset)  # before training: query/gallery are read only to evaluate
    check_split_overlap(dataset, config.allow_overlap, verbose=config.verbose > 0)
    model = build_model(config, capacity=len(dataset.train))
    model.compile(optimizer=make_optimizer(config), jit_compile=config.jit_compile)
    run.record(config.data_root, listed + len(dataset.query) + len(dataset.gallery))
    paths = _paths(config)
    history, best = _resume(model, paths)
    if history:
        run.resuming(history[-1]["epoch"] * config.iters, config.epochs * config.iters, history[-1]["epoch"])
    else:  # epoch 0: the starting model, for reference
        history = [{"epoch": 0, **_evaluate(model, dataset, config)}]
    for epoch in range(history[-1]["epoch"], config.epochs):
        entry = _train_epoch(model, dataset.train, epoch, config)
        if (epoch + 1) % config.eval_every == 0 or epoch + 1 == config.epochs:
            entry.update(_evaluate(model, dataset, config))
            if best is None or entry["mAP"] > best["mAP"]:
                io.save_weights(model, paths["best.weights.h5"])
                best = {"epoch": epoch + 1, "mAP": entry["mAP"], "rank1": entry.get("rank1")}
        if config.verbose and "mAP" in entry:
            print(f"Epoch {epoch + 1} evaluation: mAP {100 * entry['mAP']:.1f}%, "
                  f"rank-1 {100 * entry.get('rank1', 0):.1f}%")
        history.append(entry)
        io.write_json(paths["metrics.json"], {"epochs": history, "best": best, "config": config})
        save_checkpoint(model, paths["checkpoint"], {"step": (epoch + 1) * config.iters, "epoch": epoch + 1})
    model.backbone.save_to_preset(paths["backbone_preset"], image_converter=image_converter_of(model))
    run.summary(len(dataset.train), listed - len(dataset.train), config.epochs * config.iters,
                ("backbone_preset/", "best.weights.h5", "metrics.json"))
    return history


def train_uda(config):
    """`train_usl` from a source-domain model (see `UDAConfig`)."""
    if config.preset is None and config.checkpoint is None:
        raise ValueError(
            "Expected the source-domain model as `preset` or `checkpoint`. "
            "Received: preset=None, checkpoint=None"
        )
    return train_usl(config)
