"""Shared plumbing of the absl-flag commands (pretrain, finetune, ...)."""

import sys

from absl import app


def run_recipe(argv, recipe, config_from_flags):
    """An absl `run(argv)` body: no positional arguments, then the recipe."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    return recipe(config_from_flags())


def absl_main(name, run, argv=None):
    """Runs `app.run(run)` for `keras-pass NAME ...` (argv without the program)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    app.run(run, argv=[name, *argv])
