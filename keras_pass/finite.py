"""Non-finite training state: one guard for every trainer, one check for
every writer.

`NonFiniteLossGuard` stops `fit` (pre-training, fine-tuning, USL/UDA) at the
first step whose loss is NaN or infinite, before any later callback saves.
A step can also end with a finite loss and non-finite weights (the update
of a diverging step); `check_finite_weights`, called by every weights /
model / preset writer of `keras_pass.io`, refuses to write those, so the
last good checkpoint is never replaced by a poisoned one. Both raise
`NonFiniteLossError` (exit status 3 on the command line).
"""

import math

import keras
import numpy as np

from keras_pass.backend.train_steps import sync_state_for_callbacks
from keras_pass.errors import NonFiniteLossError

ADVICE = ("lower the learning rate (or raise its warm-up); in pre-training also the teacher "
          "temperature warm-up, or use mixed_bfloat16 instead of float16")


def _step(model):
    optimizer = getattr(model, "optimizer", None)
    if optimizer is None:
        return None
    return int(keras.ops.convert_to_numpy(optimizer.iterations))


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Raises `NonFiniteLossError` as soon as the loss is NaN/inf, and at an
    epoch end whose weights are not all finite (BatchNorm's moving
    statistics can overflow while the training loss, which uses batch
    statistics, stays finite). Put it first in the callbacks: nothing after
    it (evaluation, checkpoints) runs on that step or epoch."""

    def on_epoch_end(self, epoch, logs=None):
        check_finite_weights(self.model, f"at the end of epoch {epoch + 1}")

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is None:
            return
        value = float(np.asarray(keras.ops.convert_to_numpy(loss)))
        if not math.isfinite(value):
            sync_state_for_callbacks(self.model)
            raise NonFiniteLossError(
                f"Loss is {value} at step {_step(self.model)}: stopping. The last checkpoint "
                f"(if any) was written before this step and is untouched; {ADVICE}."
            )


def _state_variables(model):
    """The weights and, when built, the optimizer state `save_weights` writes."""
    variables = list(model.weights)
    optimizer = getattr(model, "optimizer", None)
    if optimizer is not None and getattr(optimizer, "built", False):
        variables += list(optimizer.variables)
    return variables


def count_non_finite(model):
    """(non-finite values, values) over the model's weights and optimizer state."""
    sync_state_for_callbacks(model)
    bad = total = 0
    for variable in _state_variables(model):
        if not keras.backend.is_float_dtype(variable.dtype):
            continue
        value = keras.ops.convert_to_numpy(variable)
        bad += int(value.size - np.count_nonzero(np.isfinite(value)))
        total += int(value.size)
    return bad, total


def check_finite_weights(model, where):
    """Raises `NonFiniteLossError` if any weight or optimizer value of
    `model` is NaN/inf; `where` ends "Expected finite weights ..." (the
    writers: "to write to PATH"; nothing is written then)."""
    bad, total = count_non_finite(model)
    if bad:
        raise NonFiniteLossError(
            f"Expected finite weights {where}. Received: {bad:,} of {total:,} values NaN or "
            f"infinite (the training diverged: stopping; nothing was written and the last "
            f"checkpoint is untouched); {ADVICE}."
        )


def check_finite_features(features, where):
    """Raises `NonFiniteLossError` if extracted features hold NaN/inf: the
    weights are finite but so large that the forward pass overflows."""
    features = np.asarray(features)
    bad = int(features.size - np.count_nonzero(np.isfinite(features)))
    if bad:
        raise NonFiniteLossError(
            f"Expected finite features {where}. Received: {bad:,} of {features.size:,} values NaN "
            f"or infinite (the training diverged: stopping; the last checkpoint is untouched); "
            f"{ADVICE}."
        )
