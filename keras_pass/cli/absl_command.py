"""The recipe commands (pretrain, finetune, usl, uda): absl flags generated
from each recipe's config (`config_flags`), run the same way from
`keras-pass COMMAND` and from `python examples/X.py`."""

import sys


def recipe_main(command, config_path, recipe_path, argv=None, doc=None):
    """Parses `argv` into the config class at `config_path`
    ("module:Name") and runs the recipe at `recipe_path`; returns 0."""
    import importlib

    from keras_pass.cli.config_flags import run_config_command

    def resolve(path):
        module, name = path.split(":")
        return getattr(importlib.import_module(module), name)

    argv = sys.argv[1:] if argv is None else list(argv)
    return run_config_command(command, resolve(config_path), resolve(recipe_path), argv, doc)


def example_main(command):
    """`python examples/X.py ...`: exactly `keras-pass COMMAND ...`."""
    from keras_pass.cli.main import main

    sys.exit(main([command, *sys.argv[1:]]))
