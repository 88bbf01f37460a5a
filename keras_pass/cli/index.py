"""`keras-pass index GALLERY_DIR INDEX_DIR --model M`: embed a gallery.

Features of every image below GALLERY_DIR (any depth, or a list file) with
the model's own preprocessing, chunk by chunk: an interrupted run continues
where it stopped, a finished one does nothing. Then `keras-pass search`.
"""

from keras_pass import io
from keras_pass.cli.arguments import ArgumentParser, check_output_path, positive_int
from keras_pass.data.formats import IMAGE_FORMATS_HELP
from keras_pass.deploy.gallery import build_index


def build_parser():
    parser = ArgumentParser(prog="keras-pass index", description=f"{__doc__.splitlines()[0]} {IMAGE_FORMATS_HELP}")
    parser.add_argument("gallery", help="image folder (any depth) or list file")
    parser.add_argument("index_dir", help="folder to write the index to")
    parser.add_argument("--model", required=True, help="preset name or folder, fine-tuned .keras, or official .pth")
    parser.add_argument("--batch_size", type=positive_int, default=64)
    parser.add_argument("--chunk_size", type=positive_int, default=2048, help="images per resumable chunk")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    check_output_path(args.index_dir, "index_dir")
    with io.run_folder(args.index_dir):  # a resumed index's folder existed: kept
        index = build_index(args.gallery, args.index_dir, args.model, args.batch_size, args.chunk_size)
    print(f"indexed {len(index.paths)} images ({index.features.shape[1]}-d) in {args.index_dir}")
    return 0
