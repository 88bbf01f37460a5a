"""Progress: a bar (keras.utils.Progbar) on a terminal, plain lines
otherwise, so that logs of redirected runs hold no ANSI bars."""

import sys
import time

import keras

LINES = 10  # plain lines per loop when stdout is not a terminal


def on_terminal():
    return sys.stdout.isatty()


def fit_verbosity(verbose):
    """Keras' `verbose` for `fit`/`predict`: a bar (1, "auto") only on a
    terminal, one line per epoch (2) otherwise."""
    if verbose in (1, "auto") and not isinstance(verbose, bool) and not on_terminal():
        return 2
    return verbose


class PlainProgress:
    """`Progbar`'s `add` as about `LINES` lines "unit: done/total (s)"."""

    def __init__(self, total, unit_name="steps"):
        self.total, self.unit, self.done, self.start = total, unit_name, 0, time.monotonic()
        self.every = max(1, -(-total // LINES))
        self.next_line = self.every

    def add(self, count):
        self.done += count
        if self.done >= self.next_line or self.done >= self.total:
            print(f"{self.unit}: {self.done}/{self.total} ({time.monotonic() - self.start:.0f} s)", flush=True)
            self.next_line = (self.done // self.every + 1) * self.every


def progress_bar(total, unit="steps"):
    """An object with `add(count)`: a Progbar on a terminal, `PlainProgress` otherwise."""
    if on_terminal():
        return keras.utils.Progbar(total, unit_name=unit)
    return PlainProgress(total, unit)


def progress(iterable, verbose=True, unit="steps"):
    """Yields from `iterable`, showing its progress when `verbose`."""
    if not verbose:
        yield from iterable
        return
    items = list(iterable)
    bar = progress_bar(len(items), unit)
    for item in items:
        yield item
        bar.add(1)
