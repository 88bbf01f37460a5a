import json
import os

import keras_hub
import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.data.images import IMAGENET_MEAN, IMAGENET_STD
from keras_pass.models.image_converter import (
    IMAGE_CONVERTER_FILE,
    PASSImageConverter,
    image_converter_of,
)
from tests.helpers import TINY_BACKBONE, to_numpy


class TestPASSImageConverter:
    def setup_method(self):
        self.init_kwargs = {"image_size": (64, 32), "mean": (0.4, 0.5, 0.6), "std": (0.2, 0.25, 0.3)}
        self.images = np.random.default_rng(0).integers(0, 256, size=(2, 64, 32, 3)).astype("uint8")

    def test_normalises_like_the_release(self):
        converter = PASSImageConverter(**self.init_kwargs)
        expected = (self.images / 255.0 - np.array(self.init_kwargs["mean"])) / np.array(self.init_kwargs["std"])
        np.testing.assert_allclose(to_numpy(converter(self.images)), expected, atol=1e-5)
        np.testing.assert_allclose(converter.normalize(self.images / 255.0), expected, atol=1e-5)

    def test_resizes_without_cropping(self):
        converter = PASSImageConverter(**self.init_kwargs)
        wide = np.zeros((1, 50, 100, 3), "uint8")
        wide[:, :, :50] = 255  # left half white: a crop to 2:1 would lose it
        out = to_numpy(converter(wide))
        assert out.shape == (1, 64, 32, 3)
        assert out[0, :, :12, 0].min() > out[0, :, 20:, 0].max()

    def test_config_round_trip(self):
        converter = PASSImageConverter(**self.init_kwargs)
        restored = PASSImageConverter.from_config(json.loads(json.dumps(converter.get_config())))
        assert restored.mean == converter.mean and restored.std == converter.std
        assert restored.image_size == (64, 32)
        np.testing.assert_allclose(to_numpy(restored(self.images)), to_numpy(converter(self.images)))

    @pytest.mark.parametrize("kwargs", [{"std": (0.5, 0.0, 0.5)}, {"mean": (0.5, 0.5)}])
    def test_bad_statistics(self, kwargs):
        with pytest.raises(ValueError, match="Expected 3 channel means"):
            PASSImageConverter(**kwargs)

    def test_unknown_normalization(self):
        with pytest.raises(ValueError, match="Received: normalization=none"):
            PASSImageConverter.for_backbone(PASSBackbone(**TINY_BACKBONE), "none")


def test_preset_keeps_its_preprocessing(tmp_path):
    backbone = PASSBackbone(**TINY_BACKBONE)
    preset_dir = str(tmp_path / "preset")
    backbone.save_to_preset(preset_dir, image_converter=PASSImageConverter.for_backbone(backbone, "half"))
    assert os.path.isfile(os.path.join(preset_dir, IMAGE_CONVERTER_FILE))
    restored = PASSBackbone.from_preset(preset_dir)
    assert restored.image_converter.mean == (0.5, 0.5, 0.5)
    assert image_converter_of(restored).std == (0.5, 0.5, 0.5)
    converter = keras_hub.layers.ImageConverter.from_preset(preset_dir)
    assert isinstance(converter, PASSImageConverter) and converter.image_size == (64, 32)
    # A grid-changing load sizes the converter to the new image size; saving
    # again keeps the statistics.
    taller = PASSBackbone.from_preset(preset_dir, image_shape=(96, 32, 3))
    assert taller.image_converter.image_size == (96, 32)
    taller.save_to_preset(str(tmp_path / "taller"))
    assert PASSBackbone.from_preset(str(tmp_path / "taller")).image_converter.mean == (0.5, 0.5, 0.5)


def test_backbone_without_converter_assumes_imagenet():
    converter = image_converter_of(PASSBackbone(**TINY_BACKBONE))
    assert converter.mean == IMAGENET_MEAN and converter.std == IMAGENET_STD
    assert converter.image_size == (64, 32)
