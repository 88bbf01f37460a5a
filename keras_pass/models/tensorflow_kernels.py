"""TensorFlow-only fast paths of the backbone's layers, the pre-training
optimizer step and the teacher EMA (the backend train steps themselves are in
`pretraining/backend_train_steps.py`).

On CPU, Keras' "auto" leaves XLA off under TensorFlow, and XLA's CPU dots lack
the AMX bfloat16 kernels of oneDNN, so the matmuls stay on oneDNN and only
element-wise chains are compiled, each into one XLA kernel: fewer passes over
the activations and no bfloat16 casts between ops. The maths is the one of
the generic paths (`layers.py`, Keras' Adam, the trainer's EMA); the tests
check each against its generic twin.
"""

import functools

import tensorflow as tf


def read(value, dtype=None):
    """A plain tensor of a variable (Keras or TensorFlow, mirrored or not) or
    a number, as an XLA function's argument: a variable passed as such is
    not read on the gradient tape."""
    tensor = tf.identity(value)
    return tensor if dtype is None else tf.cast(tensor, dtype)


def _erf_gelu(x):
    y = tf.cast(x, tf.float32)
    return tf.cast(0.5 * y * (1.0 + tf.math.erf(y * 0.7071067811865476)), x.dtype)


@functools.cache
def xla_gelu():
    """Exact GELU in float32, as one XLA kernel (bfloat16 erf is slow)."""
    return tf.function(_erf_gelu, jit_compile=True)


def _layer_norm(x, gamma, beta, epsilon, output_dtype):
    y = tf.cast(x, tf.float32)
    mean, variance = tf.nn.moments(y, axes=[-1], keepdims=True)
    scale = tf.math.rsqrt(variance + epsilon) * tf.cast(gamma, tf.float32)
    return tf.cast((y - mean) * scale + tf.cast(beta, tf.float32), output_dtype)


@functools.cache
def xla_layer_norm():
    """LayerNorm over the last axis, statistics in float32, as one XLA kernel
    (Keras' generic layer norm is six TensorFlow ops and two casts)."""
    return tf.function(_layer_norm, jit_compile=True)


def fused_dense_gelu(rows, kernel, bias):
    """GELU(rows @ kernel + bias) for inference: a MatMul -> BiasAdd -> exact
    GELU chain that grappler's remapper fuses into ONE oneDNN matmul (GELU on
    its float32 accumulator) when nothing else reads the pre-activation, i.e.
    when no gradient is taken. Used only with `training=False`; under a
    gradient tape the same ops run unfused (correct, slower)."""
    projected = tf.nn.bias_add(tf.matmul(rows, tf.cast(kernel, rows.dtype)), tf.cast(bias, rows.dtype))
    return tf.nn.gelu(projected, approximate=False)


def _adam(variable, gradient, m, v, learning_rate, step, beta_1, beta_2, epsilon):
    gradient = tf.cast(gradient, variable.dtype)
    m = m + (gradient - m) * (1.0 - beta_1)
    v = v + (tf.square(gradient) - v) * (1.0 - beta_2)
    alpha = learning_rate * tf.sqrt(1.0 - beta_2**step) / (1.0 - beta_1**step)
    return variable - m * alpha / (tf.sqrt(v) + epsilon), m, v


@functools.cache
def xla_adam():
    """Keras' Adam update (same formula) as one XLA kernel: one pass over
    variable, gradient and moments instead of twelve; returns the new
    (variable, m, v)."""
    return tf.function(_adam, jit_compile=True)


def _ema(average, value, momentum):
    return momentum * average + (1.0 - momentum) * value


@functools.cache
def xla_ema():
    """`momentum * average + (1 - momentum) * value` as one XLA kernel."""
    return tf.function(_ema, jit_compile=True)
