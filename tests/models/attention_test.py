import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.attention import attention_report, part_attention_maps, region_attention_share
from keras_pass.models.regions import default_region_bounds
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


def _region_seeking_backbone(scale=8.0):
    """One block whose weights are set by hand so that PART_i attends only to
    patch rows of region i: patches carry only positions, the position of
    row r is the sum of the one-hot codes e_i of the regions containing it,
    PART_i is e_i, and q = scale * LN(x), k = LN(x) (codes copied into both
    heads' dimensions)."""
    backbone = PASSBackbone(image_shape=(64, 32, 3), patch_size=8, stride=8, hidden_dim=32,
                            num_layers=1, num_heads=2, mlp_dim=64)
    dim, (grid_h, grid_w) = 32, backbone.grid_shape
    code = np.zeros((3, dim), "float32")
    for part in range(3):
        code[part, [part, 16 + part]] = 1.0  # one code dimension per head
    rows = (np.arange(grid_h) * 8 + 4) / 64.0
    row_codes = np.stack([sum(code[i] for i, (lo, hi) in enumerate(default_region_bounds(3))
                              if lo <= r < hi) for r in rows])
    embeddings = backbone.embeddings
    embeddings.pos_embed.assign(np.repeat(row_codes, grid_w, axis=0))
    embeddings.part_tokens.assign(code)
    embeddings.part_pos.assign(np.zeros_like(code))
    for variable in backbone.patch_embedding.weights:
        variable.assign(np.zeros(variable.shape, "float32"))
    qkv = np.zeros((dim, 3 * dim), "float32")
    qkv[:, :dim], qkv[:, dim:2 * dim] = scale * np.eye(dim), np.eye(dim)
    backbone.blocks[0].qkv.kernel.assign(qkv)
    backbone.blocks[0].qkv.bias.assign(np.zeros(3 * dim, "float32"))
    return backbone


def test_positive_control_hand_set_part_attention_scores_near_one():
    """The measure end to end (backbone attention -> maps -> shares): a model
    built to look at its regions scores ~100%, a random one ~chance."""
    images = np.random.default_rng(2).random((4, 64, 32, 3)).astype("float32")
    _, shares, chances = attention_report(_region_seeking_backbone(), images)
    np.testing.assert_allclose(chances, [0.5, 0.5, 0.5])
    assert np.all(shares > 0.95), shares
    _, random_shares, _ = attention_report(
        PASSBackbone(image_shape=(64, 32, 3), patch_size=8, stride=8, hidden_dim=32,
                     num_layers=1, num_heads=2, mlp_dim=64), images)
    assert np.all(np.abs(random_shares - 0.5) < 0.15), random_shares
