"""`pretrain`: PASS pre-training on an image folder (LUPerson layout), as absl flags.

Defaults reproduce `PASS/script/vit-s_full_lup-pass.sh` (ViT-S/16, 256x128
globals, 3 x 3 region crops of 128x64, 100 epochs, AdamW 5e-4 x batch/256,
10 warm-up epochs, weight decay 0.04 -> 0.4, teacher momentum 0.996 -> 1,
65,536 prototypes). Re-running the same command resumes.
"""

from absl import app, flags

from keras_pass.cli.absl_command import absl_main, run_recipe

FLAGS = flags.FLAGS
flags.DEFINE_string("data_dir", None, "Image folder (any depth) or a list file of image paths.")
flags.DEFINE_string("output_dir", "runs/pretrain", "Checkpoints, TensorBoard logs, presets.")
flags.DEFINE_enum("arch", "vit_small", ["vit_tiny", "vit_small", "vit_base"], "Architecture.")
flags.DEFINE_string("preset", None, "Start from this preset instead of random weights.")
flags.DEFINE_list("image_size", ["256", "128"], "Global crop height,width.")
flags.DEFINE_list("local_size", ["128", "64"], "Local crop height,width.")
flags.DEFINE_integer("local_crops_per_part", 3, "Local crops per region.")
flags.DEFINE_integer("epochs", 100, "Epochs.")
flags.DEFINE_integer("batch_size", 128, "Global batch size (the release: 8 GPUs x 128).")
flags.DEFINE_integer("steps_per_epoch", 0, "0: one pass over the images.")
flags.DEFINE_float("base_lr", 5e-4, "Learning rate per 256 images.")
flags.DEFINE_integer("warmup_epochs", 10, "Linear learning-rate warm-up epochs.")
flags.DEFINE_integer("out_dim", 65536, "Prototypes per head.")
flags.DEFINE_float("drop_path_rate", 0.1, "Stochastic depth of the student.")
flags.DEFINE_integer("save_freq", 500, "Checkpoint every N steps (and every epoch).")
flags.DEFINE_enum("distribution", "none", ["none", "mirrored", "data_parallel"],
                  "mirrored: tf.distribute (TensorFlow); data_parallel: keras.distribution (JAX).")
flags.DEFINE_enum("precision", "float32", ["float32", "mixed_bfloat16", "mixed_float16"],
                  "Backbone compute precision (heads stay float32).")
flags.DEFINE_integer("seed", 0, "Random seed (data and initialisation).")
flags.DEFINE_integer("verbose", 1, "Keras verbosity (0, 1, 2).")


def config_from_flags():
    from keras_pass.pretraining.recipe import PretrainConfig

    if not FLAGS.data_dir:
        raise app.UsageError("--data_dir is required.")
    return PretrainConfig(
        data=FLAGS.data_dir,
        output_dir=FLAGS.output_dir,
        arch=FLAGS.arch,
        preset=FLAGS.preset,
        image_size=tuple(int(v) for v in FLAGS.image_size),
        local_size=tuple(int(v) for v in FLAGS.local_size),
        local_crops_per_part=FLAGS.local_crops_per_part,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        steps_per_epoch=FLAGS.steps_per_epoch or None,
        base_lr=FLAGS.base_lr,
        warmup_epochs=FLAGS.warmup_epochs,
        out_dim=FLAGS.out_dim,
        drop_path_rate=FLAGS.drop_path_rate,
        save_freq=FLAGS.save_freq,
        distribution=FLAGS.distribution,
        dtype=None if FLAGS.precision == "float32" else FLAGS.precision,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
    )


def run(argv):
    """absl entry point: `app.run(run)`."""
    from keras_pass.pretraining.recipe import pretrain

    run_recipe(argv, pretrain, config_from_flags)


def main(argv=None):
    """`keras-pass pretrain ...` (argv without the program)."""
    return absl_main("pretrain", run, argv)
