"""Fine-tuning callbacks: periodic ReID evaluation, best-mAP checkpoint,
and a crash-safe BackupAndRestore. Every file is written through
`keras_pass.io` (temporary file, fsync, rename)."""

import json
import os

import keras
import numpy as np

from keras_pass import io
from keras_pass.backend.train_steps import sync_state_for_callbacks
from keras_pass.pretraining.checkpoint import RNG_FILE, restore_rng_state, save_rng_state
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


class AtomicBackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` with crash-safe writes.

    Weights (with the optimizer state), the seed-generator states (drop
    path: not in `save_weights`, so a plain backup resumes with the initial
    ones) and the epoch counter are written
    into a fresh folder that then replaces `backup_dir/latest` by renames,
    so an interruption never leaves a half-written or mismatched pair. This
    overrides the Keras 3 callback's `_save_model` (a private hook, kept in
    sync by the tests).
    """

    def __init__(self, backup_dir, save_freq="epoch", delete_checkpoint=True):
        super().__init__(backup_dir, save_freq=save_freq, delete_checkpoint=delete_checkpoint)
        self._latest = os.path.join(backup_dir, "latest")
        self._weights_path = os.path.join(self._latest, "latest.weights.h5")
        self._training_metadata_path = os.path.join(self._latest, "training_metadata.json")

    def _recover(self):
        """Finishes a swap interrupted between its two renames; drops what
        killed writers left."""
        io.recover_directory(self._latest)
        io.remove_stale_temps(self.backup_dir)

    def on_train_begin(self, logs=None):
        self._recover()
        super().on_train_begin(logs)
        rng_path = os.path.join(self._latest, RNG_FILE)
        if os.path.isfile(rng_path):
            restore_rng_state(self.model, rng_path)

    def _save_model(self):
        sync_state_for_callbacks(self.model)
        io.check_finite_weights(self.model, self._latest)
        with io.atomic_directory(self._latest) as staging:
            self.model.save_weights(os.path.join(staging, "latest.weights.h5"))
            save_rng_state(self.model, os.path.join(staging, RNG_FILE))
            metadata = {"epoch": self._current_epoch, "batch": self._last_batch_seen}
            with open(os.path.join(staging, "training_metadata.json"), "w") as handle:
                json.dump(metadata, handle)


def read_backup_epoch(backup_dir):
    """The epoch an `AtomicBackupAndRestore` in `backup_dir` resumes at (0 if none)."""
    path = os.path.join(backup_dir, "latest", "training_metadata.json")
    if not os.path.isfile(path):
        return 0
    with open(path) as handle:
        return int(json.load(handle)["epoch"])
