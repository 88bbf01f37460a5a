"""Per-iteration schedules of PASS pre-training, read inside the train step.

`pass_schedules(...)` precomputes every value per global iteration, as the
release does (DINO's `utils.cosine_scheduler`: optional linear warm-up from
`warmup_start` to `base`, then a half cosine from `base` to `final`), and
`PASSPretrainer.compile(schedules=...)` makes each train step look its
values up from the optimizer's iteration counter (like a Keras
`LearningRateSchedule`): nothing is read back to the host between steps, so
`steps_per_execution > 1` and asynchronous dispatch work, and a resumed run
continues the schedules from its restored counter. Past the last
iteration the final values hold.

The teacher temperature warms up per EPOCH and the last layers stay frozen
for whole epochs, as in the release.
"""

import dataclasses

import numpy as np
from keras import ops

RELEASE_TEACHER_MOMENTUM = 0.996  # start of the cosine to 1
LOGGED = ("lr", "weight_decay", "teacher_momentum", "teacher_temp")


def cosine_schedule(base, final, total_steps, warmup_steps=0, warmup_start=0.0):
    """DINO's cosine schedule as an array of `total_steps` values (float64)."""
    warmup = np.linspace(warmup_start, base, warmup_steps)
    decay = np.arange(total_steps - warmup_steps)
    cosine = final + 0.5 * (base - final) * (1.0 + np.cos(np.pi * decay / max(len(decay), 1)))
    return np.concatenate([warmup, cosine])


def epoch_warmup(start, end, warmup_epochs, epochs, steps_per_epoch):
    """Linear per-epoch warm-up then constant, one value per iteration (the
    release's teacher temperature)."""
    per_epoch = np.concatenate([np.linspace(start, end, warmup_epochs),
                                np.full(max(epochs - warmup_epochs, 0), end)])
    return np.repeat(per_epoch, steps_per_epoch)


@dataclasses.dataclass(frozen=True)
class PASSSchedules:
    """Values per global iteration: `lr`, `weight_decay`, `teacher_momentum`
    and `teacher_temp` (arrays of one value per iteration), and
    `freeze_last_layer_steps`: the heads' last layers are not updated during
    the first that many iterations."""

    lr: np.ndarray
    weight_decay: np.ndarray
    teacher_momentum: np.ndarray
    teacher_temp: np.ndarray
    freeze_last_layer_steps: int = 0

    def at(self, step):
        """{name: float32 value at iteration `step`} (a tensor or an int)."""
        values = {}
        for name in LOGGED:
            array = np.asarray(getattr(self, name), "float32")
            index = ops.minimum(ops.cast(step, "int32"), len(array) - 1)
            values[name] = ops.take(ops.convert_to_tensor(array), index)
        return values


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
    """The release's schedules, with its defaults: lr = base_lr * batch_size
    / 256 (linear scaling rule) after a linear warm-up from 0, cosine to
    `min_lr`; weight decay cosine 0.04 -> 0.4; teacher momentum cosine
    0.996 -> 1; teacher temperature 0.04; last layers frozen in epoch 1."""
    total = epochs * steps_per_epoch
    warmup = warmup_epochs * steps_per_epoch
    return PASSSchedules(
        lr=cosine_schedule(base_lr * batch_size / 256.0, min_lr, total, warmup),
        weight_decay=cosine_schedule(*weight_decay, total),
        teacher_momentum=cosine_schedule(*teacher_momentum, total),
        teacher_temp=epoch_warmup(warmup_teacher_temp, teacher_temp, warmup_teacher_temp_epochs,
                                  epochs, steps_per_epoch),
        freeze_last_layer_steps=freeze_last_layer_epochs * steps_per_epoch,
    )
