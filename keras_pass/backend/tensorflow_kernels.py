"""TensorFlow-only fast paths of the backbone's layers, the pre-training
optimizer step and the teacher EMA, used through `keras_pass.backend.kernels` (the backend train
steps themselves are in `train_steps.py`).

On CPU, Keras' "auto" leaves XLA off under TensorFlow, and XLA's CPU dots lack
the AMX bfloat16 kernels of oneDNN, so the matmuls stay on oneDNN and only
element-wise chains are compiled, each into one XLA kernel: fewer passes over
the activations and no bfloat16 casts between ops. GELU, LayerNorm and the
teacher EMA compile their generic `keras.ops` functions (`xla`); the Adam
step restates Keras' formula, which assigns variables and so cannot be
compiled as it is; the tests check each fast path against its generic twin.
"""

import functools

import tensorflow as tf


def read(value, dtype=None):
    """A plain tensor of a variable (Keras or TensorFlow, mirrored or not) or
    a number, as an XLA function's argument: a variable passed as such is
    not read on the gradient tape."""
    tensor = tf.identity(value)
    return tensor if dtype is None else tf.cast(tensor, dtype)


@functools.cache
def xla(function):
    """`function` (backend-agnostic `keras.ops` code, so the generic path and
    the fast one are the same maths) compiled as one XLA kernel."""
    return tf.function(function, jit_compile=True)


def fused_dense_gelu(rows, kernel, bias):
    """GELU(rows @ kernel + bias) for inference: a MatMul -> BiasAdd -> exact
    GELU chain that grappler's remapper fuses into ONE oneDNN matmul (GELU on
    its float32 accumulator) when nothing else reads the pre-activation, i.e.
    when no gradient is taken. Used only with `training=False`; under a
    gradient tape the same ops run unfused (correct, slower)."""
    projected = tf.nn.bias_add(tf.matmul(rows, tf.cast(kernel, rows.dtype)), tf.cast(bias, rows.dtype))
    return tf.nn.gelu(projected, approximate=False)

