"""Fault injection for kill-and-resume tests: kills the process like SIGKILL
would (`os._exit`: no cleanup, no final save) at a chosen point of a real
run. Installed by the tiny runner scripts (`install_from_environment()`),
never by the library.

`KERAS_PASS_KILL_AT_STEP=N`: after training step N (the optimizer's step
counter), at the end of its callbacks (a callback added to every
`keras.Model.fit`). `KERAS_PASS_KILL_AT=write`: at an atomic write whose
temporary is complete, before its first rename; `swap`: in a folder swap,
between its two renames; `KERAS_PASS_KILL_AT_COUNT=N`: at the N-th such
point (default 1); `KERAS_PASS_KILL_AT_FILE=BASE`: only writes to a file or
folder named BASE count (`latest`: a checkpoint).
"""

import os
import sys

import keras

from keras_pass import io

KILL_STATUS = 137  # what a shell reports for SIGKILL


def die():
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(KILL_STATUS)


class KillAtStep(keras.callbacks.Callback):
    def __init__(self, step):
        super().__init__()
        self.kill_step = step

    def on_train_batch_end(self, batch, logs=None):
        from keras_pass.backend.train_steps import sync_state_for_callbacks

        sync_state_for_callbacks(self.model)
        if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == self.kill_step:
            die()


def kill_at_step(step):
    """Adds `KillAtStep(step)` to every `fit` of the process."""
    original = keras.Model.fit

    def fit(self, *args, callbacks=None, **kwargs):
        return original(self, *args, callbacks=list(callbacks or []) + [KillAtStep(step)], **kwargs)

    keras.Model.fit = fit


class _KillingOs:
    """`os` for `keras_pass.io`, dying at the chosen rename of an atomic
    write: `write` before its first rename, `swap` between the two renames
    of a folder swap (old folder retired, new one not yet in place)."""

    def __init__(self, point, count, only):
        self._point, self._count, self._only, self._seen = point, count, only, 0
        self._retired = set()

    def __getattr__(self, name):
        return getattr(os, name)

    def _reached(self, target):
        if self._only and os.path.basename(target) != self._only:
            return
        self._seen += 1
        if self._seen == self._count:
            die()

    def _rename(self, rename, source, destination):
        if os.path.basename(destination).startswith(io.OLD_PREFIX):  # retiring `source`
            if self._point == "write":
                self._reached(source)
            self._retired.add(source)
        elif os.path.basename(source).startswith(io.TEMP_PREFIX):  # putting the new one in place
            swapped = destination in self._retired
            self._retired.discard(destination)
            if (self._point == "swap") == swapped:
                self._reached(destination)
        return rename(source, destination)

    def rename(self, source, destination):
        return self._rename(os.rename, source, destination)

    def replace(self, source, destination):
        return self._rename(os.replace, source, destination)


def kill_at_write(point, count=1, only=None):
    """Kills at the `count`-th `point` ("write" or "swap") of
    `keras_pass.io`'s atomic writes (of files named `only`)."""
    io.os = _KillingOs(point, count, only)


def install_from_environment():
    """Installs the kill points the `KERAS_PASS_KILL_*` variables ask for."""
    if os.environ.get("KERAS_PASS_KILL_AT_STEP"):
        kill_at_step(int(os.environ["KERAS_PASS_KILL_AT_STEP"]))
    if os.environ.get("KERAS_PASS_KILL_AT"):
        kill_at_write(os.environ["KERAS_PASS_KILL_AT"], int(os.environ.get("KERAS_PASS_KILL_AT_COUNT", "1")),
                      os.environ.get("KERAS_PASS_KILL_AT_FILE"))
