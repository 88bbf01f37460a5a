"""`uda`: domain adaptation with cluster contrast, from a source fine-tuned
backbone to a target dataset (absl flags in `keras_pass/cli/cluster_contrast.py`)."""

from keras_pass.cli.absl_command import absl_main
from keras_pass.cli.cluster_contrast import run_uda as run


def main(argv=None):
    """`keras-pass uda ...` (argv without the program)."""
    return absl_main("uda", run, argv)
