"""argparse for the `keras-pass` commands: a usage error is a ValueError
(one line, exit 2 from `keras_pass.cli.main`), numbers are range-checked
where they are parsed, output paths are checked before anything is written."""

import argparse
import os

from keras_pass.recipes.config import check_output_folder


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` raising ValueError instead of printing the
    usage and exiting (`--help` still prints and exits 0)."""

    def error(self, message):
        raise ValueError(f"{message} (see --help)")


def _number(kind, minimum, strict):
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"Expected {kind.__name__}. Received: {text!r}") from None
        if value != value or (value <= minimum if strict else value < minimum):
            raise argparse.ArgumentTypeError(
                f"Expected {kind.__name__} {'>' if strict else '>='} {minimum}. Received: {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


positive_int = _number(int, 0, strict=True)
non_negative_int = _number(int, 0, strict=False)
positive_float = _number(float, 0.0, strict=True)
non_negative_float = _number(float, 0.0, strict=False)


def check_output_path(path, name):
    """A folder to write (`keras_pass.recipes.config.check_output_folder`)."""
    check_output_folder(name, path)
    return path


def check_output_file(path, name):
    """A file to write: not a folder, in a folder that exists or can be made."""
    if os.path.isdir(path):
        raise ValueError(f"Expected {name} a file path. Received: {name}={path} (a folder)")
    check_output_path(os.path.dirname(os.path.abspath(path)), name)
    return path
