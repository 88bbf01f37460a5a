import keras
import numpy as np
import pytest
from keras_hub.src.tests.test_case import TestCase as KerasHubTestCase

from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.configs import ARCHITECTURES, arch_config
from tests.helpers import TINY_BACKBONE, to_numpy, tree_to_numpy

IMAGES = np.random.default_rng(0).normal(size=(2, 64, 32, 3)).astype("float32")
# A backend tensor, as keras-hub's own tests pass: `compute_output_spec` (the
# precision check) gives layers with a `compute_output_shape` the shapes of
# tensors only, not of NumPy arrays (Keras' Layer.compute_output_spec).
IMAGES_TENSOR = keras.ops.convert_to_tensor(IMAGES)


class TestPASSBackboneWithKerasHubHarness(KerasHubTestCase):
    """keras-hub's checks of a backbone: config and serialization round
    trips, eager call, compiled and tf.data `predict`, the name, mixed
    precision (every weight, sublayer and output in the policy's dtypes),
    int8/float8 quantization of the Dense layers, and a `.keras` round trip."""

    def test_backbone_basics(self):
        self.run_backbone_test(
            cls=PASSBackbone,
            init_kwargs=dict(TINY_BACKBONE),
            input_data=IMAGES_TENSOR,
            expected_output_shape={"cls": (2, 32), "parts": (2, 3, 32), "tokens": (2, 1 + 3 + 8, 32)},
        )

    def test_saved_model(self):
        self.run_model_saving_test(cls=PASSBackbone, init_kwargs=dict(TINY_BACKBONE), input_data=IMAGES)


class TestPASSBackbone:
    def setup_method(self):
        self.init_kwargs = dict(TINY_BACKBONE)
        self.images = IMAGES

    def test_encode_native_size_matches_functional_call(self):
        backbone = PASSBackbone(**self.init_kwargs)
        np.testing.assert_allclose(
            to_numpy(backbone.encode(self.images)["tokens"]),
            to_numpy(backbone(self.images)["tokens"]),
            atol=1e-6,
        )

    def test_local_view_uses_only_its_part_token(self):
        backbone = PASSBackbone(**self.init_kwargs)
        local = self.images[:, :32]
        before = {i: tree_to_numpy(backbone.encode(local, part_index=i)) for i in (0, 1)}
        assert before[1]["parts"].shape == (2, 1, 32)
        assert before[1]["tokens"].shape == (2, 2 + 2 * 2, 32)
        tokens = to_numpy(backbone.embeddings.part_tokens)
        # Random moves (a constant shift would vanish in LayerNorm).
        tokens[[0, 2]] += np.random.default_rng(1).normal(size=(2, 32))
        backbone.embeddings.part_tokens.assign(tokens)
        after = {i: tree_to_numpy(backbone.encode(local, part_index=i)) for i in (0, 1)}
        np.testing.assert_allclose(after[1]["cls"], before[1]["cls"], atol=1e-6)
        assert np.abs(after[0]["cls"] - before[0]["cls"]).max() > 1e-3

    def test_traced_part_index_matches_python_int(self):
        backbone = PASSBackbone(**self.init_kwargs)
        local = self.images[:, :32]
        expected = to_numpy(backbone.encode(local, part_index=2)["cls"])
        fn = lambda x, i: backbone.encode(x, part_index=i)["cls"]  # noqa: E731
        if keras.config.backend() == "jax":
            import jax

            fn = jax.jit(fn)
        elif keras.config.backend() == "tensorflow":
            import tensorflow as tf

            fn = tf.function(fn)
        out = fn(local, keras.ops.convert_to_tensor(2, "int32"))
        np.testing.assert_allclose(to_numpy(out), expected, atol=1e-5)

    def test_reid_features_concat_cls_and_mean_parts(self):
        backbone = PASSBackbone(**self.init_kwargs)
        outputs = tree_to_numpy(backbone.encode(self.images))
        expected = np.concatenate([outputs["cls"], outputs["parts"].mean(1)], -1)
        np.testing.assert_allclose(to_numpy(backbone.reid_features(self.images)), expected, atol=1e-5)

    def test_any_size_and_overlapping_stride(self):
        backbone = PASSBackbone(**{**self.init_kwargs, "stride": 8})
        assert backbone.grid_shape == (7, 3)
        out = backbone.encode(np.zeros((1, 48, 32, 3), "float32"))
        assert tuple(out["tokens"].shape) == (1, 4 + 5 * 3, 32)

    def test_pos_embed_interpolation_always_differs_only_at_native_size(self):
        resize_only = PASSBackbone(**self.init_kwargs)
        always = PASSBackbone(**{**self.init_kwargs, "pos_embed_interpolation": "always"})
        always.set_weights(resize_only.get_weights())
        native = [to_numpy(m.encode(self.images)["cls"]) for m in (resize_only, always)]
        assert np.abs(native[0] - native[1]).max() > 1e-4
        local = [to_numpy(m.encode(self.images[:, :32], 0)["cls"]) for m in (resize_only, always)]
        np.testing.assert_allclose(local[0], local[1], atol=1e-6)

    def test_last_selfattention(self):
        backbone = PASSBackbone(**self.init_kwargs)
        attention = to_numpy(backbone.get_last_selfattention(self.images))
        assert attention.shape == (2, 2, 12, 12)
        np.testing.assert_allclose(attention.sum(-1), 1.0, atol=1e-5)

    def test_drop_path_only_in_training(self):
        backbone = PASSBackbone(**{**self.init_kwargs, "drop_path_rate": 0.5})
        eval_runs = [to_numpy(backbone.encode(self.images)["cls"]) for _ in range(2)]
        np.testing.assert_array_equal(*eval_runs)
        train = to_numpy(backbone.encode(self.images, training=True)["cls"])
        assert np.abs(train - eval_runs[0]).max() > 1e-4

    @pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
    def test_mixed_precision(self, policy):
        backbone = PASSBackbone(**self.init_kwargs, dtype=policy)
        out = to_numpy(keras.ops.cast(backbone.encode(self.images)["cls"], "float32"))
        assert np.all(np.isfinite(out))
        assert backbone.embeddings.pos_embed.dtype == "float32"

    def test_arch_configs(self):
        assert set(ARCHITECTURES) == {"vit_tiny", "vit_small", "vit_base"}
        small = arch_config("vit_small")
        assert (small["hidden_dim"], small["num_layers"], small["num_heads"]) == (384, 12, 6)
        assert small["image_shape"] == (256, 128, 3) and small["patch_size"] == 16
        base = ARCHITECTURES["vit_base"]
        assert (base["hidden_dim"], base["num_layers"], base["num_heads"]) == (768, 12, 12)
        with pytest.raises(ValueError, match="arch"):
            arch_config("vit_huge")
        tiny = PASSBackbone.from_arch("vit_tiny", image_shape=(32, 16, 3), num_layers=1)
        assert tiny.hidden_dim == 192

    @pytest.mark.parametrize(
        "kwargs,match",
        [
            ({"num_parts": 0}, "num_parts"),
            ({"image_shape": (None, 32, 3)}, "index -3"),
            ({"image_shape": (60, 32, 3)}, "divisible by stride"),
            ({"stride": 20}, "stride"),
            ({"num_heads": 3}, "num_heads"),
            ({"pos_embed_interpolation": "sometimes"}, "pos_embed_interpolation"),
        ],
    )
    def test_bad_construction_arguments(self, kwargs, match):
        with pytest.raises(ValueError, match=match):
            PASSBackbone(**{**self.init_kwargs, **kwargs})

    @pytest.mark.parametrize(
        "shape,part_index,match",
        [
            ((2, 64, 32), None, "images.shape"),
            ((2, 64, 32, 1), None, "images.shape"),
            ((2, 60, 32, 3), None, "divisible"),
            ((2, 32, 32, 3), 3, "part_index"),
            ((2, 32, 32, 3), -1, "part_index"),
        ],
    )
    def test_bad_encode_inputs(self, shape, part_index, match):
        backbone = PASSBackbone(**self.init_kwargs)
        with pytest.raises(ValueError, match=match):
            backbone.encode(np.zeros(shape, "float32"), part_index=part_index)


def test_per_sample_part_index_matches_separate_calls():
    backbone = PASSBackbone(**TINY_BACKBONE)
    local = np.random.default_rng(2).normal(size=(3, 32, 16, 3)).astype("float32")
    mixed = backbone.encode(local, part_index=np.array([2, 0, 1]))
    for sample, region in enumerate([2, 0, 1]):
        alone = backbone.encode(local[sample : sample + 1], part_index=region)
        np.testing.assert_allclose(
            to_numpy(mixed["tokens"])[sample], to_numpy(alone["tokens"])[0], atol=1e-5
        )
    with pytest.raises(ValueError, match="part_index"):
        backbone.encode(local, part_index=np.array([0, 1]))
    with pytest.raises(ValueError, match="part_index"):
        backbone.encode(local, part_index=np.array([0, 1, 3]))


def test_qkv_init_std_sets_only_the_qkv_kernels():
    import keras

    keras.utils.set_random_seed(0)
    wide = PASSBackbone(**{**TINY_BACKBONE, "hidden_dim": 64, "mlp_dim": 128}, qkv_init_std=0.1)
    assert wide.get_config()["qkv_init_std"] == 0.1
    qkv = to_numpy(wide.get_layer("block_0").qkv.kernel)
    fc1 = to_numpy(wide.get_layer("block_0").fc1.kernel)
    assert 0.09 < qkv.std() < 0.11 and 0.018 < fc1.std() < 0.022


def _release_spreads(backbone):
    """The release's init std of each backbone weight, from its formulas:
    trunc_normal_(std=0.02) cut at +-2 (absolute: 100 std, so std 0.02) for
    Linear kernels, tokens and position embeddings; PyTorch's Conv2d default
    (uniform +-1/sqrt(fan_in), std bound/sqrt(3)) for the patch kernel and
    bias; zero biases, LayerNorm (1, 0) and cls_pos at zero."""
    patch = backbone.patch_size
    fan_in = 3 * patch * patch
    spreads = {}
    for variable in backbone.weights:
        name = variable.path
        if "projection" in name:
            spreads[name] = 1 / np.sqrt(fan_in) / np.sqrt(3)
        elif name.endswith(("cls_token", "part_tokens", "part_pos", "pos_embed")):
            spreads[name] = 0.02
        elif name.endswith("qkv/kernel"):
            spreads[name] = backbone.get_config()["qkv_init_std"]
        elif name.endswith("/kernel"):
            spreads[name] = 0.02
        else:  # biases, LayerNorm gamma/beta, cls_pos
            spreads[name] = 0.0
    return spreads


def test_fresh_backbone_weights_are_independent_with_the_release_spreads():
    import keras

    from tests.helpers import assert_independent_with_spreads

    keras.utils.set_random_seed(0)
    backbone = PASSBackbone.from_arch("vit_small", num_layers=2)
    weights = {v.path: to_numpy(v) for v in backbone.weights}
    assert_independent_with_spreads(weights, _release_spreads(backbone))
    embeddings = backbone.embeddings  # the values once aliased by one initializer instance
    assert not np.allclose(to_numpy(embeddings.part_tokens)[0], to_numpy(embeddings.cls_token)[0])
    for name in ("norm1/gamma", "norm1/beta"):
        assert np.all(weights[f"block_0/{name}"] == (1.0 if "gamma" in name else 0.0))
    keras.utils.set_random_seed(0)
    again = PASSBackbone.from_arch("vit_small", num_layers=2)
    for variable in again.weights:  # reproducible under set_random_seed
        np.testing.assert_array_equal(to_numpy(variable), weights[variable.path])
