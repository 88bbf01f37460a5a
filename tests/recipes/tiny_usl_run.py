"""A tiny `train_usl` run, for kill-and-resume tests (the
`tests.kill_points`' environment variables kill it):

    python -m tests.recipes.tiny_usl_run DATA_ROOT PRESET OUTPUT_DIR
"""

import sys

from keras_pass.recipes.cluster_contrast import USLConfig, train_usl
from tests.kill_points import install_from_environment


def kill_test_config(data, preset, output_dir):
    # 2 epochs of 2 steps; drop path on: its random state must be resumed too.
    return USLConfig(data_root=data, output_dir=str(output_dir), preset=preset, image_size=(64, 32),
                     epochs=2, iters=2, eval_every=2, batch_size=8, num_instances=2, k1=10, k2=3,
                     eps=0.6, min_samples=2, drop_path_rate=0.1, verbose=0)


if __name__ == "__main__":
    install_from_environment()
    train_usl(kill_test_config(*sys.argv[1:4]))
