import numpy as np
import pytest

from keras_pass import PASSBackbone
from keras_pass.models.attention import (
    attention_report,
    default_region_bounds,
    part_attention_maps,
    region_attention_share,
)
from tests.helpers import TINY_BACKBONE, to_numpy


class TestPartAttention:
    def setup_method(self):
        self.backbone = PASSBackbone(**TINY_BACKBONE)  # 64x32 images: a 4x2 patch grid
        self.images = np.random.default_rng(0).normal(size=(3, 64, 32, 3)).astype("float32")

    def test_maps_are_head_averaged_patch_attention(self):
        maps = part_attention_maps(self.backbone, self.images)
        assert maps.shape == (3, 4, 4, 2)
        np.testing.assert_allclose(maps.sum(axis=(2, 3)), 1.0, atol=1e-5)
        attention = to_numpy(self.backbone.get_last_selfattention(self.images)).mean(1)
        part2 = attention[:, 2, 4:] / attention[:, 2, 4:].sum(-1, keepdims=True)
        np.testing.assert_allclose(maps[:, 2].reshape(3, -1), part2, atol=1e-6)

    def test_region_share_of_known_maps(self):
        maps = np.zeros((2, 4, 4, 2), "float32")
        maps[:, 1, 0] = 0.5  # PART1 on patch row 0 (centre at 8/64): inside [0, .5)
        maps[:, 2, 1:3] = 0.25  # PART2 on rows 1-2 (centres 24, 40): inside [.25, .75)
        maps[:, 3, 0] = 0.5  # PART3 on row 0: outside [.5, 1)
        shares, chances = region_attention_share(self.backbone, maps, height=64)
        np.testing.assert_allclose(shares, [1.0, 1.0, 0.0])
        np.testing.assert_allclose(chances, [0.5, 0.5, 0.5])

    def test_default_bounds_are_the_release_bands(self):
        np.testing.assert_allclose(default_region_bounds(3), [(0, 0.5), (0.25, 0.75), (0.5, 1.0)])

    def test_report_normalises_images_in_unit_range(self):
        unit_images = np.random.default_rng(1).random((2, 64, 32, 3)).astype("float32")
        maps, shares, chances = attention_report(self.backbone, unit_images, "half")
        np.testing.assert_allclose(maps, part_attention_maps(self.backbone, 2 * unit_images - 1), atol=1e-6)
        np.testing.assert_allclose(shares, region_attention_share(self.backbone, maps, 64)[0])
        assert chances.shape == (3,)
        with pytest.raises(ValueError, match="normalization"):
            attention_report(self.backbone, unit_images, "none")
