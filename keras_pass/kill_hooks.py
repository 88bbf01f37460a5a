"""Test-only hooks that kill the process like SIGKILL would (`os._exit`:
no cleanup, no final save), to test resumption of real runs.

`KERAS_PASS_KILL_AT_STEP=N`: after training step N (the optimizer's
iteration counter), at the end of its callbacks (`KillAtStep`, added by
the recipes when the variable is set). `KERAS_PASS_KILL_AT=NAME` with
`KERAS_PASS_KILL_AT_COUNT=N`: at the N-th `maybe_kill(NAME)` of the
process: `write` (an atomic write whose temporary is complete, before its
rename), `swap` (a folder swap between its two renames), `checkpoint`
(right after a pre-training checkpoint); with `KERAS_PASS_KILL_AT_FILE=BASE`
only the writes to a file or folder named BASE count (`latest`: a
fine-tuning backup or a USL checkpoint).
Unset (always, outside tests), they do nothing.
"""

import os
import sys

from keras_pass.backend.train_steps import sync_state_for_callbacks

KILL_STATUS = 137  # what a shell reports for SIGKILL
_counts = {}


def _die():
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(KILL_STATUS)


def maybe_kill(name, path=None):
    """Dies at the N-th call with `name` (about `path`) when KERAS_PASS_KILL_AT=name."""
    if os.environ.get("KERAS_PASS_KILL_AT") != name:
        return
    only = os.environ.get("KERAS_PASS_KILL_AT_FILE")
    if only and (path is None or os.path.basename(os.fspath(path)) != only):
        return
    _counts[name] = _counts.get(name, 0) + 1
    if _counts[name] == int(os.environ.get("KERAS_PASS_KILL_AT_COUNT", "1")):
        _die()


def kill_at_step_callbacks():
    """[KillAtStep(N)] when KERAS_PASS_KILL_AT_STEP=N, else []."""
    step = os.environ.get("KERAS_PASS_KILL_AT_STEP")
    if not step:
        return []
    import keras

    class KillAtStep(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            sync_state_for_callbacks(self.model)
            if int(keras.ops.convert_to_numpy(self.model.optimizer.iterations)) == int(step):
                _die()

    return [KillAtStep()]
