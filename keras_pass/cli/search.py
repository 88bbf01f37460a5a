"""`keras-pass search INDEX_DIR QUERY_IMAGE... --top_k 10`: ranked gallery files.

Embeds the queries with the index's model, prints each query's nearest
gallery files with their distances (squared Euclidean of unit features, the
unit of `keras-pass evaluate`'s thresholds) and writes a ranked-list
picture. `--threshold T` (a distance from evaluate's TPR@FPR lines) marks
each match as the same person (distance < T) or not.
"""

from keras_pass.cli.arguments import ArgumentParser, check_output_file, positive_float, positive_int
from keras_pass.data.formats import IMAGE_FORMATS_HELP
from keras_pass.data.images import check_images, not_a_file
from keras_pass.deploy.embedder import Embedder
from keras_pass.deploy.gallery import GalleryIndex
from keras_pass.reid.visualize import plot_search


def build_parser():
    parser = ArgumentParser(prog="keras-pass search", description=f"{__doc__.splitlines()[0]} {IMAGE_FORMATS_HELP}")
    parser.add_argument("index_dir", help="output of `keras-pass index`")
    parser.add_argument("queries", nargs="+", help="query image files")
    parser.add_argument("--top_k", type=positive_int, default=10)
    parser.add_argument("--threshold", type=positive_float, help="same-person distance threshold (accept below)")
    parser.add_argument("--picture", default="search.png", help="ranked-list PNG to write ('' for none)")
    parser.add_argument("--model", help="default: the model the index was built with")
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    if args.picture:
        check_output_file(args.picture, "--picture")
    for query in args.queries:
        if not_a_file(query):
            raise ValueError(f"Expected query image files. Received: {query} ({not_a_file(query)})")
    check_images(args.queries, "the query images")
    index = GalleryIndex.load(args.index_dir)
    model = args.model or index.model
    if model is None:
        raise ValueError("Expected --model: the index was built from a model object, not a file")
    indices, distances = index.search(Embedder.from_model(model)(args.queries), args.top_k)
    for query, row, row_distances in zip(args.queries, indices, distances):
        print(f"query {query}")
        for rank, (i, distance) in enumerate(zip(row, row_distances), 1):
            verdict = "" if args.threshold is None else ("  same" if distance < args.threshold else "  different")
            print(f"  {rank:3d}  {distance:.4f}  {index.paths[i]}{verdict}")
    if args.picture:
        ranked = [[index.paths[i] for i in row] for row in indices]
        plot_search(args.queries, ranked, distances, args.picture, args.threshold)
        print(f"wrote {args.picture}")
    return 0
