"""`keras-pass shard IMAGE_DIR OUT_DIR --shard_size N`: TFRecord shards.

Converts an image folder (any depth, e.g. LUPerson) or list file into
TFRecord shards of N encoded images each plus `shards.json`; `keras-pass
pretrain --data_dir OUT_DIR` then reads the shards (per-process shards, a
windowed shuffle buffer, resume by position). Resumable: finished shards
are not rewritten.
"""

from keras_pass.cli.arguments import ArgumentParser

from keras_pass.data.formats import IMAGE_FORMATS_HELP

from keras_pass.pretraining.shards import write_shards


def build_parser():
    parser = ArgumentParser(prog="keras-pass shard", description=f"{__doc__.splitlines()[0]} {IMAGE_FORMATS_HELP}")
    parser.add_argument("image_dir", help="image folder (any depth) or list file")
    parser.add_argument("out_dir", help="folder to write the shards and shards.json to")
    parser.add_argument("--shard_size", type=int, default=4096, help="images per shard")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    index = write_shards(args.image_dir, args.out_dir, args.shard_size)
    print(f"{index['num_images']} images in {len(index['shards'])} shards in {args.out_dir}")
    return 0


if __name__ == "__main__":  # through keras-pass's one handler of bad input
    from keras_pass.cli.absl_command import example_main

    example_main("shard")
