"""The one training checkpoint of every trainer (pre-training, fine-tuning,
cluster contrast): writer, reader and the `fit` that resumes from it.

A checkpoint is one folder, `<directory>/latest/`, swapped in atomically
(`keras_pass.io.atomic_directory`), so its files always belong together:

    state.weights.h5   the model's weights and its optimizer's variables
                       (iteration counter included): student, teacher,
                       centers, BNNecks, memory, as the model holds them
    rng.npz            seed-generator states (drop path, dropout: not in
                       `save_weights`, so a plain backup resumes with the
                       initial ones)
    metrics.npz        the running epoch metrics (a mid-epoch resume
                       continues the epoch's logged means)
    state.json         {"step", "epoch", "step_in_epoch", "steps_per_epoch"}
                       plus what a trainer adds (its data position)

`TrainingCheckpoint` writes it from `fit` every `save_freq` steps and at
every epoch end; `fit_resuming` restores it and continues from the saved
step, finishing an interrupted epoch first; `save_checkpoint` /
`load_checkpoint` are the same writer and reader for trainers that own
their loop (cluster contrast). The step counter is counted on the host:
no device read per step, only at a save.
"""

import json
import os

import keras
import numpy as np

from keras_pass import io
from keras_pass.backend.processes import is_writer
from keras_pass.backend.train_steps import sync_state_for_callbacks

LATEST = "latest"
WEIGHTS_FILE = "state.weights.h5"
RNG_FILE = "rng.npz"
METRICS_FILE = "metrics.npz"
STATE_FILE = "state.json"


def rng_variables(model):
    """Seed-generator states (drop path, dropout): not part of save_weights."""
    weights = {id(v) for v in model.weights}
    return [v for v in model.variables if id(v) not in weights]


def save_checkpoint(model, directory, state, metrics=None):
    """Writes `directory/latest/` (see the module docstring) atomically;
    `state`: a JSON-able dict, `metrics`: arrays of the running metrics."""
    latest = os.path.join(os.fspath(directory), LATEST)
    sync_state_for_callbacks(model)
    io.check_finite_weights(model, latest)
    io.check_room(model, latest)
    rng = {f"state_{i}": keras.ops.convert_to_numpy(v) for i, v in enumerate(rng_variables(model))}
    with io.atomic_directory(latest) as staging:
        model.save_weights(os.path.join(staging, WEIGHTS_FILE))
        np.savez(os.path.join(staging, RNG_FILE), **rng)
        if metrics is not None:
            np.savez(os.path.join(staging, METRICS_FILE), **{f"metric_{i}": m for i, m in enumerate(metrics)})
        with open(os.path.join(staging, STATE_FILE), "w") as handle:
            json.dump(io.jsonable(state), handle)


def read_state(directory):
    """The `state.json` of the checkpoint in `directory`, or None (no
    complete checkpoint). Finishes a swap killed between its renames."""
    latest = os.path.join(os.fspath(directory), LATEST)
    io.recover_directory(latest)
    path = os.path.join(latest, STATE_FILE)
    if not (os.path.isfile(path) and os.path.isfile(os.path.join(latest, WEIGHTS_FILE))):
        return None
    return io.read_json(path)


def load_checkpoint(model, directory):
    """Loads the checkpoint in `directory` into `model` (weights, optimizer,
    seed generators); returns its state, with the saved running metrics
    under "metrics" (None if none), or None when there is no checkpoint."""
    state = read_state(directory)
    if state is None:
        return None
    latest = os.path.join(os.fspath(directory), LATEST)
    if model.optimizer is not None and not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)
    model.load_weights(os.path.join(latest, WEIGHTS_FILE))
    rng = np.load(os.path.join(latest, RNG_FILE))
    for i, variable in enumerate(rng_variables(model)):
        variable.assign(rng[f"state_{i}"])
    metrics_path = os.path.join(latest, METRICS_FILE)
    if os.path.isfile(metrics_path):
        saved = np.load(metrics_path)
        state["metrics"] = [saved[f"metric_{i}"] for i in range(len(saved.files))]
    return state


class TrainingCheckpoint(keras.callbacks.Callback):
    """Saves the whole training state into `directory/latest/` every
    `save_freq` steps (an int) and at every epoch end (`save_freq="epoch"`:
    only there). Resume with `fit_resuming` (`PASSPretrainer.fit` does).
    `extra_state(step)`: more JSON-able state to record (a data position)."""

    def __init__(self, directory, save_freq="epoch", extra_state=None):
        super().__init__()
        if not (save_freq == "epoch" or (isinstance(save_freq, int) and save_freq > 0)):
            raise ValueError(f"Expected save_freq 'epoch' or an int > 0. Received: save_freq={save_freq}")
        self.directory = os.fspath(directory)
        self.save_freq = save_freq
        self.extra_state = extra_state
        self.steps_per_epoch = None  # set by fit_resuming
        self.step = 0  # the optimizer's step, counted on the host
        self._pending_metrics = None

    def restore(self, model):
        """Loads the checkpoint into `model`; returns its state (or None).
        Its epoch metrics are put back at the next epoch begin (where Keras
        resets them)."""
        state = load_checkpoint(model, self.directory)
        if state is not None:
            self.step = state["step"]
            self._pending_metrics = state.pop("metrics", None)
        return state

    def on_train_begin(self, logs=None):
        sync_state_for_callbacks(self.model)
        self.step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch, self._epoch_start = epoch, self.step
        if self._pending_metrics is not None:
            for variable, value in zip(self.model.metrics_variables, self._pending_metrics):
                variable.assign(value)
            self._pending_metrics = None

    def on_train_batch_end(self, batch, logs=None):
        step = self._epoch_start + batch + 1
        crossed = self.save_freq != "epoch" and step // self.save_freq > self.step // self.save_freq
        self.step = step
        if crossed:
            self._save(self._epoch)

    def on_epoch_end(self, epoch, logs=None):
        self._save(epoch + 1)

    def _save(self, epoch):
        state = {"step": self.step, "epoch": epoch, "step_in_epoch": 0, "steps_per_epoch": self.steps_per_epoch}
        if self.steps_per_epoch:
            state["epoch"], state["step_in_epoch"] = divmod(self.step, self.steps_per_epoch)
        if self.extra_state:
            state.update(self.extra_state(self.step))
        # Mid-epoch the running means; at an epoch end the next epoch starts from zero.
        metrics = [keras.ops.convert_to_numpy(v) for v in self.model.metrics_variables]
        if state["step_in_epoch"] == 0:
            metrics = [np.zeros_like(m) for m in metrics]
        save_checkpoint(self.model, self.directory, state, metrics)


def fit_resuming(fit, model, x, epochs, steps_per_epoch, callbacks, initial_epoch=0, **kwargs):
    """`fit(...)` (a `keras.Model.fit`) resumed from the `TrainingCheckpoint`
    in `callbacks`: the saved step is restored and, with `steps_per_epoch`
    given, an interrupted epoch is finished before the next ones; the two
    histories are joined.

    `x` may be a function of the global step returning the data stream from
    that step on: a resumed run then sees exactly the batches the
    uninterrupted one saw. A plain dataset is iterated from its first batch.
    """
    checkpoints = [c for c in callbacks if isinstance(c, TrainingCheckpoint)]
    for checkpoint in checkpoints:
        checkpoint.steps_per_epoch = steps_per_epoch
    saved = checkpoints[0].restore(model) if checkpoints else None
    stream = x if callable(x) else (lambda step: x)
    step, earlier = (saved or {}).get("step", 0), None
    if saved:
        initial_epoch = saved["epoch"]
        done = saved.get("step_in_epoch", 0) if steps_per_epoch else 0
        if done and initial_epoch < epochs:
            earlier = fit(stream(step), epochs=initial_epoch + 1, initial_epoch=initial_epoch,
                          steps_per_epoch=steps_per_epoch - done, callbacks=callbacks, **kwargs)
            step += steps_per_epoch - done
            initial_epoch += 1
    history = fit(stream(step), epochs=epochs, initial_epoch=initial_epoch,
                  steps_per_epoch=steps_per_epoch, callbacks=callbacks, **kwargs)
    if earlier is not None:
        for key, values in earlier.history.items():
            history.history[key] = values + history.history.get(key, [])
    return history


def keep_history_rows(path, epochs):
    """Keeps the rows of the first `epochs` epochs of a CSVLogger's file:
    the epochs a resumed run trains again are logged once, by that run."""
    if not os.path.isfile(path) or not is_writer():
        return
    with open(path) as handle:
        lines = handle.read().splitlines(keepends=True)
    if epochs == 0:
        os.remove(path)
        return
    kept = lines[:1] + [line for line in lines[1:] if _row_epoch(line) < epochs]
    if kept != lines:
        io.write_text(path, "".join(kept))


def _row_epoch(line):
    try:
        return int(line.split(",", 1)[0])
    except ValueError:  # a row cut by a kill
        return float("inf")
