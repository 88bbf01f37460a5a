"""Progress bars (keras.utils.Progbar) over iterables of known length."""

import keras


def progress(iterable, verbose=True, unit="steps"):
    """Yields from `iterable`, showing a Progbar when `verbose`."""
    if not verbose:
        yield from iterable
        return
    items = list(iterable)
    bar = keras.utils.Progbar(len(items), unit_name=unit)
    for index, item in enumerate(items, 1):
        yield item
        bar.update(index)
