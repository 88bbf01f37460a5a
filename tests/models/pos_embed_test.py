import numpy as np
import pytest

from keras_pass.models.pos_embed import (
    bilinear_matrix,
    cubic_matrix,
    grid_size,
    resample_pos_embed,
)
from tests.helpers import to_numpy

torch = pytest.importorskip("torch")
F = torch.nn.functional


def _torch_resample(pos, src, dst, method):
    grid = torch.from_numpy(pos).reshape(1, *src, -1).permute(0, 3, 1, 2)
    if method == "bilinear":
        out = F.interpolate(grid, size=dst, mode="bilinear", align_corners=False)
    else:
        scale = tuple((d + 0.1) / s for d, s in zip(dst, src))
        out = F.interpolate(grid, scale_factor=scale, mode="bicubic", align_corners=False)
    return out.permute(0, 2, 3, 1).reshape(-1, pos.shape[-1]).numpy()


@pytest.mark.parametrize(
    "src,dst",
    [((16, 8), (16, 8)), ((16, 8), (8, 4)), ((16, 8), (24, 8)), ((4, 2), (2, 1)), ((16, 8), (21, 10))],
)
@pytest.mark.parametrize("method", ["dino_bicubic", "bilinear"])
def test_resample_matches_pytorch_interpolate(src, dst, method):
    pos = np.random.default_rng(0).normal(size=(src[0] * src[1], 5)).astype("float32")
    ours = to_numpy(resample_pos_embed(pos, src, dst, method))
    np.testing.assert_allclose(ours, _torch_resample(pos, src, dst, method), atol=1e-5)


def test_dino_resampling_is_not_identity_at_native_size():
    # The official pre-training quirk: scale 16.1/16 still moves the grid.
    pos = np.random.default_rng(1).normal(size=(128, 4)).astype("float32")
    moved = to_numpy(resample_pos_embed(pos, (16, 8), (16, 8)))
    assert np.abs(moved - pos).max() > 0.1


def test_interpolation_rows_sum_to_one():
    np.testing.assert_allclose(cubic_matrix(16, 8, 8.1 / 16).sum(1), 1.0, atol=1e-12)
    np.testing.assert_allclose(bilinear_matrix(16, 24).sum(1), 1.0, atol=1e-12)


def test_bad_arguments():
    with pytest.raises(ValueError, match="method"):
        resample_pos_embed(np.zeros((4, 2)), (2, 2), (1, 1), method="nearest")
    with pytest.raises(ValueError, match="pos_embed.shape"):
        resample_pos_embed(np.zeros((5, 2)), (2, 2), (1, 1))


def test_grid_size_of_overlapping_patches():
    assert grid_size(256, 16, 16) == 16
    assert grid_size(256, 16, 12) == 21
