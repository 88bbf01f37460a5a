"""absl flags shared by the `usl` and `uda` commands (cluster contrast).

Defaults reproduce the release's ViT-S scripts: batch 256 = 32 pseudo-ids x
8, 200 iterations x 50 epochs, SGD lr 3.5e-4 (x0.1 every 20 epochs), wd
5e-4, drop path 0.3, Jaccard k1=30/k2=6, DBSCAN eps 0.6 (use 0.7 for
MSMT17) / min_samples 4, memory temperature 0.05 / momentum 0.2. Re-running
the same command resumes an interrupted run.

Importing this module defines the flags (absl keeps them global).
"""

from absl import app, flags

from keras_pass.cli.absl_command import run_recipe

FLAGS = flags.FLAGS
flags.DEFINE_string("data_root", None, "Target dataset folder (or its parent).")
flags.DEFINE_enum("dataset", "market1501", ["market1501", "msmt17", "dukemtmc", "folder"],
                  "Target dataset layout.")
flags.DEFINE_string("preset", None, "Backbone preset directory or registered name "
                    "(UDA: the source fine-tuned backbone, e.g. finetune's backbone_preset/).")
flags.DEFINE_string("checkpoint", None, "Official .pth instead of a preset (needs torch).")
flags.DEFINE_string("arch", "vit_small", "Architecture of --checkpoint.")
flags.DEFINE_list("image_size", ["256", "128"], "Input height,width.")
flags.DEFINE_integer("stride", 16, "Patch stride (16 in every released model).")
flags.DEFINE_integer("epochs", 50, "Training epochs (one clustering each).")
flags.DEFINE_integer("iters", 200, "Iterations per epoch.")
flags.DEFINE_integer("batch_size", 256, "Images per batch (P x K).")
flags.DEFINE_integer("num_instances", 8, "K: images per pseudo-identity in a batch.")
flags.DEFINE_enum("optimizer", "sgd", ["sgd", "adam"],
                  "SGD (momentum 0.9) or Adam, both with coupled L2 weight decay as PyTorch.")
flags.DEFINE_float("lr", 3.5e-4, "Learning rate.")
flags.DEFINE_integer("lr_step_epochs", 20, "lr x 0.1 every this many epochs.")
flags.DEFINE_float("weight_decay", 5e-4, "Coupled L2 weight decay.")
flags.DEFINE_float("drop_path_rate", 0.3, "Stochastic depth of the backbone.")
flags.DEFINE_integer("padding", 10, "Zero-padding (pixels) of the random-crop augmentation; "
                     "10 at 256x128, scale it with --image_size.")
flags.DEFINE_enum("feature_fusion", "cat", ["cat", "mean", "cls_only", "parts_only"],
                  "How CLS and PART features are fused ('mean' for MSMT17 targets).")
flags.DEFINE_bool("multi_neck", None, "One BN per token (default: USL no, UDA yes).")
flags.DEFINE_float("eps", 0.6, "DBSCAN eps on the Jaccard distance (0.7 for MSMT17).")
flags.DEFINE_integer("min_samples", 4, "DBSCAN min_samples.")
flags.DEFINE_integer("k1", 30, "k-reciprocal neighbourhood size.")
flags.DEFINE_integer("k2", 6, "Query-expansion size.")
flags.DEFINE_enum("search", "auto", ["auto", "numpy", "faiss"],
                  "Neighbour search (auto: faiss-cpu if installed).")
flags.DEFINE_float("temperature", 0.05, "Memory softmax temperature.")
flags.DEFINE_float("memory_momentum", 0.2, "Weight of the old centroid in the hard update.")
flags.DEFINE_integer("eval_every", 1, "Evaluate every N epochs (and after the last).")
flags.DEFINE_integer("seed", 1, "Random seed.")
flags.DEFINE_string("output_dir", None, "Metrics, checkpoints and the final backbone preset.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity (0, 1, 2).")


def config_from_flags(config_class, default_output_dir):
    if not FLAGS.data_root:
        raise app.UsageError("--data_root is required.")
    overrides = {} if FLAGS.multi_neck is None else {"multi_neck": FLAGS.multi_neck}
    return config_class(
        data_root=FLAGS.data_root,
        output_dir=FLAGS.output_dir or default_output_dir,
        dataset=FLAGS.dataset,
        preset=FLAGS.preset,
        checkpoint=FLAGS.checkpoint,
        arch=FLAGS.arch,
        image_size=tuple(int(v) for v in FLAGS.image_size),
        stride=FLAGS.stride,
        epochs=FLAGS.epochs,
        iters=FLAGS.iters,
        batch_size=FLAGS.batch_size,
        num_instances=FLAGS.num_instances,
        optimizer=FLAGS.optimizer,
        lr=FLAGS.lr,
        lr_step_epochs=FLAGS.lr_step_epochs,
        weight_decay=FLAGS.weight_decay,
        drop_path_rate=FLAGS.drop_path_rate,
        padding=FLAGS.padding,
        feature_fusion=FLAGS.feature_fusion,
        eps=FLAGS.eps,
        min_samples=FLAGS.min_samples,
        k1=FLAGS.k1,
        k2=FLAGS.k2,
        search=FLAGS.search,
        temperature=FLAGS.temperature,
        memory_momentum=FLAGS.memory_momentum,
        eval_every=FLAGS.eval_every,
        seed=FLAGS.seed,
        verbose=FLAGS.verbose,
        **overrides,
    )


def run_usl(argv):
    """absl entry point of `usl`: `app.run(run_usl)`."""
    from keras_pass.uda.trainer import USLConfig, train_usl

    run_recipe(argv, train_usl, lambda: config_from_flags(USLConfig, "runs/usl"))


def run_uda(argv):
    """absl entry point of `uda`: `app.run(run_uda)`."""
    from keras_pass.uda.trainer import UDAConfig, train_uda

    run_recipe(argv, train_uda, lambda: config_from_flags(UDAConfig, "runs/uda"))
