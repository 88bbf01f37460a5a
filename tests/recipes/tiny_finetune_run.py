"""A tiny `recipes.finetune` run, for kill-and-resume tests (the
`tests.kill_points`' environment variables kill it):

    python -m tests.recipes.tiny_finetune_run DATA_ROOT PRESET OUTPUT_DIR
"""

import sys

from keras_pass.recipes.finetune import FinetuneConfig, finetune
from tests.kill_points import install_from_environment


def tiny_config(data, preset, output_dir):
    # Drop path on: its random state must be resumed too.
    return FinetuneConfig(data_root=data, output_dir=str(output_dir), preset=preset, image_size=(64, 32),
                          epochs=3, batch_size=8, num_instances=2, steps_per_epoch=2, warmup_epochs=1,
                          eval_every=3, drop_path_rate=0.1, verbose=0)


if __name__ == "__main__":
    install_from_environment()
    finetune(tiny_config(*sys.argv[1:4]))
