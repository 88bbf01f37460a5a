"""Fine-tuning callbacks: periodic ReID evaluation and the best-mAP
weights, written through `keras_pass.io` (temporary file, fsync, rename).
The resumable state is `keras_pass.checkpoint`'s."""

import json
import os

import keras
import numpy as np

from keras_pass import io
from keras_pass.finite import check_finite_features
from keras_pass.reid.features import evaluate_feature_sets, extract_features


def metrics_to_logs(results):
    cmc = results["cmc"]
    logs = {"mAP": results["mAP"], "mINP": results["mINP"]}
    logs.update({f"rank{r}": float(cmc[r - 1]) for r in (1, 5, 10) if r <= len(cmc)})
    return logs


class ReIDEvaluation(keras.callbacks.Callback):
    """Evaluates query vs gallery every `every_n_epochs` epochs (and after
    the last one), adds `mAP`, `mINP`, `rank1/5/10` to the epoch logs and,
    with `best_checkpoint` (a `.weights.h5` path), keeps the weights of the
    best mAP so far, with `<best_checkpoint>.json` holding its metrics (read
    back on resume).

    Put it before callbacks that read these logs (CSVLogger, ModelCheckpoint).
    """

    def __init__(self, query, gallery, every_n_epochs=1, image_size=None, batch_size=128,
                 rerank=False, best_checkpoint=None, verbose=1):
        super().__init__()
        if every_n_epochs < 1:
            raise ValueError(f"Expected every_n_epochs >= 1. Received: {every_n_epochs}")
        self.query, self.gallery = query, gallery
        self.every_n_epochs = every_n_epochs
        self.image_size = image_size
        self.batch_size = batch_size
        self.rerank = rerank
        self.best_checkpoint = best_checkpoint
        self.verbose = verbose
        self.best = None
        self.last_results = None

    @property
    def _best_json(self):
        return f"{self.best_checkpoint}.json"

    def on_train_begin(self, logs=None):
        if self.best_checkpoint and os.path.isfile(self._best_json):
            with open(self._best_json) as handle:
                self.best = json.load(handle)

    def _due(self, epoch):
        last = self.params.get("epochs") if self.params else None
        return (epoch + 1) % self.every_n_epochs == 0 or epoch + 1 == last

    def on_epoch_end(self, epoch, logs=None):
        if not self._due(epoch):
            return
        features = [extract_features(self.model, split.paths, self.image_size, self.batch_size,
                                     self.verbose > 1) for split in (self.query, self.gallery)]
        check_finite_features(np.concatenate(features), f"after epoch {epoch + 1}")
        results = evaluate_feature_sets(*features, self.query, self.gallery, self.rerank,
                                        verbose=self.verbose > 1)
        self.last_results = results
        metrics = metrics_to_logs(results)
        if logs is not None:
            logs.update(metrics)
        improved = self.best is None or metrics["mAP"] > self.best["mAP"]
        if self.best_checkpoint and improved:
            io.save_weights(self.model, self.best_checkpoint)
            self.best = {**metrics, "epoch": epoch + 1}
            io.write_json(self._best_json, self.best)
        if self.verbose:
            text = ", ".join(f"{k} {100 * v:.1f}%" for k, v in metrics.items())
            print(f"\nEpoch {epoch + 1} evaluation: {text}{' (best)' if improved else ''}")
