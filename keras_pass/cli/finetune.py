"""`finetune`: the official supervised fine-tuning recipe, as absl flags.

Defaults reproduce `PASS_transreid` (ViT-S 256x128 on Market-1501): P x K =
16 x 4, SGD 0.9, lr 4e-4 (biases x2), wd 1e-4, 20 warm-up epochs, cosine
over 120 epochs, CE + soft-margin triplet, concat(CLS, mean PART), seed 42.
Re-running the same command resumes an interrupted run.

Importing this module defines the flags (absl keeps them global); run it
with `main(argv)` or, from a script, `absl.app.run(run)`.
"""

from absl import app, flags

from keras_pass.cli.absl_command import absl_main, run_recipe

FLAGS = flags.FLAGS
flags.DEFINE_string("data_root", None, "Dataset folder (or its parent).")
flags.DEFINE_enum("dataset", "market1501", ["market1501", "msmt17", "dukemtmc", "folder"],
                  "Dataset layout.")
flags.DEFINE_string("preset", None, "PASS backbone preset directory or registered name.")
flags.DEFINE_string("checkpoint", None, "Official pre-training .pth instead of a preset.")
flags.DEFINE_string("arch", "vit_small", "Architecture of --checkpoint.")
flags.DEFINE_list("image_size", ["256", "128"], "Input height,width.")
flags.DEFINE_integer("stride", 16, "Patch stride (16 in every released model).")
flags.DEFINE_integer("epochs", 120, "Training epochs.")
flags.DEFINE_integer("batch_size", 64, "Images per batch (P x K).")
flags.DEFINE_integer("num_instances", 4, "K: images per identity in a batch.")
flags.DEFINE_integer("steps_per_epoch", 0, "0: the sampler's epoch length.")
flags.DEFINE_float("base_lr", 4e-4, "Base learning rate (biases: x2).")
flags.DEFINE_integer("warmup_epochs", 20, "Linear warm-up epochs.")
flags.DEFINE_enum("feature_fusion", "cat", ["cat", "mean", "cls_only", "parts_only"],
                  "How CLS and PART features are fused.")
flags.DEFINE_integer("eval_every", 120, "Evaluate every N epochs (and after the last).")
flags.DEFINE_bool("rerank", False, "k-reciprocal re-ranking in evaluations.")
flags.DEFINE_integer("seed", 42, "Random seed.")
flags.DEFINE_string("output_dir", "runs/finetune", "Checkpoints, logs and results.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity (0, 1, 2).")


def config_from_flags():
    from keras_pass.reid.finetune import FinetuneConfig

    if not FLAGS.data_root:
        raise app.UsageError("--data_root is required.")
    return FinetuneConfig(
        data_root=FLAGS.data_root,
        output_dir=FLAGS.output_dir,
        dataset=FLAGS.dataset,
        preset=FLAGS.preset,
        checkpoint=FLAGS.checkpoint,
        arch=FLAGS.arch,
        image_size=tuple(int(v) for v in FLAGS.image_size),
        stride=FLAGS.stride,
        epochs=FLAGS.epochs,
        batch_size=FLAGS.batch_size,
        num_instances=FLAGS.num_instances,
        steps_per_epoch=FLAGS.steps_per_epoch or None,
        base_lr=FLAGS.base_lr,
        warmup_epochs=FLAGS.warmup_epochs,
        feature_fusion=FLAGS.feature_fusion,
        eval_every=FLAGS.eval_every,
        rerank=FLAGS.rerank,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
    )


def run(argv):
    """absl entry point: `app.run(run)`."""
    from keras_pass.reid.finetune import finetune

    run_recipe(argv, finetune, config_from_flags)


def main(argv=None):
    """`keras-pass finetune ...` (argv without the program)."""
    return absl_main("finetune", run, argv)
