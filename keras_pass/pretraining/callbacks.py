"""Callbacks of PASS pre-training (the schedules run inside the train step:
`keras_pass.pretraining.schedules`)."""

import os

import keras

from keras_pass import io


class EpochHistoryFile(keras.callbacks.Callback):
    """`history.json` ({metric: [one value per epoch]}), rewritten at every
    epoch end, so a killed run keeps the epochs it finished. An epoch
    trained again after a resume replaces its entry. Put it before the
    checkpoint: an epoch's entry is written before the epoch's checkpoint."""

    def __init__(self, path):
        super().__init__()
        self.path = os.fspath(path)

    def on_epoch_begin(self, epoch, logs=None):
        saved = io.read_json(self.path) if os.path.isfile(self.path) else {}
        self.history = {key: values[:epoch] for key, values in saved.items()}

    def on_epoch_end(self, epoch, logs=None):
        for key, value in (logs or {}).items():
            self.history.setdefault(key, []).append(float(keras.ops.convert_to_numpy(value)))
        io.write_json(self.path, self.history, indent=None)
