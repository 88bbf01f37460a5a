"""Shared plumbing of the absl-flag commands (pretrain, finetune, usl, uda)."""

import sys

from absl import app, flags

_HELP = ("-h", "--help", "-help", "--helpshort")


def run_recipe(argv, recipe, config_from_flags):
    """An absl `run(argv)` body: no positional arguments, then the recipe."""
    if len(argv) > 1:
        raise app.UsageError(f"Unexpected arguments: {argv[1:]}")
    return recipe(config_from_flags())


def command_help(name, doc=None):
    """The flags keras-pass defines (absl's own `--help` lists only those of
    the `__main__` module, which for a console script is none)."""
    modules = flags.FLAGS.flags_by_module_dict()
    lines = [f"usage: keras-pass {name} [--flag=value ...]"]
    if doc:
        lines += ["", doc.strip()]
    for module in sorted(m for m in modules if m.startswith("keras_pass.cli.")):
        lines += ["", f"flags ({module}):", flags.FLAGS.module_help(module).strip().split("\n", 1)[-1]]
    lines += ["", "Run with --helpfull for absl's own flags too."]
    return "\n".join(lines)


def absl_main(name, run, argv=None, doc=None):
    """Runs `app.run(run)` for `keras-pass NAME ...` (argv without the program)."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if any(arg in _HELP for arg in argv):
        print(command_help(name, doc))
        return 0
    app.run(run, argv=[name, *argv])


def example_main(name, run, doc=None):
    """`python examples/X.py ...`: the same command as `keras-pass NAME`."""
    sys.exit(absl_main(name, run, sys.argv[1:], doc))
