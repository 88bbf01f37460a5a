"""`keras_pass.checkpoint`: the one training checkpoint, in-process on a
tiny fine-tuning model (the fresh-process kill tests of each recipe are in
tests/recipes/pretrain_test.py, tests/recipes/finetune_test.py
and tests/uda/trainer_test.py)."""

import os

import keras
import numpy as np
import pytest

from keras_pass import PASSBackbone, io
from keras_pass.checkpoint import (
    LATEST,
    TrainingCheckpoint,
    fit_resuming,
    keep_history_rows,
    read_state,
)
from keras_pass.reid import ReIDModel, make_optimizer
from tests.helpers import TINY_BACKBONE, to_numpy

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(16, 64, 32, 3)).astype("float32")
LABELS = np.repeat([0, 1, 2, 3], 4)
FIT = dict(y=LABELS, batch_size=8, shuffle=False, verbose=0)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    backbone = PASSBackbone(**{**TINY_BACKBONE, "drop_path_rate": 0.1})  # its random state resumed too
    model = ReIDModel(backbone, 4)
    model.compile(optimizer=make_optimizer(steps_per_epoch=2, epochs=4, warmup_epochs=1, base_lr=0.05))
    return model


class Interrupt(keras.callbacks.Callback):
    def on_epoch_end(self, epoch, logs=None):
        if epoch == 1:
            raise KeyboardInterrupt


def _fit(model, folder, epochs=4, extra=()):
    callbacks = [TrainingCheckpoint(folder), *extra]
    return fit_resuming(model.fit, model, IMAGES, epochs, None, callbacks, **FIT)


def test_resume_matches_an_uninterrupted_run(tmp_path):
    straight = tiny_model()
    straight.fit(IMAGES, epochs=4, **FIT)
    folder = str(tmp_path / "checkpoint")
    with pytest.raises(KeyboardInterrupt):
        _fit(tiny_model(), folder, extra=[Interrupt()])
    assert read_state(folder) == {"step": 4, "epoch": 2, "step_in_epoch": 0, "steps_per_epoch": None}
    assert sorted(os.listdir(folder)) == [LATEST]  # no temporary leftovers
    resumed = tiny_model(seed=1)  # other init: everything must come from the checkpoint
    history = _fit(resumed, folder)
    assert len(history.history["loss"]) == 2
    assert int(to_numpy(resumed.optimizer.iterations)) == 8
    for a, b in zip(straight.weights, resumed.weights):
        np.testing.assert_allclose(to_numpy(a), to_numpy(b), atol=1e-5, err_msg=a.path)


def test_a_swap_interrupted_between_its_renames_is_recovered(tmp_path):
    folder = tmp_path / "checkpoint"
    _fit(tiny_model(), str(folder), epochs=1)
    os.rename(folder / LATEST, folder / f"{io.OLD_PREFIX}1234abcd-{LATEST}")
    assert read_state(str(folder))["epoch"] == 1
    history = _fit(tiny_model(), str(folder), epochs=2)
    assert len(history.history["loss"]) == 1


def test_saves_every_save_freq_steps_without_reading_the_device_counter(tmp_path, monkeypatch):
    model, folder = tiny_model(), str(tmp_path / "checkpoint")
    saved = []
    checkpoint = TrainingCheckpoint(folder, save_freq=3)
    monkeypatch.setattr(checkpoint, "_save", lambda epoch: saved.append((checkpoint.step, epoch)))
    fit_resuming(model.fit, model, IMAGES, 3, None, [checkpoint], **FIT)
    assert saved == [(2, 1), (3, 1), (4, 2), (6, 2), (6, 3)]  # step 3 and 6, and every epoch end


def test_history_rows_of_epochs_to_redo_are_dropped(tmp_path):
    path = tmp_path / "history.csv"
    path.write_text("epoch,loss\n0,1.0\n1,0.5\n2,0.2\n3,0.")
    keep_history_rows(str(path), 2)
    assert path.read_text() == "epoch,loss\n0,1.0\n1,0.5\n"
    keep_history_rows(str(path), 0)
    assert not path.exists()
