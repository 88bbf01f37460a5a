"""`keras-pass uda`: cluster-contrast domain adaptation from a source model."""

from keras_pass.cli.cluster_contrast import main_uda as main  # noqa: F401
