"""The one model loader: preset / .keras / .pth, overrides only when given."""

import numpy as np
import pytest

from keras_pass import PASSBackbone
from keras_pass.recipes.model_source import load_backbone, load_model, source_kind
from keras_pass.recipes.pretrain import PretrainConfig, build_backbone
from tests.helpers import TINY_BACKBONE, to_numpy


@pytest.fixture(scope="module")
def patch8_preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("presets") / "p8"
    PASSBackbone(**{**TINY_BACKBONE, "patch_size": 8, "stride": 8}).save_to_preset(str(path))
    return str(path)


def test_a_patch8_preset_keeps_its_stride_unless_given(patch8_preset, tmp_path):
    backbone = load_backbone(patch8_preset)
    assert (backbone.patch_size, backbone.stride, backbone.image_shape) == (8, 8, (64, 32, 3))
    # The pre-training recipe with its defaults: the preset's stride, not 16.
    student = build_backbone(PretrainConfig(data=str(tmp_path), output_dir=str(tmp_path), preset=patch8_preset))
    assert student.stride == 8 and student.pos_embed_interpolation == "always"
    resized = load_backbone(patch8_preset, image_size=(96, 32), stride=4)
    assert resized.stride == 4 and resized.image_shape == (96, 32, 3)


def test_keras_files_give_their_backbone_with_the_same_weights(patch8_preset, tmp_path):
    backbone = load_backbone(patch8_preset)
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    images = np.random.default_rng(0).normal(size=(2, 64, 32, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(load_backbone(path).reid_features(images)),
                               to_numpy(backbone.reid_features(images)), atol=1e-6)
    assert isinstance(load_model(path), PASSBackbone)
    assert load_backbone(path, image_size=(96, 32)).image_shape == (96, 32, 3)


@pytest.mark.parametrize("source, message", [
    ("missing.keras", "Expected an existing keras file"),
    ("missing.pth", "Expected an existing pth file"),
    ("", "Expected a preset name or folder"),
])
def test_clear_errors_name_what_was_given(source, message):
    with pytest.raises(ValueError, match=message):
        source_kind(source)


def test_weights_only_with_a_keras_model(patch8_preset):
    with pytest.raises(ValueError, match="weights"):
        load_model(patch8_preset, weights="best.weights.h5")
