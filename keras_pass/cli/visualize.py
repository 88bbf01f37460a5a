"""`keras-pass visualize FEATURES_DIR OUTPUT`: PNG grid of queries and their top-k gallery images.

    keras-pass visualize FEATURES_DIR ranking.png [--num_queries 8] [--top_k 10]

Borders: green = same identity, red = another identity. Same-id
same-camera and junk gallery images are left out, as in the evaluation.
"""

import numpy as np

from keras_pass.cli.arguments import ArgumentParser, check_output_file, non_negative_int, positive_int
from keras_pass.reid.evaluation import pairwise_distance
from keras_pass.reid.features import load_feature_set
from keras_pass.reid.reranking import re_ranking_features
from keras_pass.reid.visualize import plot_ranking

MAX_QUERIES = 50  # rows of one picture (8 s and a 1265 x 1450 PNG at 50)


def build_parser():
    parser = ArgumentParser(prog="keras-pass visualize", description=__doc__.split("\n")[0])
    parser.add_argument("features_dir", help="output folder of `keras-pass extract`")
    parser.add_argument("output", help="PNG file to write")
    parser.add_argument("--query", default="query")
    parser.add_argument("--gallery", default="gallery")
    parser.add_argument("--queries", nargs="+", type=non_negative_int, help="query indices (default: random)")
    parser.add_argument("--num_queries", type=positive_int, default=8,
                        help=f"at most {MAX_QUERIES} rows")
    parser.add_argument("--top_k", type=positive_int, default=10)
    parser.add_argument("--rerank", action="store_true", help="rank by k-reciprocal re-ranking")
    parser.add_argument("--keep_same_camera", action="store_true",
                        help="also show same-id same-camera gallery images")
    parser.add_argument("--seed", type=non_negative_int, default=0)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)

    check_output_file(args.output, "output")
    if args.num_queries > MAX_QUERIES or len(args.queries or ()) > MAX_QUERIES:
        raise ValueError(f"Expected at most {MAX_QUERIES} queries in one picture. "
                         f"Received: --num_queries={len(args.queries or ()) or args.num_queries}")
    query_features, query = load_feature_set(args.features_dir, args.query, require_paths=True)
    gallery_features, gallery = load_feature_set(args.features_dir, args.gallery, require_paths=True)
    if args.queries:
        indices = np.asarray(args.queries)
        if indices.max() >= len(query):
            raise ValueError(f"Expected query indices in [0, {len(query)}). "
                             f"Received: --queries={args.queries}")
    else:
        rng = np.random.default_rng(args.seed)
        indices = np.sort(rng.choice(len(query), min(args.num_queries, len(query)), replace=False))
    if args.rerank:
        distances = re_ranking_features(query_features, gallery_features)[indices]
    else:
        distances = pairwise_distance(query_features[indices], gallery_features)
    plot_ranking(query, gallery, distances, indices, args.output, args.top_k,
                 args.keep_same_camera)
    print(f"wrote {args.output}")
    return 0
