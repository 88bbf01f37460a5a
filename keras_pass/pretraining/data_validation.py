"""Up-front checks of `make_pass_dataset` arguments, worded
"Expected X. Received: name=value"."""

import math

import numpy as np

from keras_pass.models.regions import default_region_bounds
from keras_pass.pretraining import augment


def describe_source(files_or_dir, num_files):
    if isinstance(files_or_dir, (list, tuple)):
        return f"<list of {num_files} paths>"
    return repr(str(files_or_dir))


def check_int(name, value, minimum):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"Expected `{name}` an int >= {minimum}. Received: {name}={value!r}")


def _check_pair(name, value, low, high, strict_low=True):
    try:
        first, second = (float(v) for v in value)
    except (TypeError, ValueError):
        first = second = None
    valid = (
        first is not None
        and (first > low if strict_low else first >= low)
        and second <= high
        and first <= second
        and all(math.isfinite(v) for v in (first, second))
    )
    if not valid:
        raise ValueError(
            f"Expected `{name}` a pair (low, high) with {low} {'<' if strict_low else '<='} "
            f"low <= high <= {high}. Received: {name}={value!r}"
        )
    return first, second


def _check_number(name, value, low, high):
    valid = isinstance(value, (int, float, np.number)) and not isinstance(value, bool)
    if not valid or not low <= value <= high:
        raise ValueError(f"Expected `{name}` a number in [{low}, {high}]. Received: {name}={value!r}")


def _check_size(name, value):
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v > 0 for v in value)
    ):
        raise ValueError(
            f"Expected `{name}` a pair of positive ints (height, width). Received: {name}={value!r}"
        )
    return tuple(int(v) for v in value)


def _check_region_bounds(region_bounds, num_parts):
    if region_bounds is None:
        return default_region_bounds(num_parts)
    message = (
        f"Expected `region_bounds` {num_parts} pairs (low, high) of height fractions "
        f"with 0 <= low < high <= 1 (one per part, num_parts={num_parts}). "
        f"Received: region_bounds={region_bounds!r}"
    )
    try:
        bounds = tuple((float(low), float(high)) for low, high in region_bounds)
    except (TypeError, ValueError):
        raise ValueError(message) from None
    if len(bounds) != num_parts or not all(0.0 <= low < high <= 1.0 for low, high in bounds):
        raise ValueError(message)
    return bounds


def _check_view_augmentations(view_augmentations):
    views = augment.resolve_view_augmentations(view_augmentations)
    for name, config in views.items():
        for key in augment.VIEW_KEYS:
            label = f"view_augmentations[{name!r}][{key!r}]"
            if key == "blur_sigma":
                _check_pair(label, config[key], 0.0, math.inf)
            else:
                # torchvision bounds: probabilities <= 1, hue shift <= 0.5.
                high = {"hue": 0.5}.get(key, 1.0 if key.endswith("probability") else math.inf)
                _check_number(label, config[key], 0.0, high)
    return views


def validated_crop_config(
    global_size, local_size, global_scale, local_scale, ratio, num_parts,
    local_crops_per_part, region_bounds, view_augmentations,
):
    check_int("num_parts", num_parts, minimum=1)
    check_int("local_crops_per_part", local_crops_per_part, minimum=0)
    return dict(
        global_size=_check_size("global_size", global_size),
        local_size=_check_size("local_size", local_size),
        global_scale=_check_pair("global_scale", global_scale, 0.0, 1.0),
        local_scale=_check_pair("local_scale", local_scale, 0.0, 1.0),
        ratio=_check_pair("ratio", ratio, 0.0, math.inf),
        region_bounds=_check_region_bounds(region_bounds, num_parts),
        local_crops_per_part=int(local_crops_per_part),
        view_augmentations=_check_view_augmentations(view_augmentations),
    )
