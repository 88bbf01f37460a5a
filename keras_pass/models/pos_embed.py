"""Resampling of the patch-grid position embedding: small pure functions.

Both resamplers are written as two constant interpolation matrices applied
with `einsum`, so they are exact, differentiable, backend-agnostic and cheap
under jit (the matrices depend only on static grid sizes).

- `"dino_bicubic"` reproduces PyTorch `interpolate(mode="bicubic",
  align_corners=False, scale_factor=((h0 + 0.1) / H, (w0 + 0.1) / W))`, the
  DINO trick used by the PASS pre-training model on every call.
- `"bilinear"` reproduces PyTorch `interpolate(size=(h, w), mode="bilinear",
  align_corners=False)`, used by the fine-tuning code once at load time.
"""

import math

import numpy as np
from keras import ops

_CUBIC_A = -0.75  # PyTorch's bicubic coefficient.
METHODS = ("dino_bicubic", "bilinear")


def grid_size(image_size, patch_size, stride):
    """Number of patches along one axis of a (possibly overlapping) conv."""
    return (image_size - patch_size) // stride + 1


def _cubic_weights(t):
    a = _CUBIC_A

    def near(x):  # |x| <= 1
        return ((a + 2) * x - (a + 3)) * x * x + 1

    def far(x):  # 1 < |x| < 2
        return ((a * x - 5 * a) * x + 8 * a) * x - 4 * a

    return np.array([far(t + 1), near(t), near(1 - t), far(2 - t)])


def cubic_matrix(in_size, out_size, scale_factor):
    """(out_size, in_size) matrix of PyTorch bicubic with a given scale."""
    step = 1.0 / scale_factor
    matrix = np.zeros((out_size, in_size))
    for dst in range(out_size):
        src = step * (dst + 0.5) - 0.5  # no clamping in cubic mode
        base = math.floor(src)
        for k, w in enumerate(_cubic_weights(src - base)):
            index = min(max(base - 1 + k, 0), in_size - 1)
            matrix[dst, index] += w
    return matrix


def bilinear_matrix(in_size, out_size):
    """(out_size, in_size) matrix of PyTorch bilinear resizing to a size."""
    step = in_size / out_size
    matrix = np.zeros((out_size, in_size))
    for dst in range(out_size):
        src = max(step * (dst + 0.5) - 0.5, 0.0)
        low = min(int(src), in_size - 1)
        high = low + 1 if low < in_size - 1 else low
        frac = src - low
        matrix[dst, low] += 1.0 - frac
        matrix[dst, high] += frac
    return matrix


def interpolation_matrices(src_grid, dst_grid, method):
    """Row and column matrices taking `src_grid` to `dst_grid`."""
    if method == "dino_bicubic":
        # The +0.1 makes floor(src * scale) land on dst (DINO issue #8).
        return tuple(
            cubic_matrix(s, d, (d + 0.1) / s) for s, d in zip(src_grid, dst_grid)
        )
    if method == "bilinear":
        return tuple(bilinear_matrix(s, d) for s, d in zip(src_grid, dst_grid))
    raise ValueError(
        f"Expected `method` to be one of {METHODS}. Received: method={method}"
    )


def resample_pos_embed(pos_embed, src_grid, dst_grid, method="dino_bicubic"):
    """Resamples a flattened (N, D) patch position grid to another grid.

    Args:
        pos_embed: tensor or array of shape `(src_h * src_w, D)`, row-major.
        src_grid: `(src_h, src_w)` of `pos_embed`.
        dst_grid: `(dst_h, dst_w)` wanted.
        method: `"dino_bicubic"` or `"bilinear"`, see the module docstring.

    Returns:
        A tensor of shape `(dst_h * dst_w, D)` in the dtype of `pos_embed`.
    """
    src_h, src_w = src_grid
    dst_h, dst_w = dst_grid
    if pos_embed.shape[0] != src_h * src_w:
        raise ValueError(
            f"Expected pos_embed with {src_h * src_w} rows for a "
            f"{src_h}x{src_w} grid. Received: pos_embed.shape={pos_embed.shape}"
        )
    rows, cols = interpolation_matrices(src_grid, dst_grid, method)
    dtype = pos_embed.dtype
    grid = ops.reshape(pos_embed, (src_h, src_w, -1))
    grid = ops.einsum("ah,hwd->awd", ops.cast(rows, dtype), grid)
    grid = ops.einsum("bw,awd->abd", ops.cast(cols, dtype), grid)
    return ops.reshape(grid, (dst_h * dst_w, -1))
