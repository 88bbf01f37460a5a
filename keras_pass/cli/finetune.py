"""`keras-pass finetune`: the official supervised fine-tuning recipe. Every
setting of `FinetuneConfig` is a flag.

Defaults reproduce `PASS_transreid` (ViT-S 256x128 on Market-1501): P x K =
16 x 4, SGD 0.9, lr 4e-4 (biases x2), wd 1e-4, 20 warm-up epochs, cosine
over 120 epochs, CE + soft-margin triplet, concat(CLS, mean PART), seed 42.
Re-running the same command resumes an interrupted run.
"""

from keras_pass.cli.absl_command import recipe_main
from keras_pass.recipes.finetune import FinetuneConfig, finetune


def main(argv=None):
    """`keras-pass finetune ...` (argv without the program)."""
    return recipe_main("finetune", FinetuneConfig, finetune, argv, __doc__)
