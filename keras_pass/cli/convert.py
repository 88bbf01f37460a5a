"""`keras-pass convert CHECKPOINT OUTPUT_DIR`: official PyTorch .pth -> keras-pass preset dir."""

from keras_pass.cli.arguments import ArgumentParser, check_output_path, positive_int, size_pair
from keras_pass.models.configs import ARCHITECTURES
from keras_pass.models.convert import convert_checkpoint


def build_parser():
    parser = ArgumentParser(
        prog="keras-pass convert",
        description=(
            "Convert an official PASS checkpoint (pre-trained or fine-tuned "
            ".pth) into a KerasHub-format preset directory that "
            "PASSBackbone.from_preset(OUTPUT_DIR) loads. Heads, BNNecks and "
            "classifiers are dropped and listed as unused keys."
        ),
    )
    parser.add_argument("checkpoint", help="path of the official .pth file")
    parser.add_argument("output_dir", help="preset directory to write")
    parser.add_argument("--arch", choices=sorted(ARCHITECTURES),
                        help="default: inferred from the checkpoint's shapes")
    parser.add_argument(
        "--image_size", type=size_pair, metavar="H,W",
        help="target input size; default: the checkpoint's own (2:1 grid x 16)",
    )
    parser.add_argument("--stride", type=positive_int, default=16, help="patch stride")
    parser.add_argument(
        "--source_grid", type=size_pair, metavar="GH,GW",
        help="patch grid of the checkpoint when it is not 2:1 and differs from the target",
    )
    parser.add_argument(
        "--pos_embed_interpolation", choices=("resize_only", "always"),
        default="resize_only",
        help="'always' reproduces the pre-training model's resampling at the native size",
    )
    parser.add_argument(
        "--allow_missing", action="store_true",
        help="write the preset even if some backbone weights are not in the checkpoint",
    )
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    check_output_path(args.output_dir, "output_dir")
    _, report = convert_checkpoint(
        args.checkpoint,
        args.output_dir,
        arch=args.arch,
        image_size=tuple(args.image_size) if args.image_size else None,
        stride=args.stride,
        source_grid=tuple(args.source_grid) if args.source_grid else None,
        allow_missing=args.allow_missing,
        pos_embed_interpolation=args.pos_embed_interpolation,
    )
    for line in report.lines():
        print(line)
    print(f"wrote preset: {args.output_dir}")
    return 0
