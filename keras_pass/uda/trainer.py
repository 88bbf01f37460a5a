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
timings, mAP/rank-k), `best.weights.h5(.json)`, `latest.weights.h5` (resume
state, with the optimizer), and at the end `backbone_preset/`. Every file is
written atomically; re-running the same config resumes after the last
finished epoch.
"""

import dataclasses
import json
import os
import time

import keras
from sklearn.metrics import normalized_mutual_info_score

from keras_pass import io
from keras_pass.reid.callbacks import (
    metrics_to_logs,
)
from keras_pass.reid.data import make_train_dataset
from keras_pass.reid.datasets import load_dataset
from keras_pass.reid.features import evaluate_model, extract_features
from keras_pass.reid.finetune import load_backbone
from keras_pass.reid.optimizers import L2Adam, ReIDSGD
from keras_pass.uda.clustering import cluster_features
from keras_pass.uda.model import ClusterContrastModel


@dataclasses.dataclass
class USLConfig:
    """Unsupervised learning on one dataset; defaults: the release's ViT-S
    Market-1501 script (`market_usl_cat_singleneck.sh`)."""

    data_root: str
    output_dir: str
    dataset: str = "market1501"
    preset: str = None  # pre-trained backbone preset dir or registered name
    checkpoint: str = None  # or an official .pth (needs torch)
    arch: str = "vit_small"  # for `checkpoint`
    image_size: tuple = (256, 128)
    stride: int = 16
    epochs: int = 50
    iters: int = 200
    batch_size: int = 256
    num_instances: int = 8
    optimizer: str = "sgd"  # or "adam" (the release's --optimizer; both PyTorch semantics)
    lr: float = 3.5e-4
    momentum: float = 0.9  # SGD's
    weight_decay: float = 5e-4
    lr_step_epochs: int = 20  # lr x 0.1 every this many epochs
    drop_path_rate: float = 0.3
    padding: int = 10  # zero-padding of the random-crop augmentation (pixels at image_size)
    feature_fusion: str = "cat"
    multi_neck: bool = False
    eps: float = 0.6  # 0.7 for MSMT17
    min_samples: int = 4
    k1: int = 30
    k2: int = 6
    search: str = "auto"  # neighbour search: faiss if installed, else NumPy
    temperature: float = 0.05
    memory_momentum: float = 0.2
    eval_every: int = 1
    test_batch_size: int = 128
    seed: int = 1
    jit_compile: object = "auto"
    verbose: int = 1


@dataclasses.dataclass
class UDAConfig(USLConfig):
    """Domain adaptation: `preset`/`checkpoint` is the SOURCE fine-tuned
    backbone (e.g. `finetune`'s `backbone_preset/`), `data_root`/`dataset`
    the target; fresh necks, one per token (`multi_neck`), 'cat' fusion for
    Market targets, 'mean' (and eps 0.7) for MSMT17 targets."""

    multi_neck: bool = True


def build_model(config, capacity):
    return ClusterContrastModel(
        load_backbone(config), capacity, feature_fusion=config.feature_fusion,
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
    return {name: join(name) for name in ("metrics.json", "latest.weights.h5", "best.weights.h5")}


def _resume(model, paths):
    """(history, best) of finished epochs; their weights are loaded."""
    if not (os.path.isfile(paths["metrics.json"]) and os.path.isfile(paths["latest.weights.h5"])):
        return [], None
    with open(paths["metrics.json"]) as handle:
        state = json.load(handle)
    model.optimizer.build(model.trainable_variables)
    model.load_weights(paths["latest.weights.h5"])
    return state["epochs"], state["best"]


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
    clustering, records, nmi = _pseudo_labelled(train, features, config)
    model.memory.reset(clustering.centroids)
    if config.verbose:
        print(f"Epoch {epoch + 1}: {clustering.summary()}, pseudo-label NMI {nmi:.3f}")
    stream, _ = make_train_dataset(  # a fresh seed per epoch for the augmentations
        records, tuple(config.image_size), config.batch_size, config.num_instances,
        seed=config.seed * 1000 + epoch, first_epoch=epoch, padding=config.padding,
    )
    history = model.fit(stream, initial_epoch=epoch, epochs=epoch + 1, steps_per_epoch=config.iters,
                        shuffle=False, verbose=config.verbose)
    return {
        "epoch": epoch + 1, "loss": float(history.history["loss"][-1]),
        "clusters": clustering.num_clusters, "outliers": clustering.num_outliers,
        "pseudo_label_nmi": nmi, "cluster_seconds": clustering.seconds,
        "epoch_seconds": time.perf_counter() - start,
    }


def _evaluate(model, dataset, config):
    results = evaluate_model(model, dataset.query, dataset.gallery,
                             batch_size=config.test_batch_size, verbose=config.verbose > 1)
    return metrics_to_logs(results)


def train_usl(config):
    """Runs cluster-contrast training; returns the per-epoch log entries."""
    keras.utils.set_random_seed(config.seed)
    os.makedirs(config.output_dir, exist_ok=True)
    dataset = load_dataset(config.dataset, config.data_root, verbose=config.verbose > 0)
    model = build_model(config, capacity=len(dataset.train))
    model.compile(optimizer=make_optimizer(config), jit_compile=config.jit_compile)
    paths = _paths(config)
    history, best = _resume(model, paths)
    if not history:  # epoch 0: the starting model, for reference
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
        io.save_weights(model, paths["latest.weights.h5"])
        io.write_json(paths["metrics.json"], {"epochs": history, "best": best, "config": config})
    model.backbone.save_to_preset(os.path.join(config.output_dir, "backbone_preset"))
    return history


def train_uda(config):
    """`train_usl` from a source-domain model (see `UDAConfig`)."""
    if config.preset is None and config.checkpoint is None:
        raise ValueError(
            "Expected the source-domain model as `preset` or `checkpoint`. "
            "Received: preset=None, checkpoint=None"
        )
    return train_usl(config)
