"""`keras-pass demo`: PASS end to end on generated pedestrians (see `keras_pass.recipes.demo`)."""

from keras_pass import io
from keras_pass.cli.arguments import ArgumentParser, check_output_path, non_negative_int
from keras_pass.recipes.demo import DURATIONS, run_demo


def build_parser():
    parser = ArgumentParser(
        prog="keras-pass demo",
        description="Generate pedestrians, PASS pre-train a small ViT, fine-tune, evaluate, and "
                    f"write a table, metrics.json and pictures ({DURATIONS['full']} on 2 CPU cores).",
    )
    parser.add_argument("--output_dir", default="keras_pass_demo",
                        help="where data, presets, metrics.json and pictures/ go; re-running resumes")
    parser.add_argument("--quick", action="store_true",
                        help=f"a smaller run ({DURATIONS['quick']}): fewer steps and people, so wider "
                             "intervals; read its rows as a smoke test, not a verdict")
    parser.add_argument("--long", action="store_true",
                        help=f"a longer run ({DURATIONS['long']}): 3x the unlabeled people and "
                             "pre-training steps, the full mode's labels and fine-tuning "
                             "(docs/experiments/demo_diagnosis.md section 8)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="draws the data and every initial weight")
    parser.add_argument("--overwrite", action="store_true",
                        help="run again when output_dir holds a finished demo (default: do nothing)")
    return parser


def _mode(args):
    return "quick" if args.quick else "long" if args.long else "full"


def main(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick and args.long:
        raise ValueError("Expected at most one of --quick and --long. Received: --quick --long")

    check_output_path(args.output_dir, "--output_dir")
    with io.run_folder(args.output_dir):  # a demo that fails at once leaves no folder
        run_demo(args.output_dir, mode=_mode(args), seed=args.seed, overwrite=args.overwrite)
    return 0
