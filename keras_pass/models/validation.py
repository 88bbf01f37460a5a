"""Up-front argument checks with errors worded "Expected X. Received: ..."."""

import numpy as np


def validate_backbone_args(image_shape, patch_size, stride, hidden_dim, num_heads, num_parts):
    if len(image_shape) != 3:
        raise ValueError(
            "Expected `image_shape` of length 3 (height, width, channels). "
            f"Received: image_shape={image_shape}"
        )
    for index, size in zip((-3, -2), image_shape[:2]):
        if size is None:
            raise ValueError(
                "Image shape must have defined height and width: they fix the "
                f"position-embedding grid. Found `None` at index {index}. "
                f"Received: image_shape={image_shape}"
            )
    validate_image_size(image_shape[:2], patch_size, stride, "image_shape")
    if hidden_dim % num_heads:
        raise ValueError(
            "Expected `hidden_dim` divisible by `num_heads`. "
            f"Received: hidden_dim={hidden_dim}, num_heads={num_heads}"
        )
    if not isinstance(num_parts, int) or num_parts < 1:
        raise ValueError(f"Expected `num_parts` >= 1. Received: num_parts={num_parts}")


def validate_image_size(size, patch_size, stride, name):
    if stride < 1 or stride > patch_size:
        raise ValueError(
            f"Expected 1 <= stride <= patch_size={patch_size}. Received: stride={stride}"
        )
    for value in size:
        if value is not None and (value < patch_size or (value - patch_size) % stride):
            raise ValueError(
                f"Expected height and width >= {patch_size} with (size - "
                f"{patch_size}) divisible by stride={stride}, e.g. multiples "
                f"of {stride} when stride == patch_size. Received: {name}="
                f"{tuple(size)}"
            )


def validate_part_index(part_index, num_parts, batch_size=None):
    if part_index is None or (hasattr(part_index, "dtype") and not isinstance(part_index, np.ndarray)):
        return  # backend tensors may be traced: their values are the caller's
    indices = np.asarray(part_index)
    valid = indices.dtype.kind in "iu" and indices.ndim <= 1
    valid = valid and np.all((indices >= 0) & (indices < num_parts))
    if indices.ndim == 1 and batch_size is not None:
        valid = valid and indices.shape[0] == batch_size
    if not valid or isinstance(part_index, bool):
        raise ValueError(
            f"Expected `part_index` None, an int in [0, {num_parts - 1}] or "
            "one such int per sample. Received: part_index="
            f"{part_index if indices.size < 20 else indices.shape}"
        )


def validate_images(images, backbone, part_index=None):
    shape = tuple(images.shape)
    channels = backbone.image_shape[-1]
    if len(shape) != 4 or shape[-1] != channels:
        raise ValueError(
            f"Expected NHWC images of shape (batch, height, width, {channels}). "
            f"Received: images.shape={shape}"
        )
    validate_image_size(shape[1:3], backbone.patch_size, backbone.stride, "images.shape[1:3]")
    validate_part_index(part_index, backbone.num_parts, shape[0])

