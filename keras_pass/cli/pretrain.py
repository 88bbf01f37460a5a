"""`keras-pass pretrain`: PASS (or --objective=dino) pre-training on an image
folder (LUPerson layout). Every setting of `PretrainConfig` is a flag.

Defaults reproduce `PASS/script/vit-s_full_lup-pass.sh` (ViT-S/16, 256x128
globals, 3 x 3 region crops of 128x64, 100 epochs, AdamW 5e-4 x batch/256,
10 warm-up epochs, weight decay 0.04 -> 0.4, teacher momentum 0.996 -> 1,
65,536 prototypes). Re-running the same command resumes.
"""

from keras_pass.cli.absl_command import recipe_main
from keras_pass.recipes.pretrain import PretrainConfig, pretrain


def main(argv=None):
    """`keras-pass pretrain ...` (argv without the program)."""
    return recipe_main("pretrain", PretrainConfig, pretrain, argv, __doc__)
