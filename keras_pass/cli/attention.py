"""`keras-pass attention PRESET IMAGES OUTPUT`: the paper's Figure 3 for a backbone preset.

    keras-pass attention PRESET IMAGES attention.png [--num_images 6]

Draws, for some images, the last-layer attention of [CLS] and of each [PART]
token over the image, and prints the share of each PART's attention that
falls inside its own region (chance: the region's share of patch rows).
"""

import numpy as np

from keras_pass.cli.arguments import ArgumentParser, check_output_file, non_negative_int, positive_int
from keras_pass.data.formats import IMAGE_FORMATS_HELP
from keras_pass.data.images import list_image_files
from keras_pass.loading import load_backbone
from keras_pass.models.attention import attention_report
from keras_pass.plots import plot_attention_grid
from keras_pass.reid.data import load_images


def build_parser():
    parser = ArgumentParser(prog="keras-pass attention", description=f"{__doc__.splitlines()[0]} {IMAGE_FORMATS_HELP}")
    parser.add_argument("preset", help="backbone preset directory or registered name")
    parser.add_argument("images", help="image folder (any depth) or list file")
    parser.add_argument("output", help="PNG file to write")
    parser.add_argument("--num_images", type=positive_int, default=6)
    parser.add_argument("--normalization", choices=("imagenet", "half"), default=None,
                        help="default: the preset's own (imagenet for pre-trained, half = 0.5/0.5 "
                             "for fine-tuned backbones)")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    return parser


def format_shares(shares, chances):
    return ", ".join(
        f"PART{i + 1} {100 * s:.1f}% (chance {100 * c:.0f}%)" for i, (s, c) in enumerate(zip(shares, chances))
    )


def main(argv=None):
    args = build_parser().parse_args(argv)

    check_output_file(args.output, "output")
    backbone = load_backbone(args.preset)
    paths = list_image_files(args.images)
    rng = np.random.default_rng(args.seed)
    paths = [paths[i] for i in sorted(rng.choice(len(paths), min(args.num_images, len(paths)), replace=False))]
    images = load_images(paths, backbone.image_shape[:2])
    maps, shares, chances = attention_report(backbone, images, args.normalization)
    plot_attention_grid(images, maps, args.output, shares)
    print(f"part attention inside its region: {format_shares(shares, chances)}")
    print(f"wrote {args.output}")
    return 0
