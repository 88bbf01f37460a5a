"""AdamW with a weight decay set inside the train step and variables whose
updates start late (the release's frozen last layer)."""

import keras
from keras import ops

from keras_pass.backend import kernels


@keras.saving.register_keras_serializable(package="keras_pass")
class ScheduledAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` whose weight decay is an optimizer variable,
    and with variables frozen for a number of first steps.

    Keras bakes a float `weight_decay` into the compiled step; PASS needs a
    cosine schedule 0.04 -> 0.4, so the value lives in `weight_decay_value`
    (saved with the optimizer, set by `PASSPretrainer`'s train step). As in
    the release, decay is decoupled (`w -= lr * wd * w`, before the Adam
    step).

    `freeze(variables, steps)`: during the first `steps` iterations these
    variables get no update at all (no Adam step, no weight decay, moments
    left at zero), and their bias correction counts from the first step
    after: PyTorch's AdamW on a parameter whose grad is None until then.

    Deviation from the release: epsilon is Keras', 1e-7 added to sqrt(v)
    before the bias correction (an effective 1e-7 / sqrt(1 - 0.999^t)),
    where PyTorch adds 1e-8 after it; small-gradient elements step 0-1%
    less (median 0.05%), with no measurable effect on a 600-step run
    (docs/experiments/demo_diagnosis.md, section 9). Kept so that the
    optimizer equals `keras.optimizers.AdamW` outside the schedules.
    """

    def __init__(self, learning_rate=5e-4, weight_decay=0.04, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        self.initial_weight_decay = weight_decay
        self._frozen_steps = {}

    def build(self, variables):
        if self.built:
            return
        super().build(variables)
        self.weight_decay_value = self.add_variable(
            shape=(),
            initializer=keras.initializers.Constant(self.initial_weight_decay),
            dtype="float32",
            name="weight_decay_value",
        )
        self.weight_decay = self.weight_decay_value  # read at every step

    def freeze(self, variables, steps):
        """No update of `variables` during the first `steps` iterations."""
        if self.amsgrad:
            raise ValueError("Expected amsgrad=False to freeze variables. Received: amsgrad=True")
        for variable in variables:
            self._frozen_steps[self._var_key(variable)] = int(steps)

    def _local_step(self, variable):
        """(this variable's Adam step count, 1-based: < 1 while frozen, its frozen steps)."""
        frozen = self._frozen_steps.get(self._var_key(variable), 0)
        return ops.cast(self.iterations + 1 - frozen, variable.dtype), frozen

    def _apply_weight_decay(self, variables):
        for variable in variables:
            if not self._use_weight_decay(variable):
                continue
            step, frozen = self._local_step(variable)
            decay = ops.cast(self.weight_decay, variable.dtype) * ops.cast(self.learning_rate, variable.dtype)
            if frozen:
                decay = ops.where(step >= 1, decay, ops.zeros_like(decay))
            variable.assign(variable - variable * decay)

    def update_step(self, gradient, variable, learning_rate):
        """Keras' Adam step at the variable's own step count; on TensorFlow
        as one XLA kernel."""
        step, frozen = self._local_step(variable)
        if not frozen and (self.amsgrad or not kernels.fast_paths_enabled()):
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        scalars = [ops.cast(x, variable.dtype) for x in
                   (learning_rate, step, self.beta_1, self.beta_2, self.epsilon)]
        new_variable, new_m, new_v = kernels.fused(kernels.adam_step, variable, gradient, m, v, *scalars)
        self.assign(m, new_m)
        self.assign(v, new_v)
        self.assign(variable, new_variable)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.initial_weight_decay}
