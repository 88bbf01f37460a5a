"""`keras-pass usl` and `keras-pass uda`: cluster contrast. Every setting of
`USLConfig` / `UDAConfig` is a flag.

Defaults reproduce the release's ViT-S scripts: batch 256 = 32 pseudo-ids x
8, 200 iterations x 50 epochs, SGD lr 3.5e-4 (x0.1 every 20 epochs), wd
5e-4, drop path 0.3, Jaccard k1=30/k2=6, DBSCAN eps 0.6 (use 0.7 for
MSMT17) / min_samples 4, memory temperature 0.05 / momentum 0.2. Re-running
the same command resumes an interrupted run.
"""

from keras_pass.cli.absl_command import recipe_main
from keras_pass.recipes.cluster_contrast import UDAConfig, USLConfig, train_uda, train_usl


def main_usl(argv=None):
    return recipe_main("usl", USLConfig, train_usl, argv, __doc__)


def main_uda(argv=None):
    return recipe_main("uda", UDAConfig, train_uda, argv, __doc__)
