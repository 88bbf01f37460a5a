import keras
import numpy as np
import pytest
import tensorflow as tf
from keras_hub.src.tests.test_case import TestCase as KerasHubTestCase

from keras_pass.models.backbone import PASSBackbone
from keras_pass.reid.checkpoint import from_official_checkpoint
from keras_pass.reid.model import ReIDModel
from tests.helpers import TINY_BACKBONE, to_numpy

IMAGES = np.random.default_rng(0).normal(size=(4, 64, 32, 3)).astype("float32")
EPS = 1e-5


def randomise_necks(model, rng):
    necks = [model.cls_neck, *model.part_necks] if model.multi_neck else [model.neck]
    for neck in necks:
        for name in ("gamma", "moving_mean"):
            getattr(neck, name).assign(rng.normal(size=neck.gamma.shape).astype("float32"))
        neck.moving_variance.assign(rng.uniform(0.5, 2, size=neck.gamma.shape).astype("float32"))


def batchnorm(x, neck):
    gamma, mean, var = (to_numpy(getattr(neck, n)) for n in ("gamma", "moving_mean", "moving_variance"))
    return gamma * (x - mean) / np.sqrt(var + EPS)


def unit(x):
    return x / np.linalg.norm(x, axis=1, keepdims=True)


class TestReIDModelWithKerasHubHarness(KerasHubTestCase):
    """keras-hub's checks where they fit a task-like model (its
    `run_backbone_test` needs a keras-hub `Backbone`): config and
    serialization round trips, eager call, compiled and tf.data `predict`,
    mixed precision, a `.keras` round trip."""

    def setUp(self):
        super().setUp()
        self.init_kwargs = dict(backbone=PASSBackbone(**TINY_BACKBONE), num_classes=5)

    def test_model_basics(self):
        model = ReIDModel(**self.init_kwargs)
        self.run_serialization_test(model)
        self.assertEqual(model(IMAGES).shape, (4, 64))
        self.assertEqual(model.predict(IMAGES, verbose=0).shape, (4, 64))
        self.assertEqual(model.predict(tf.data.Dataset.from_tensor_slices(IMAGES).batch(2), verbose=0).shape,
                         (4, 64))
        # A backend tensor: `compute_output_spec` gives the backbone's layers the
        # shapes of tensors only, not of NumPy arrays (Keras' Layer.compute_output_spec).
        self.run_precision_test(ReIDModel, dict(self.init_kwargs), keras.ops.convert_to_tensor(IMAGES))

    def test_saved_model(self):
        self.run_model_saving_test(cls=ReIDModel, init_kwargs=self.init_kwargs, input_data=IMAGES)


class TestReIDModel:
    def setup_method(self):
        self.backbone = PASSBackbone(**TINY_BACKBONE)

    @pytest.mark.parametrize("fusion", ["cat", "mean", "cls_only", "parts_only"])
    @pytest.mark.parametrize("multi_neck", [True, False])
    def test_fused_features_before_and_after(self, fusion, multi_neck):
        rng = np.random.default_rng(1)
        models = {
            test: ReIDModel(self.backbone, 5, feature_fusion=fusion, multi_neck=multi_neck,
                            test_feature=test)
            for test in ("before", "after")
        }
        for model in models.values():
            randomise_necks(model, rng)
        outputs = self.backbone(IMAGES)
        cls, parts = to_numpy(outputs["cls"]), to_numpy(outputs["parts"])
        fuse = {"cat": lambda c, p: np.concatenate([c, p], 1), "mean": lambda c, p: (c + p) / 2,
                "cls_only": lambda c, p: c, "parts_only": lambda c, p: p}[fusion]
        before = fuse(cls, parts.mean(1))
        model = models["after"]
        if multi_neck:
            necked = np.mean([batchnorm(parts[:, i], n) for i, n in enumerate(model.part_necks)], 0)
            after = fuse(batchnorm(cls, model.cls_neck), necked)
        else:
            after = batchnorm(before, model.neck)
        np.testing.assert_allclose(to_numpy(models["before"](IMAGES)), unit(before), atol=1e-5)
        np.testing.assert_allclose(to_numpy(model(IMAGES)), unit(after), atol=1e-4)
        train_out = model(IMAGES, training=True)
        assert tuple(train_out["logits"].shape) == (4, 5)
        np.testing.assert_allclose(to_numpy(train_out["features"]), before, atol=1e-5)

    def test_neck_biases_frozen_classifier_bias_free(self):
        model = ReIDModel(self.backbone, 5)
        trainable = {v.path for v in model.trainable_variables}
        assert not any("neck" in p and p.endswith("beta") for p in trainable)
        assert [p.split("/")[-1] for p in trainable if "classifier" in p] == ["kernel"]
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        labels = np.array([0, 0, 1, 1])
        model.fit(IMAGES, labels, batch_size=4, epochs=1, verbose=0)
        np.testing.assert_array_equal(to_numpy(model.cls_neck.beta), 0.0)
        assert np.abs(to_numpy(model.cls_neck.moving_mean)).max() > 0  # BN stats updated

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="feature_fusion"):
            ReIDModel(self.backbone, 5, feature_fusion="concat")
        with pytest.raises(ValueError, match="test_feature"):
            ReIDModel(self.backbone, 5, test_feature="neck")
        with pytest.raises(ValueError, match="num_classes"):
            ReIDModel(self.backbone, 0)


class TestOfficialCheckpoint:
    def state_dict(self, multi_neck=True, num_classes=6):
        torch = pytest.importorskip("torch")  # noqa: F841
        from tests import torch_reference

        reference = torch_reference.ReferenceViT(dim=32, depth=2, heads=2, mlp_dim=64,
                                                 img_size=(64, 32), mode="resize_only")
        rng = np.random.default_rng(2)
        state = {f"module.base.{k}": v.numpy() for k, v in reference.state_dict().items()}
        state["module.base.fc.weight"] = np.zeros((3, 32), np.float32)
        names = ["bottleneck", "bottleneck_1", "bottleneck_2", "bottleneck_3"] if multi_neck else ["bottleneck"]
        width = 32 if multi_neck else 64
        for name in names:
            state[f"module.{name}.weight"] = rng.normal(size=width).astype("float32")
            state[f"module.{name}.bias"] = np.zeros(width, np.float32)
            state[f"module.{name}.running_mean"] = rng.normal(size=width).astype("float32")
            state[f"module.{name}.running_var"] = rng.uniform(0.5, 2, width).astype("float32")
            state[f"module.{name}.num_batches_tracked"] = np.array(10)
        state["module.classifier.weight"] = rng.normal(size=(num_classes, 64)).astype("float32")
        return state, reference

    @pytest.mark.parametrize("multi_neck", [True, False])
    def test_necks_and_classifier_are_loaded(self, multi_neck):
        state, reference = self.state_dict(multi_neck)
        model, report = from_official_checkpoint(
            state, arch="vit_tiny", hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64,
            test_feature="after")
        assert model.multi_neck == multi_neck and model.num_classes == 6
        assert report.unused == ["fc.weight"]
        outputs = model.backbone(IMAGES)
        cls, parts = to_numpy(outputs["cls"]), to_numpy(outputs["parts"])

        def bn(x, name):
            s = {k: state[f"module.{name}.{k}"] for k in ("weight", "running_mean", "running_var")}
            return s["weight"] * (x - s["running_mean"]) / np.sqrt(s["running_var"] + EPS)

        if multi_neck:
            after = np.concatenate(
                [bn(cls, "bottleneck"), np.mean([bn(parts[:, i], f"bottleneck_{i + 1}")
                                                 for i in range(3)], 0)], 1)
        else:
            after = bn(np.concatenate([cls, parts.mean(1)], 1), "bottleneck")
        np.testing.assert_allclose(to_numpy(model(IMAGES)), unit(after), atol=1e-4)
        np.testing.assert_allclose(to_numpy(model.classifier.kernel),
                                   state["module.classifier.weight"].T)

    def test_mismatches_are_reported(self):
        state, _ = self.state_dict(num_classes=4)
        state["module.classifier.weight"] = np.zeros((4, 32), np.float32)
        with pytest.raises(ValueError, match="classifier.weight of shape"):
            from_official_checkpoint(state, arch="vit_tiny", hidden_dim=32, num_layers=2,
                                     num_heads=2, mlp_dim=64)
        del state["module.bottleneck.weight"]
        with pytest.raises(ValueError, match="fine-tuned checkpoint"):
            from_official_checkpoint(state, arch="vit_tiny", hidden_dim=32, num_layers=2,
                                     num_heads=2, mlp_dim=64)


MIRRORED_STEP = """
import tensorflow as tf
tf.config.set_logical_device_configuration(
    tf.config.list_physical_devices("CPU")[0], [tf.config.LogicalDeviceConfiguration()] * 2)
import keras, numpy as np
from keras_pass import PASSBackbone
from keras_pass.reid import ReIDModel
from tests.helpers import TINY_BACKBONE

def one_step(images, labels, strategy=None):
    keras.utils.set_random_seed(0)
    with (strategy.scope() if strategy else tf.distribute.get_strategy().scope()):
        model = ReIDModel(PASSBackbone(**TINY_BACKBONE), 2)
        model.compile(optimizer=keras.optimizers.SGD(0.5), jit_compile=False)
    model.fit(images, labels, batch_size=len(images), epochs=1, shuffle=False, verbose=0)
    return model.classifier.kernel.numpy(), model.backbone.weights[0].numpy()

rng = np.random.default_rng(0)
images = rng.normal(size=(8, 64, 32, 3)).astype("float32")
labels = np.repeat([0, 1], 4)
single = one_step(images, labels)
# each replica sees the same 8 images: the averaged update must equal one device's
mirrored = one_step(np.concatenate([images, images]), np.concatenate([labels, labels]),
                    tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))
for a, b in zip(single, mirrored):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-6)
print("OK")
"""


@pytest.mark.slow
def test_tf_mirrored_update_equals_single_device():
    if keras.config.backend() != "tensorflow":
        pytest.skip("tf.distribute")
    from tests.helpers import run_python

    assert "OK" in run_python(MIRRORED_STEP, "tensorflow")
