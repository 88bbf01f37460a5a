"""A tiny `recipes.pretrain` run on generated images, for kill-and-resume
tests (`tests.kill_points`' environment variables kill it):

    python -m tests.recipes.tiny_pretrain_run DATA_DIR OUTPUT_DIR

3 fit steps per epoch over a 4-batch data epoch, so fit epochs and data
epochs do not coincide; a checkpoint every 2 steps and at epoch ends.
"""

import sys

from keras_pass.recipes.pretrain import PretrainConfig, pretrain
from tests.helpers import TINY_BACKBONE
from tests.kill_points import install_from_environment

TINY = {k: v for k, v in TINY_BACKBONE.items() if k != "image_shape"}


def tiny_config(data, output_dir):
    return PretrainConfig(
        data=data, output_dir=str(output_dir), arch="vit_tiny", backbone_overrides=TINY,
        image_size=(64, 32), local_size=(32, 16), local_crops_per_part=1, epochs=2, batch_size=4,
        steps_per_epoch=3, warmup_epochs=1, out_dim=16, head_hidden_dim=16, bottleneck_dim=8,
        save_freq=2, drop_path_rate=0.1, verbose=0,
    )


if __name__ == "__main__":
    install_from_environment()
    pretrain(tiny_config(sys.argv[1], sys.argv[2]))
