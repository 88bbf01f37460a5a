"""The official fine-tuning optimiser: PyTorch-style SGD, warm-up + cosine.

`PASS_transreid` trains with `torch.optim.SGD(momentum=0.9)`, one parameter
group per tensor (lr x2 and the same weight decay for every tensor whose name
contains "bias"), and timm's `CosineLRScheduler` stepped once per epoch.
Realised here as:

- `WarmupCosineSchedule`: a Keras schedule of the step count, constant within
  an epoch (`epoch = step // steps_per_epoch`), so it is saved with the
  optimizer's `iterations` and resumes exactly.
- `ReIDSGD`: `buffer = momentum * buffer + (grad + weight_decay * w)`,
  `w -= lr * buffer`, i.e. PyTorch's coupled L2 decay and momentum buffer
  (Keras's `SGD` folds the lr into the buffer and decays decoupled, which
  differs once the lr changes). Bias-like variables (paths ending in
  `bias`, or `beta` of LayerNorm/BatchNorm: PyTorch calls those `bias` too)
  follow `bias_learning_rate`.
"""

import math

import keras
from keras import ops

BIAS_SUFFIXES = ("bias", "beta")


@keras.saving.register_keras_serializable(package="keras_pass")
class WarmupCosineSchedule(keras.optimizers.schedules.LearningRateSchedule):
    """lr of epoch t (0-based): linear warm-up, then cosine to `min_lr`.

    `t < warmup_epochs`: `warmup_lr + t * (peak_lr - warmup_lr) / warmup_epochs`;
    else `min_lr + (peak_lr - min_lr) * (1 + cos(pi * t / total_epochs)) / 2`
    (the cosine spans all epochs, warm-up included, as timm's scheduler with
    `warmup_prefix=False`). Epoch t trains with lr(t) as in the reference,
    where the scheduler sets the next epoch's value at the end of each epoch.
    """

    def __init__(self, peak_lr, total_epochs, steps_per_epoch, warmup_epochs=0,
                 warmup_lr=0.0, min_lr=0.0):
        for name, value in (("total_epochs", total_epochs), ("steps_per_epoch", steps_per_epoch)):
            if value < 1:
                raise ValueError(f"Expected {name} >= 1. Received: {name}={value}")
        if not 0 <= warmup_epochs <= total_epochs:
            raise ValueError(
                f"Expected 0 <= warmup_epochs <= total_epochs={total_epochs}. "
                f"Received: warmup_epochs={warmup_epochs}"
            )
        self.peak_lr = float(peak_lr)
        self.total_epochs = int(total_epochs)
        self.steps_per_epoch = int(steps_per_epoch)
        self.warmup_epochs = int(warmup_epochs)
        self.warmup_lr = float(warmup_lr)
        self.min_lr = float(min_lr)

    def epoch_lr(self, epoch):
        """The value for a (possibly traced) epoch index."""
        epoch = ops.cast(epoch, "float32")
        cosine = self.min_lr + 0.5 * (self.peak_lr - self.min_lr) * (
            1.0 + ops.cos(math.pi * epoch / self.total_epochs)
        )
        if not self.warmup_epochs:
            return cosine
        slope = (self.peak_lr - self.warmup_lr) / self.warmup_epochs
        return ops.where(epoch < self.warmup_epochs, self.warmup_lr + epoch * slope, cosine)

    def __call__(self, step):
        return self.epoch_lr(ops.floor_divide(ops.cast(step, "int32"), self.steps_per_epoch))

    def get_config(self):
        return {
            "peak_lr": self.peak_lr,
            "total_epochs": self.total_epochs,
            "steps_per_epoch": self.steps_per_epoch,
            "warmup_epochs": self.warmup_epochs,
            "warmup_lr": self.warmup_lr,
            "min_lr": self.min_lr,
        }


def is_bias(variable):
    return variable.path.split("/")[-1].endswith(BIAS_SUFFIXES)


@keras.saving.register_keras_serializable(package="keras_pass")
class ReIDSGD(keras.optimizers.Optimizer):
    """SGD with PyTorch semantics and a separate learning rate for biases.

    Args:
        learning_rate: float or schedule for weights.
        bias_learning_rate: float or schedule for bias-like variables;
            `None` uses `learning_rate`.
        momentum: momentum factor (dampening 0).
        weight_decay: coupled L2 coefficient added to every gradient
            (PyTorch's `weight_decay`; NOT Keras's decoupled decay).
        nesterov: Nesterov momentum as in PyTorch.
    """

    def __init__(self, learning_rate=4e-4, bias_learning_rate=None, momentum=0.9,
                 weight_decay=1e-4, nesterov=False, name="reid_sgd", **kwargs):
        kwargs.pop("weight_decay", None)
        super().__init__(learning_rate=learning_rate, name=name, **kwargs)
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(f"Expected 0 <= momentum <= 1. Received: momentum={momentum}")
        if weight_decay is not None and weight_decay < 0:
            raise ValueError(f"Expected weight_decay >= 0. Received: weight_decay={weight_decay}")
        if isinstance(bias_learning_rate, dict):
            bias_learning_rate = keras.optimizers.schedules.deserialize(bias_learning_rate)
        self.bias_learning_rate = bias_learning_rate
        self.momentum = float(momentum)
        self.l2_weight_decay = float(weight_decay or 0.0)
        self.nesterov = nesterov

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self._uses_bias_lr = [is_bias(v) for v in variables]
        self.momentums = []
        if self.momentum:
            self.momentums = self.add_optimizer_variables(variables, "momentum")

    def _bias_lr(self, learning_rate):
        if self.bias_learning_rate is None:
            return learning_rate
        if callable(self.bias_learning_rate):
            return self.bias_learning_rate(self.iterations)
        return self.bias_learning_rate

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        if self._uses_bias_lr[index]:
            learning_rate = self._bias_lr(learning_rate)
        learning_rate = ops.cast(learning_rate, variable.dtype)
        step = ops.cast(gradient, variable.dtype)
        if self.l2_weight_decay:
            step = step + self.l2_weight_decay * variable
        if self.momentum:
            buffer = self.momentums[index]
            self.assign(buffer, self.momentum * buffer + step)
            step = step + self.momentum * buffer if self.nesterov else buffer
        self.assign_sub(variable, learning_rate * step)

    def get_config(self):
        config = super().get_config()
        bias_lr = self.bias_learning_rate
        if isinstance(bias_lr, keras.optimizers.schedules.LearningRateSchedule):
            bias_lr = keras.optimizers.schedules.serialize(bias_lr)
        config.update({
            "bias_learning_rate": bias_lr,
            "momentum": self.momentum,
            "weight_decay": self.l2_weight_decay,
            "nesterov": self.nesterov,
        })
        return config


def make_optimizer(steps_per_epoch, epochs=120, base_lr=4e-4, bias_lr_factor=2.0,
                   weight_decay=1e-4, momentum=0.9, warmup_epochs=20,
                   warmup_factor=0.01, min_lr_factor=0.002):
    """The official recipe: SGD 0.9, lr 4e-4 (biases x2), wd 1e-4, 20 warm-up
    epochs from 0.01 x lr, cosine over 120 epochs down to 0.002 x lr.

    As in timm's scheduler, the warm-up start and the floor are absolute
    values shared by both groups: only the peak of the bias lr is doubled.
    """
    warmup_epochs = min(warmup_epochs, epochs)

    def schedule(peak):
        return WarmupCosineSchedule(
            peak, epochs, steps_per_epoch, warmup_epochs,
            warmup_lr=warmup_factor * base_lr, min_lr=min_lr_factor * base_lr,
        )

    return ReIDSGD(
        learning_rate=schedule(base_lr),
        bias_learning_rate=schedule(bias_lr_factor * base_lr),
        momentum=momentum,
        weight_decay=weight_decay,
    )


@keras.saving.register_keras_serializable(package="keras_pass")
class L2Adam(keras.optimizers.Adam):
    """Adam with PyTorch semantics: `torch.optim.Adam(weight_decay=wd)` adds
    the coupled L2 term `wd * w` to the gradient before the moments (Keras's
    `weight_decay` is decoupled, i.e. AdamW), epsilon 1e-8."""

    def __init__(self, learning_rate=1e-3, weight_decay=0.0, epsilon=1e-8, name="l2_adam", **kwargs):
        if weight_decay is not None and weight_decay < 0:
            raise ValueError(f"Expected weight_decay >= 0. Received: weight_decay={weight_decay}")
        super().__init__(learning_rate=learning_rate, epsilon=epsilon, name=name, **kwargs)
        self.l2_weight_decay = float(weight_decay or 0.0)

    def update_step(self, gradient, variable, learning_rate):
        gradient = ops.cast(gradient, variable.dtype)
        if self.l2_weight_decay:
            gradient = gradient + self.l2_weight_decay * variable
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        config = super().get_config()
        config["weight_decay"] = self.l2_weight_decay
        return config
