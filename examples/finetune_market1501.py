"""Supervised PASS fine-tuning on Market-1501 (or MSMT17, DukeMTMC-reID, a folder).

Defaults reproduce the official recipe (`PASS_transreid`, ViT-S 256x128):
P x K = 16 x 4, SGD 0.9, lr 4e-4 (biases x2), wd 1e-4, 20 warm-up epochs,
cosine over 120 epochs, CE + soft-margin triplet, concat(CLS, mean PART).

    python examples/finetune_market1501.py --data_root /data \
        --preset pass_vit_small_p16_lup --output_dir runs/market_vits

Re-run the same command to resume an interrupted run.
"""

from absl import app, flags

from keras_pass.reid.finetune import FinetuneConfig, finetune

FLAGS = flags.FLAGS
flags.DEFINE_string("data_root", None, "Dataset folder (or its parent).", required=True)
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
flags.DEFINE_string("output_dir", "runs/finetune_market1501", "Checkpoints, logs, results.")
flags.DEFINE_integer("verbose", 1, "Keras verbosity (0, 1, 2).")


def main(argv):
    del argv
    finetune(FinetuneConfig(
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
    ))


if __name__ == "__main__":
    app.run(main)
