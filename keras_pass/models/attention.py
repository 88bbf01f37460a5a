"""Where the `[CLS]` and `[PART]` tokens look: the paper's Figure 3, measured.

`part_attention_maps` gives, per image, the last block's attention (averaged
over heads) from CLS and each PART token to the patch grid, renormalised over
patches. `region_attention_share` is the share of PART_i's patch attention
that falls on patches whose centre row lies in region i; chance is the share
of patch rows inside the region (0.5 for the default half-height bands).
"""

import numpy as np
from keras import ops

from keras_pass.models.image_converter import PASSImageConverter, image_converter_of
from keras_pass.models.pos_embed import grid_size
from keras_pass.models.regions import default_region_bounds


def part_attention_maps(backbone, images):
    """(B, 1 + L, grid_h, grid_w) float32, each map summing to 1."""
    height, width = images.shape[1:3]
    grid = [grid_size(s, backbone.patch_size, backbone.stride) for s in (height, width)]
    attention = ops.convert_to_numpy(backbone.get_last_selfattention(images))  # (B, H, T, T)
    specials = 1 + backbone.num_parts
    maps = attention.mean(axis=1)[:, :specials, specials:]
    maps = maps / maps.sum(axis=-1, keepdims=True)
    return maps.reshape(len(maps), specials, *grid).astype(np.float32)


def _rows_in_region(backbone, grid_h, height, bounds):
    centres = (np.arange(grid_h) * backbone.stride + backbone.patch_size / 2) / height
    return (centres >= bounds[0]) & (centres < bounds[1])


def region_attention_share(backbone, maps, height, region_bounds=None):
    """Returns (share, chance): per part, the mean share of its attention
    inside its region, and the fraction of patch rows in that region."""
    region_bounds = region_bounds or default_region_bounds(backbone.num_parts)
    shares, chances = [], []
    for part, bounds in enumerate(region_bounds):
        inside = _rows_in_region(backbone, maps.shape[2], height, bounds)
        shares.append(float(maps[:, 1 + part][:, inside].sum(axis=(1, 2)).mean()))
        chances.append(float(inside.mean()))
    return np.array(shares), np.array(chances)


def attention_report(backbone, images, normalization=None):
    """(maps, shares, chances) for images in [0, 1]; `normalization` is
    "imagenet" or "half" (0.5/0.5), None for the backbone's own preprocessing
    (its preset's statistics)."""
    if normalization is None:
        converter = image_converter_of(backbone)
    else:
        converter = PASSImageConverter.for_backbone(backbone, normalization)
    maps = part_attention_maps(backbone, converter.normalize(images))
    shares, chances = region_attention_share(backbone, maps, images.shape[1])
    return maps, shares, chances
