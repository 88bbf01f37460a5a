"""DINO/PASS multi-crop augmentations, written with stateless tf ops.

Everything runs inside `tf.data` whatever `KERAS_BACKEND` is, and every random
draw comes from an explicit seed (`tf.random.stateless_*`), so the same seed
gives the same crops. Ops work on a stack of V views of one image at once,
each view with its own random parameters, so one image costs a few batched ops
rather than a Python loop over views.

The official pipeline (torchvision on PIL images, `DataAugmentationDINO`) is
matched in its semantics: random resized crop (torchvision's sampling rule,
PIL's antialiased bicubic resampling), flip, colour jitter in random order,
grayscale, Gaussian blur, solarization, ImageNet normalisation. Deviations:
images stay float32 in [0, 1] between ops instead of being rounded to uint8
after each; the blur is an exact Gaussian of std `sigma` (PIL approximates it
with three box blurs); solarization inverts values >= 128/255, PIL's
threshold 128 on 0..255.
"""

import math

import tensorflow as tf

from keras_pass.data.images import IMAGENET_MEAN, IMAGENET_STD

SOLARIZE_THRESHOLD = 128.0 / 255.0
LUMA_WEIGHTS = (0.299, 0.587, 0.114)  # PIL's "L" conversion, as torchvision
PIL_BICUBIC_A = -0.5

_BASE_VIEW = dict(
    flip_probability=0.5,
    color_jitter_probability=0.8,
    brightness=0.4,
    contrast=0.4,
    saturation=0.2,
    hue=0.1,
    grayscale_probability=0.2,
    blur_probability=0.5,
    blur_sigma=(0.1, 2.0),
    solarize_probability=0.0,
)
VIEW_KEYS = tuple(_BASE_VIEW)
VIEW_NAMES = ("global_1", "global_2", "local")


def dino_view_augmentations(blur_scale=1.0):
    """The per-view settings of DINO/PASS, a dict of plain dicts keyed by
    "global_1", "global_2" and "local" (blur p = 1.0 / 0.1 / 0.5,
    solarization p = 0.2 on global 2 only). `blur_scale` multiplies the blur
    sigma range (0.1, 2.0) px, e.g. 0.25 for 64x32 images instead of 256x128."""
    base = {**_BASE_VIEW, "blur_sigma": tuple(blur_scale * s for s in _BASE_VIEW["blur_sigma"])}
    return {
        "global_1": {**base, "blur_probability": 1.0},
        "global_2": {**base, "blur_probability": 0.1, "solarize_probability": 0.2},
        "local": dict(base),
    }


def no_view_augmentations():
    """Settings that turn off flip and every photometric op: views are only
    cropped, resized and normalised."""
    off = {
        **_BASE_VIEW,
        "flip_probability": 0.0,
        "color_jitter_probability": 0.0,
        "grayscale_probability": 0.0,
        "blur_probability": 0.0,
    }
    return {name: dict(off) for name in VIEW_NAMES}


def resolve_view_augmentations(view_augmentations):
    """None -> DINO settings; "none" -> no augmentation; a dict -> its
    entries override the DINO settings per view."""
    if view_augmentations is None:
        return dino_view_augmentations()
    if isinstance(view_augmentations, str) and view_augmentations == "none":
        return no_view_augmentations()
    if not isinstance(view_augmentations, dict) or set(view_augmentations) - set(VIEW_NAMES):
        raise ValueError(
            f"Expected None, 'none' or a dict with keys among {VIEW_NAMES}. "
            f"Received: view_augmentations={view_augmentations!r}"
        )
    resolved = dino_view_augmentations()
    for name, overrides in view_augmentations.items():
        unknown = set(overrides) - set(VIEW_KEYS)
        if unknown:
            raise ValueError(
                f"Expected view settings with keys among {VIEW_KEYS}. "
                f"Received: view_augmentations[{name!r}] with {sorted(unknown)}"
            )
        resolved[name].update(overrides)
    return resolved


# ---------------------------------------------------------------- geometry --


def sample_crop_boxes(seed, height, width, scale, ratio, num_attempts=10):
    """torchvision's `RandomResizedCrop.get_params` for V views at once.

    `height`, `width`: (V,) sizes of the area each view is cut from. Each
    attempt draws an area fraction uniformly in `scale` and an aspect ratio
    (w / h) log-uniformly in `ratio`; the first attempt that fits gives the
    box, at a uniform integer offset. With no fit after `num_attempts`, the
    box is the central crop clamped to `ratio`. Returns int32 (V, 4) boxes
    [top, left, box_height, box_width] relative to that area.
    """
    height = tf.cast(height, tf.float64)
    width = tf.cast(width, tf.float64)
    draws = tf.random.stateless_uniform(
        [tf.shape(height)[0], num_attempts, 4], seed, dtype=tf.float64
    )
    area = (height * width)[:, None]
    target_area = area * (scale[0] + (scale[1] - scale[0]) * draws[..., 0])
    log_low, log_high = math.log(ratio[0]), math.log(ratio[1])
    aspect = tf.exp(log_low + (log_high - log_low) * draws[..., 1])
    box_w = tf.round(tf.sqrt(target_area * aspect))  # round half to even, as Python
    box_h = tf.round(tf.sqrt(target_area / aspect))
    fits = (box_w > 0) & (box_w <= width[:, None]) & (box_h > 0) & (box_h <= height[:, None])
    first = tf.reduce_min(tf.where(fits, tf.range(num_attempts), num_attempts), axis=1)
    found = first < num_attempts
    pick = lambda x: tf.gather(x, tf.minimum(first, num_attempts - 1), batch_dims=1)
    box_h, box_w = pick(box_h), pick(box_w)
    top = tf.floor(pick(draws[..., 2]) * (height - box_h + 1))
    left = tf.floor(pick(draws[..., 3]) * (width - box_w + 1))

    in_ratio = width / height
    fallback_w = tf.where(in_ratio > ratio[1], tf.round(height * ratio[1]), width)
    fallback_h = tf.where(in_ratio < ratio[0], tf.round(width / ratio[0]), height)
    boxes = tf.where(
        found[:, None],
        tf.stack([top, left, box_h, box_w], axis=1),
        tf.stack(
            [
                tf.floor((height - fallback_h) / 2),
                tf.floor((width - fallback_w) / 2),
                fallback_h,
                fallback_w,
            ],
            axis=1,
        ),
    )
    return tf.cast(boxes, tf.int32)


def bicubic_filter(x, a=PIL_BICUBIC_A):
    x = tf.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = (((x - 5.0) * x + 8.0) * x - 4.0) * a
    return tf.where(x < 1.0, near, tf.where(x < 2.0, far, tf.zeros_like(x)))


def resample_matrix(start, length, in_size, out_size):
    """(V, out_size, in_size) matrices resizing pixels [start, start + length)
    of an axis of `in_size` pixels to `out_size`, as PIL's antialiased bicubic
    resize of the crop: the filter widens by the downscale factor and is
    renormalised over the pixels inside the crop."""
    start = tf.cast(start, tf.float32)[:, None, None]
    length = tf.cast(length, tf.float32)[:, None, None]
    scale = length / out_size
    filter_scale = tf.maximum(scale, 1.0)
    centers = start + (tf.range(out_size, dtype=tf.float32)[None, :, None] + 0.5) * scale
    pixels = tf.range(tf.cast(in_size, tf.float32), dtype=tf.float32)[None, None, :]
    weights = bicubic_filter((pixels + 0.5 - centers) / filter_scale)
    inside = (pixels >= start) & (pixels < start + length)
    weights = tf.where(inside, weights, 0.0)
    return weights / tf.reduce_sum(weights, axis=-1, keepdims=True)


def resized_crops(image, boxes, size, flip):
    """Crops `boxes` (V, 4) [top, left, h, w] out of `image` (H, W, 3), each
    resized to `size` with PIL's bicubic filter and mirrored where `flip`
    (V,) is True; values clipped to [0, 1]. Two matrix products per axis
    for all views, and the flip is folded into the column matrix for free."""
    rows = resample_matrix(boxes[:, 0], boxes[:, 2], tf.shape(image)[0], size[0])
    cols = resample_matrix(boxes[:, 1], boxes[:, 3], tf.shape(image)[1], size[1])
    cols = tf.where(flip[:, None, None], tf.reverse(cols, axis=[1]), cols)
    resized = tf.einsum("voh,hwc->vowc", rows, image)
    resized = tf.einsum("vpw,vowc->vopc", cols, resized)
    return tf.clip_by_value(resized, 0.0, 1.0)


# -------------------------------------------------------------- photometry --


def _per_view(values, dtype=None):
    values = tf.convert_to_tensor(values)
    if dtype is not None:
        values = tf.cast(values, dtype)
    return tf.reshape(values, [-1, 1, 1, 1])


def grayscale(images):
    """Luma (V, H, W, 1) of RGB `images` (V, H, W, 3)."""
    # einsum is ~3x faster than reduce_sum over the size-3 channel axis on CPU.
    return tf.einsum("vhwc,c->vhw", images, tf.constant(LUMA_WEIGHTS))[..., None]


def adjust_brightness(images, factor):
    return tf.clip_by_value(images * _per_view(factor, images.dtype), 0.0, 1.0)


def adjust_contrast(images, factor):
    mean = tf.reduce_mean(grayscale(images), axis=[1, 2, 3], keepdims=True)
    factor = _per_view(factor, images.dtype)
    return tf.clip_by_value(factor * images + (1.0 - factor) * mean, 0.0, 1.0)


def adjust_saturation(images, factor):
    factor = _per_view(factor, images.dtype)
    return tf.clip_by_value(factor * images + (1.0 - factor) * grayscale(images), 0.0, 1.0)


def adjust_hue(images, delta):
    hsv = tf.image.rgb_to_hsv(images)
    hue = tf.math.floormod(hsv[..., :1] + _per_view(delta, images.dtype), 1.0)
    return tf.image.hsv_to_rgb(tf.concat([hue, hsv[..., 1:]], axis=-1))


_JITTER_OPS = (adjust_brightness, adjust_contrast, adjust_saturation, adjust_hue)
_JITTER_IDENTITY = (1.0, 1.0, 1.0, 0.0)


def color_jitter(images, factors, order, apply):
    """torchvision's ColorJitter per view: `factors` (V, 4) are the brightness,
    contrast, saturation factors and the hue shift, applied in the per-view
    `order` (V, 4, a permutation of 0..3) where `apply` (V,) is True.

    Stage k applies, in every view, the op that view ranks k-th; the other ops
    get their identity parameter, so views with different orders share ops.
    The costly hue op runs only on the views that need it at that stage.
    """
    for stage in range(4):
        for op_index, (op, identity) in enumerate(zip(_JITTER_OPS, _JITTER_IDENTITY)):
            active = apply & tf.equal(order[:, stage], op_index)
            if op is adjust_hue:
                images = _on_views(op, images, factors[:, op_index], active)
            else:
                images = op(images, tf.where(active, factors[:, op_index], identity))
    return images


def _on_views(op, images, values, active):
    """`op(images[v], values[v])` for the views where `active`, others kept."""
    indices = tf.where(active)
    updated = op(tf.gather_nd(images, indices), tf.gather_nd(values, indices))
    return tf.tensor_scatter_nd_update(images, indices, updated)


def random_grayscale(images, apply):
    gray = tf.broadcast_to(grayscale(images), tf.shape(images))
    return tf.where(_per_view(apply), gray, images)


def gaussian_kernels(sigma, apply, radius):
    """(V, 2 * radius + 1) normalised Gaussian taps; a unit impulse (identity)
    where `apply` is False."""
    taps = tf.range(-radius, radius + 1, dtype=tf.float32)
    kernels = tf.exp(-0.5 * tf.square(taps / sigma[:, None]))
    kernels /= tf.reduce_sum(kernels, axis=1, keepdims=True)
    impulse = tf.cast(tf.equal(taps, 0.0), tf.float32)
    return tf.where(apply[:, None], kernels, impulse)


def gaussian_blur(images, sigma, apply, max_sigma=2.0):
    """Separable Gaussian blur with a std per view, edges extended (as PIL).
    Views are stacked as channels of one depthwise convolution."""
    radius = max(1, math.ceil(3.0 * max_sigma))
    kernels = tf.repeat(gaussian_kernels(sigma, apply, radius), 3, axis=0)  # (V*3, K)
    shape = tf.shape(images)
    stacked = tf.transpose(images, [1, 2, 0, 3])
    stacked = tf.reshape(stacked, [1, shape[1], shape[2], shape[0] * 3])
    for axis in (1, 2):
        indices = tf.clip_by_value(
            tf.range(-radius, shape[axis] + radius), 0, shape[axis] - 1
        )
        padded = tf.gather(stacked, indices, axis=axis)
        taps = tf.transpose(kernels)  # (K, V*3)
        taps = taps[:, None, :, None] if axis == 1 else taps[None, :, :, None]
        stacked = tf.nn.depthwise_conv2d(padded, taps, [1, 1, 1, 1], "VALID")
    stacked = tf.reshape(stacked, [shape[1], shape[2], shape[0], 3])
    return tf.transpose(stacked, [2, 0, 1, 3])


def solarize(images, apply, threshold=SOLARIZE_THRESHOLD):
    invert = _per_view(apply) & (images >= threshold)
    return tf.where(invert, 1.0 - images, images)


def normalize(images, mean=IMAGENET_MEAN, std=IMAGENET_STD):
    return (images - tf.constant(mean)) / tf.constant(std)


# ------------------------------------------------------------------ views --


def _column(configs, key):
    return tf.constant([config[key] for config in configs], tf.float32)


def sample_view_parameters(seed, configs):
    """Every random choice of the photometric pipeline for V views, one config
    dict per view (see `dino_view_augmentations`). Returns a dict of tensors
    with a leading V axis: flip, color_jitter, grayscale, blur, solarize
    (bool), jitter_factors (V, 4), jitter_order (V, 4), blur_sigma (V,)."""
    num_views = len(configs)
    seeds = tf.random.experimental.stateless_split(seed, 4)
    coins = tf.random.stateless_uniform([num_views, 5], seeds[0])
    # RandomApply/RandomFlip/RandomGrayscale/Solarization draw `u < p`; DINO's
    # GaussianBlur draws `u <= p` (so p=1.0 always blurs; same here since u < 1).
    decide = lambda column, key: coins[:, column] < _column(configs, key)

    strength = tf.stack(
        [_column(configs, key) for key in ("brightness", "contrast", "saturation", "hue")],
        axis=1,
    )
    low = tf.concat([tf.maximum(0.0, 1.0 - strength[:, :3]), -strength[:, 3:]], axis=1)
    high = tf.concat([1.0 + strength[:, :3], strength[:, 3:]], axis=1)
    jitter_draws = tf.random.stateless_uniform([num_views, 4], seeds[1])
    order_draws = tf.random.stateless_uniform([num_views, 4], seeds[2])
    sigma_low = tf.constant([config["blur_sigma"][0] for config in configs], tf.float32)
    sigma_high = tf.constant([config["blur_sigma"][1] for config in configs], tf.float32)
    sigma_draws = tf.random.stateless_uniform([num_views], seeds[3])
    return {
        "flip": decide(0, "flip_probability"),
        "color_jitter": decide(1, "color_jitter_probability"),
        "jitter_factors": low + (high - low) * jitter_draws,
        "jitter_order": tf.argsort(order_draws, axis=1),
        "grayscale": decide(2, "grayscale_probability"),
        "blur": decide(3, "blur_probability"),
        "blur_sigma": sigma_low + (sigma_high - sigma_low) * sigma_draws,
        "solarize": decide(4, "solarize_probability"),
    }


def render_views(image, boxes, size, params, max_sigma=2.0):
    """Crops, resizes and augments V views of `image` (H, W, 3, [0, 1]) in
    DINO's order (crop, flip, jitter, grayscale, blur, solarize, normalise).
    Returns float32 (V, size[0], size[1], 3), ImageNet-normalised."""
    views = resized_crops(image, boxes, size, params["flip"])
    views = color_jitter(
        views, params["jitter_factors"], params["jitter_order"], params["color_jitter"]
    )
    views = random_grayscale(views, params["grayscale"])
    views = tf.cond(
        tf.reduce_any(params["blur"]),
        lambda: gaussian_blur(views, params["blur_sigma"], params["blur"], max_sigma),
        lambda: views,
    )
    views = solarize(views, params["solarize"])
    return normalize(views)
