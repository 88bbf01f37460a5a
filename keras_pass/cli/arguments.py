"""argparse for the `keras-pass` commands: a usage error is a ValueError
(one line, exit 2 from `keras_pass.cli.main`), numbers are range-checked
where they are parsed, output paths are checked before anything is written.

Every command spells its flags as the recipe configs do (`--batch_size`);
`flag_spelling` also accepts `--batch-size`, for argparse and absl alike."""

import argparse
import os
import sys


def flag_spelling(argv):
    """`argv` with each `--flag-name[=value]` spelt `--flag_name[=value]`
    (values untouched; nothing after a bare `--`)."""
    spelt = []
    for index, arg in enumerate(argv):
        if arg == "--":
            return spelt + list(argv[index:])
        if arg.startswith("--"):
            name, equals, value = arg[2:].partition("=")
            arg = f"--{name.replace('-', '_')}{equals}{value}"
        spelt.append(arg)
    return spelt

from keras_pass.recipes.config import check_output_folder


class ArgumentParser(argparse.ArgumentParser):
    """`argparse.ArgumentParser` raising ValueError instead of printing the
    usage and exiting (`--help` still prints and exits 0), accepting the
    hyphenated spelling of each flag (`flag_spelling`)."""

    def parse_known_args(self, args=None, namespace=None):
        return super().parse_known_args(flag_spelling(sys.argv[1:] if args is None else args), namespace)

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


def size_pair(text):
    """`H,W` (sizes as the recipes spell them) -> two ints > 0."""
    parts = text.split(",")
    if len(parts) != 2:
        raise argparse.ArgumentTypeError(f"Expected two ints H,W. Received: {text!r}")
    return tuple(positive_int(part) for part in parts)


size_pair.__name__ = "H,W"  # argparse names the type in its messages


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
