"""Resumable pre-training: atomic step checkpoints and a non-finite guard."""

import json
import os

import keras
import numpy as np

from keras_pass import io
from keras_pass.kill_hooks import maybe_kill

from keras_pass.backend.train_steps import sync_state_for_callbacks

WEIGHTS_FILE = "latest.weights.h5"
RNG_FILE = "rng_state.npz"
STATE_FILE = "training_state.json"
METRICS_FILE = "metrics_state.npz"


def rng_variables(model):
    """Seed-generator states (drop path, dropout): not part of save_weights."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def save_rng_state(model, path):
    """The seed-generator states, atomically (an `.npz` at `path`)."""
    rng = {f"state_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(rng_variables(model))}
    with io.atomic_path(path, ".npz") as temporary:
        np.savez(temporary, **rng)


def restore_rng_state(model, path):
    """Assigns the states `save_rng_state` wrote (a resumed run draws the
    same drop-path masks as the uninterrupted one)."""
    rng = np.load(path)
    for i, variable in enumerate(rng_variables(model)):
        variable.assign(rng[f"state_{i}"])


class PretrainingCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state every `save_freq` steps and at epoch
    ends into `directory/latest/`, one folder swapped in atomically (so the
    weights, random state and step counter always belong together):
    student, teacher, centers, schedule variables, optimizer state
    (iteration counter included), seed-generator states and the running
    epoch metrics.

    `PASSPretrainer.fit` restores it before training and continues from the
    saved step, finishing an interrupted epoch first, with its metrics
    continued (the epoch's logged means equal the uninterrupted run's).
    """

    def __init__(self, directory, save_freq=100):
        super().__init__()
        if not (save_freq == "epoch" or (isinstance(save_freq, int) and save_freq > 0)):
            raise ValueError(f"Expected save_freq 'epoch' or an int > 0. Received: save_freq={save_freq}")
        self.directory = os.fspath(directory)
        self.save_freq = save_freq
        self.steps_per_epoch = None  # set by PASSPretrainer.fit
        self._pending_metrics = None

    @property
    def latest(self):
        return os.path.join(self.directory, "latest")

    @property
    def weights_path(self):
        return os.path.join(self.latest, WEIGHTS_FILE)

    def saved_state(self):
        io.clean_interrupted_writes(self.directory, depth=1)
        path = os.path.join(self.latest, STATE_FILE)
        if not (os.path.exists(path) and os.path.exists(self.weights_path)):
            return None
        return io.read_json(path)

    def restore(self, model):
        """Loads the latest checkpoint into `model`; returns its state dict.
        The saved epoch metrics are put back at the next epoch begin (Keras
        resets them there)."""
        state = self.saved_state()
        if state is not None:
            model.load_weights(self.weights_path)
            restore_rng_state(model, os.path.join(self.latest, RNG_FILE))
            metrics = np.load(os.path.join(self.latest, METRICS_FILE))
            self._pending_metrics = [metrics[f"metric_{i}"] for i in range(len(metrics.files))]
        return state

    def _save(self, epoch):
        sync_state_for_callbacks(self.model)
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        io.check_finite_weights(self.model, f"to write to {self.latest}")
        state = {"global_step": step, "epoch": epoch, "steps_per_epoch": self.steps_per_epoch}
        if self.steps_per_epoch:
            state["epoch"], state["step_in_epoch"] = divmod(step, self.steps_per_epoch)
        # Mid-epoch the running means; at an epoch end the next epoch starts from zero.
        metrics = [keras.ops.convert_to_numpy(v) for v in self.model.metrics_variables]
        if state.get("step_in_epoch", 1) == 0:
            metrics = [np.zeros_like(m) for m in metrics]
        with io.atomic_directory(self.latest) as staging:
            self.model.save_weights(os.path.join(staging, WEIGHTS_FILE))
            save_rng_state(self.model, os.path.join(staging, RNG_FILE))
            np.savez(os.path.join(staging, METRICS_FILE), **{f"metric_{i}": m for i, m in enumerate(metrics)})
            with open(os.path.join(staging, STATE_FILE), "w") as handle:
                json.dump(state, handle)
        maybe_kill("checkpoint")

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch
        if self._pending_metrics is not None:
            for variable, value in zip(self.model.metrics_variables, self._pending_metrics):
                variable.assign(value)
            self._pending_metrics = None

    def on_train_batch_end(self, batch, logs=None):
        if self.save_freq == "epoch":
            return
        sync_state_for_callbacks(self.model)
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        if step % self.save_freq == 0:
            self._save(self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1)
