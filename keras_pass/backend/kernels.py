"""Fast-path dispatch: the library calls these, never `keras.config.backend()`.

On TensorFlow each function compiles its generic `keras.ops` formula into
one XLA kernel (`tensorflow_kernels.xla`), so the fast and the generic paths
are the same maths; elsewhere the formula runs as it is.
"""

import contextlib
import threading

import keras
from keras import ops

_state = threading.local()


def fast_paths_enabled():
    """True where the fused kernels exist (TensorFlow), outside `generic_ops()`."""
    return keras.config.backend() == "tensorflow" and not getattr(_state, "generic", False)


@contextlib.contextmanager
def generic_ops():
    """Traces with the plain `keras.ops` formulas only: exports must not hold
    the separately compiled XLA kernels (ONNX converters cannot inline them)."""
    previous = getattr(_state, "generic", False)
    _state.generic = True
    try:
        yield
    finally:
        _state.generic = previous


def fused(function, *arguments):
    """`function(*arguments)`, as one XLA kernel on TensorFlow (variables
    among the arguments are read as plain tensors)."""
    if not fast_paths_enabled():
        return function(*arguments)
    from keras_pass.backend import tensorflow_kernels

    tensors = [tensorflow_kernels.read(a) if hasattr(a, "dtype") else a for a in arguments]
    return tensorflow_kernels.xla(function)(*tensors)


def erf_gelu(x):
    """Exact (erf) GELU in float32, as PyTorch's `nn.GELU()`: under
    mixed_bfloat16, TensorFlow's bfloat16 erfc made GELU a fifth of the
    pre-training step on CPU; in float32 erf is vectorised and exact."""
    y = ops.cast(x, "float32")
    return ops.cast(0.5 * y * (1.0 + ops.erf(y * 0.7071067811865476)), x.dtype)


def gelu(x):
    return fused(erf_gelu, x)


def dense_gelu(dense, rows, training=None):
    """`gelu(dense(rows))`; in TensorFlow inference one fused oneDNN matmul."""
    if fast_paths_enabled() and not training:
        from keras_pass.backend import tensorflow_kernels

        return tensorflow_kernels.fused_dense_gelu(rows, dense.kernel, dense.bias)
    return gelu(dense(rows))


def ema(average, value, momentum):
    return momentum * average + (1.0 - momentum) * ops.cast(value, average.dtype)


def moving_average(average, value, momentum):
    """`momentum * average + (1 - momentum) * value`: one pass on TensorFlow."""
    if not fast_paths_enabled():
        return ema(average, value, momentum)
    from keras_pass.backend import tensorflow_kernels

    tensors = [tensorflow_kernels.read(x, average.dtype) for x in (average, value, momentum)]
    return tensorflow_kernels.xla(ema)(*tensors)


def adam_step(variable, gradient, m, v, learning_rate, step, beta_1, beta_2, epsilon):
    """Keras' Adam update (same formula) at the variable's own 1-based
    `step`, pure: returns the new (variable, m, v). A `step` below 1 (a
    variable still frozen) returns all three unchanged."""
    variable, m, v = (ops.convert_to_tensor(x) for x in (variable, m, v))
    gradient = ops.cast(gradient, variable.dtype)
    new_m = m + (gradient - m) * (1.0 - beta_1)
    new_v = v + (ops.square(gradient) - v) * (1.0 - beta_2)
    counted = ops.maximum(step, 1.0)
    alpha = learning_rate * ops.sqrt(1.0 - beta_2**counted) / (1.0 - beta_1**counted)
    new_variable = variable - new_m * alpha / (ops.sqrt(new_v) + epsilon)
    active = step >= 1.0
    return tuple(ops.where(active, new, old) for new, old in ((new_variable, variable), (new_m, m), (new_v, v)))
