"""The body regions of the `[PART]` tokens, as fractions of the image height."""


def default_region_bounds(num_parts):
    """Overlapping bands of 2/(L+1) of the height at a stride of 1/(L+1):
    for L=3, PASS's ((0, .5), (.25, .75), (.5, 1))."""
    step = 1.0 / (num_parts + 1)
    return tuple((i * step, (i + 2) * step) for i in range(num_parts))
