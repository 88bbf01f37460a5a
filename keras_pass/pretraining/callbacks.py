"""Per-iteration schedules of PASS pre-training, as Keras callbacks.

Each callback recomputes its value from the optimizer's iteration counter
before every step, so the schedules survive checkpoint/resume (the counter
is restored with the optimizer). The formulas are DINO's
`utils.cosine_scheduler`: optional linear warm-up from `warmup_start` to
`base` over `warmup_steps`, then a half cosine from `base` to `final` over
the remaining steps.

Deviation: the release warms the teacher temperature up per EPOCH; here it is
linear per iteration (identical for the released 0-epoch warm-up).
"""

import math
import os

import keras

from keras_pass import io

from keras_pass.backend.train_steps import sync_state_for_callbacks
from keras_pass.pretraining.trainer import RELEASE_TEACHER_MOMENTUM


def cosine_schedule(step, total_steps, base, final, warmup_steps=0, warmup_start=0.0):
    """Value of DINO's cosine schedule at iteration `step` (clamped)."""
    if step < warmup_steps:
        return warmup_start + (base - warmup_start) * step / max(warmup_steps - 1, 1)
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(step - warmup_steps, decay_steps) / decay_steps
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * progress))


def linear_warmup(step, warmup_steps, start, end):
    if step >= warmup_steps:
        return end
    return start + (end - start) * step / max(warmup_steps - 1, 1)


class IterationScheduler(keras.callbacks.Callback):
    """Sets one training quantity from the iteration counter every step.

    Subclasses define `value(step)` and `assign(model, value)`; the latest
    value is added to the epoch logs under `log_name` (TensorBoard).
    """

    log_name = None

    def on_train_batch_begin(self, batch, logs=None):
        sync_state_for_callbacks(self.model)
        step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))
        self.current = float(self.value(step))
        self.assign(self.model, self.current)

    def on_epoch_end(self, epoch, logs=None):
        if logs is not None and self.log_name and hasattr(self, "current"):
            logs[self.log_name] = self.current


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


def _inner_optimizer(model):
    return getattr(model.optimizer, "inner_optimizer", model.optimizer)


class LearningRateWarmupCosine(IterationScheduler):
    """lr = base_lr * batch_size / 256 (linear scaling rule), linear warm-up
    from 0, then cosine to `min_lr` (release: 5e-4, 10 warm-up epochs, 1e-6)."""

    log_name = "lr"

    def __init__(self, total_steps, warmup_steps, batch_size, base_lr=5e-4, min_lr=1e-6):
        super().__init__()
        self.peak = base_lr * batch_size / 256.0
        self.total_steps, self.warmup_steps, self.min_lr = total_steps, warmup_steps, min_lr

    def value(self, step):
        return cosine_schedule(step, self.total_steps, self.peak, self.min_lr, self.warmup_steps)

    def assign(self, model, value):
        _inner_optimizer(model).learning_rate.assign(value)


class WeightDecayScheduler(IterationScheduler):
    """Weight decay cosine 0.04 -> 0.4 (needs `ScheduledAdamW`)."""

    log_name = "weight_decay"

    def __init__(self, total_steps, start=0.04, end=0.4):
        super().__init__()
        self.total_steps, self.start, self.end = total_steps, start, end

    def value(self, step):
        return cosine_schedule(step, self.total_steps, self.start, self.end)

    def assign(self, model, value):
        optimizer = _inner_optimizer(model)
        if not hasattr(optimizer, "weight_decay_value"):
            raise ValueError(
                "Expected the model compiled with ScheduledAdamW (the default of "
                f"PASSPretrainer.compile). Received: optimizer={type(optimizer).__name__}"
            )
        optimizer.weight_decay_value.assign(value)


class TeacherMomentumScheduler(IterationScheduler):
    """EMA momentum of the teacher, cosine 0.996 -> 1."""

    log_name = "teacher_momentum"

    def __init__(self, total_steps, start=RELEASE_TEACHER_MOMENTUM, end=1.0):
        super().__init__()
        self.total_steps, self.start, self.end = total_steps, start, end

    def value(self, step):
        return cosine_schedule(step, self.total_steps, self.start, self.end)

    def assign(self, model, value):
        model.teacher_momentum.assign(value)


class TeacherTemperatureScheduler(IterationScheduler):
    """Teacher temperature: linear warm-up then constant (0.04 -> 0.04)."""

    log_name = "teacher_temp"

    def __init__(self, warmup_steps=0, warmup_temp=0.04, temp=0.04):
        super().__init__()
        self.warmup_steps, self.warmup_temp, self.temp = warmup_steps, warmup_temp, temp

    def value(self, step):
        return linear_warmup(step, self.warmup_steps, self.warmup_temp, self.temp)

    def assign(self, model, value):
        model.teacher_temp.assign(value)


class FreezeLastLayer(IterationScheduler):
    """Zero gradients of the heads' last layers for the first `steps`."""

    def __init__(self, steps):
        super().__init__()
        self.steps = steps

    def value(self, step):
        return 1.0 if step < self.steps else 0.0

    def assign(self, model, value):
        model.last_layer_frozen.assign(value)


def pass_schedules(
    epochs,
    steps_per_epoch,
    batch_size,
    base_lr=5e-4,
    min_lr=1e-6,
    warmup_epochs=10,
    weight_decay=(0.04, 0.4),
    teacher_momentum=(RELEASE_TEACHER_MOMENTUM, 1.0),
    teacher_temp=0.04,
    warmup_teacher_temp=0.04,
    warmup_teacher_temp_epochs=0,
    freeze_last_layer_epochs=1,
):
    """The release's five schedules, with its defaults, as callbacks."""
    total = epochs * steps_per_epoch
    return [
        LearningRateWarmupCosine(total, warmup_epochs * steps_per_epoch, batch_size, base_lr, min_lr),
        WeightDecayScheduler(total, *weight_decay),
        TeacherMomentumScheduler(total, *teacher_momentum),
        TeacherTemperatureScheduler(
            warmup_teacher_temp_epochs * steps_per_epoch, warmup_teacher_temp, teacher_temp
        ),
        FreezeLastLayer(freeze_last_layer_epochs * steps_per_epoch),
    ]
