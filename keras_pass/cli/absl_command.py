"""The recipe commands (pretrain, finetune, usl, uda): absl flags generated
from each recipe's config (`config_flags`), run the same way from
`keras-pass COMMAND` and from `python examples/X.py`."""

import sys

from keras_pass.cli.config_flags import run_config_command


def recipe_main(command, config_class, recipe, argv=None, doc=None):
    """Parses `argv` into a `config_class` and runs `recipe(config)`; returns 0."""
    argv = sys.argv[1:] if argv is None else list(argv)
    return run_config_command(command, config_class, recipe, argv, doc)
