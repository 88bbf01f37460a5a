"""AdamW with a weight decay that a callback can schedule per iteration."""

import keras
from keras import ops

from keras_pass.backend import kernels


@keras.saving.register_keras_serializable(package="keras_pass")
class ScheduledAdamW(keras.optimizers.AdamW):
    """`keras.optimizers.AdamW` whose weight decay is an optimizer variable.

    Keras bakes a float `weight_decay` into the compiled step; PASS needs a
    cosine schedule 0.04 -> 0.4, so the value lives in `weight_decay_value`
    (saved with the optimizer, set by `WeightDecayScheduler`). As in the
    release, decay is decoupled (`w -= lr * wd * w`, before the Adam step).
    """

    def __init__(self, learning_rate=5e-4, weight_decay=0.04, **kwargs):
        super().__init__(learning_rate=learning_rate, weight_decay=weight_decay, **kwargs)
        self.initial_weight_decay = weight_decay

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

    def update_step(self, gradient, variable, learning_rate):
        """Keras' Adam step; on TensorFlow as one XLA kernel."""
        if not kernels.fast_paths_enabled() or self.amsgrad:
            return super().update_step(gradient, variable, learning_rate)
        index = self._get_variable_index(variable)
        m, v = self._momentums[index], self._velocities[index]
        scalars = [ops.cast(x, variable.dtype) for x in
                   (learning_rate, self.iterations + 1, self.beta_1, self.beta_2, self.epsilon)]
        new_variable, new_m, new_v = kernels.fused(kernels.adam_step, variable, gradient, m, v, *scalars)
        self.assign(m, new_m)
        self.assign(v, new_v)
        self.assign(variable, new_variable)

    def get_config(self):
        return {**super().get_config(), "weight_decay": self.initial_weight_decay}
