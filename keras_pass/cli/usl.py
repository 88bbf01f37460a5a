"""`usl`: unsupervised ReID with cluster contrast on one dataset (absl flags
in `keras_pass/cli/cluster_contrast.py`)."""

from keras_pass.cli.absl_command import absl_main
from keras_pass.cli.cluster_contrast import run_usl as run


def main(argv=None):
    """`keras-pass usl ...` (argv without the program)."""
    return absl_main("usl", run, argv)
