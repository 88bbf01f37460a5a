import keras
import numpy as np
import pytest

from keras_pass.models.layers import (
    DropPath,
    PartTokenEmbedding,
    PatchEmbedding,
    TransformerBlock,
)
from tests.helpers import to_numpy


def _roundtrip(layer, *args, **kwargs):
    out = layer(*args, **kwargs)
    clone = layer.__class__.from_config(layer.get_config())
    clone(*args, **kwargs)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(to_numpy(clone(*args, **kwargs)), to_numpy(out), atol=1e-6)
    return out


class TestLayers:
    def setup_method(self):
        self.grid = np.random.default_rng(0).normal(size=(2, 4, 2, 8)).astype("float32")

    def test_patch_embedding_overlapping_stride(self):
        layer = PatchEmbedding(8, patch_size=16, stride=12)
        out = _roundtrip(layer, np.zeros((2, 64, 40, 3), "float32"))
        assert tuple(out.shape) == (2, 5, 3, 8)
        assert layer.compute_output_shape((2, 64, 40, 3)) == (2, 5, 3, 8)

    def test_part_tokens_global_and_local_layout(self):
        layer = PartTokenEmbedding(8, grid_shape=(4, 2), num_parts=3)
        out = to_numpy(_roundtrip(layer, self.grid))
        assert out.shape == (2, 1 + 3 + 8, 8)
        parts = to_numpy(layer.part_tokens + layer.part_pos)
        np.testing.assert_allclose(out[0, 1:4], parts, atol=1e-6)
        np.testing.assert_allclose(out[1, 0], to_numpy(layer.cls_token[0]), atol=1e-6)
        local = to_numpy(layer(self.grid, part_index=2))
        assert local.shape == (2, 2 + 8, 8)
        np.testing.assert_allclose(local[:, 1], np.broadcast_to(parts[2], (2, 8)), atol=1e-6)

    def test_cls_pos_starts_at_zero(self):
        layer = PartTokenEmbedding(8, grid_shape=(4, 2))
        layer.build(self.grid.shape)
        assert not np.any(to_numpy(layer.cls_pos))

    @pytest.mark.parametrize("mode,changes", [("resize_only", False), ("always", True)])
    def test_native_grid_interpolation_mode(self, mode, changes):
        layer = PartTokenEmbedding(8, grid_shape=(4, 2), pos_embed_interpolation=mode)
        out = to_numpy(layer(self.grid))
        raw = self.grid.reshape(2, 8, 8) + to_numpy(layer.pos_embed)
        assert np.allclose(out[:, 4:], raw, atol=1e-6) != changes

    def test_bad_interpolation_mode(self):
        with pytest.raises(ValueError, match="pos_embed_interpolation"):
            PartTokenEmbedding(8, grid_shape=(4, 2), pos_embed_interpolation="never")

    def test_transformer_block_attention_rows_are_distributions(self):
        block = TransformerBlock(8, num_heads=2, mlp_dim=16)
        x = self.grid.reshape(2, 8, 8)
        assert tuple(_roundtrip(block, x).shape) == (2, 8, 8)
        weights = to_numpy(block.attention_weights(x))
        assert weights.shape == (2, 2, 8, 8)
        np.testing.assert_allclose(weights.sum(-1), 1.0, atol=1e-5)

    def test_drop_path_drops_whole_samples_in_training_only(self):
        layer = DropPath(0.5, seed=1)
        x = np.ones((64, 3, 4), "float32")
        np.testing.assert_array_equal(to_numpy(layer(x)), x)
        out = to_numpy(layer(x, training=True))
        per_sample = out.reshape(64, -1)
        assert set(np.unique(per_sample)) <= {0.0, 2.0}
        assert np.all(per_sample.min(1) == per_sample.max(1))
        assert 10 < (per_sample[:, 0] == 0).sum() < 54
        assert keras.saving.deserialize_keras_object(
            keras.saving.serialize_keras_object(layer)
        ).rate == 0.5


def test_gelu_is_the_exact_erf_form_in_the_input_dtype():
    import math

    from keras_pass.backend.kernels import gelu

    x = np.linspace(-4, 4, 41).astype("float32")
    expected = np.array([0.5 * v * (1 + math.erf(v / math.sqrt(2))) for v in x])
    np.testing.assert_allclose(to_numpy(gelu(x)), expected, atol=1e-6)
    half = gelu(keras.ops.cast(x, "bfloat16"))
    assert keras.backend.standardize_dtype(half.dtype) == "bfloat16"
    np.testing.assert_allclose(to_numpy(keras.ops.cast(half, "float32")), expected, atol=0.05)


# The fast paths exist only on TensorFlow; elsewhere both sides of these
# comparisons run the same keras.ops code, so they could not fail.
tensorflow_only = pytest.mark.skipif(keras.config.backend() != "tensorflow",
                                     reason="fast paths exist only on TensorFlow")


def _compiled(function):
    """`function` as a graph (TensorFlow's grappler fusions only apply there)."""
    if keras.config.backend() == "tensorflow":
        import tensorflow as tf

        return tf.function(function)
    return function


@tensorflow_only
@pytest.mark.parametrize("policy,atol", [("float32", 1e-5), ("mixed_bfloat16", 0.05)])
def test_layer_norm_equals_keras_layer_normalization(policy, atol):
    from keras_pass.models.layers import LayerNorm

    x = np.random.default_rng(0).normal(3.0, 2.0, size=(2, 5, 16)).astype("float32")
    ours = LayerNorm(epsilon=1e-6, dtype=policy)
    reference = keras.layers.LayerNormalization(epsilon=1e-6, dtype=policy)
    ours.build(x.shape)
    reference.build(x.shape)
    rng = np.random.default_rng(1)
    weights = [rng.normal(size=16).astype("float32") for _ in range(2)]
    ours.set_weights(weights)
    reference.set_weights(weights)
    for call in (ours, _compiled(ours)):
        out = call(keras.ops.cast(x, ours.compute_dtype))
        assert keras.backend.standardize_dtype(out.dtype) == ours.compute_dtype
        np.testing.assert_allclose(
            to_numpy(keras.ops.cast(out, "float32")),
            to_numpy(keras.ops.cast(reference(keras.ops.cast(x, ours.compute_dtype)), "float32")),
            atol=atol)


@tensorflow_only
@pytest.mark.parametrize("policy,atol", [("float32", 1e-5), ("mixed_bfloat16", 0.1)])
def test_transformer_block_inference_path_equals_training_path(policy, atol):
    """training=False takes the fused matmul + GELU path on TensorFlow;
    without dropout both paths compute the same function."""
    block = TransformerBlock(32, num_heads=2, mlp_dim=64, dtype=policy)
    x = np.random.default_rng(0).normal(size=(2, 6, 32)).astype("float32")
    block.build(x.shape)
    rng = np.random.default_rng(2)
    block.set_weights([rng.normal(0, 0.2, size=w.shape).astype("float32") for w in block.get_weights()])
    inference = to_numpy(keras.ops.cast(_compiled(lambda v: block(v, training=False))(x), "float32"))
    training = to_numpy(keras.ops.cast(_compiled(lambda v: block(v, training=True))(x), "float32"))
    np.testing.assert_allclose(inference, training, atol=atol)
    assert np.abs(inference - x).max() > 0.1  # the block did something
