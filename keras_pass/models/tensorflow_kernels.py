"""TensorFlow-only fast paths of the backbone's layers (the one place where
model code is TensorFlow-specific).

On CPU, Keras' "auto" leaves XLA off under TensorFlow, and XLA's CPU dots lack
the AMX bfloat16 kernels of oneDNN, so the matmuls stay on oneDNN and only
element-wise chains are compiled, each into one XLA kernel: fewer passes over
the activations and no bfloat16 casts between ops. The maths is the one of
the generic paths in `layers.py`; `layers_test.py` checks them against each
other.
"""

import functools

import tensorflow as tf


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
