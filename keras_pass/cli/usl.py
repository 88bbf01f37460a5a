"""`keras-pass usl`: unsupervised ReID with cluster contrast on one dataset."""

from keras_pass.cli.cluster_contrast import main_usl as main  # noqa: F401
