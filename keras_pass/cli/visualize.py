"""`visualize_ranking`: PNG grid of queries and their top-k gallery images.

    python tools/visualize_ranking.py FEATURES_DIR ranking.png [--num-queries 8] [--top-k 10]

Borders: green = same identity, red = another identity. Same-id
same-camera and junk gallery images are left out, as in the evaluation.
"""

import argparse
import sys

import numpy as np


def build_parser():
    parser = argparse.ArgumentParser(prog="visualize_ranking", description=__doc__.split("\n")[0])
    parser.add_argument("features_dir", help="output of tools/extract_features.py")
    parser.add_argument("output", help="PNG file to write")
    parser.add_argument("--query", default="query")
    parser.add_argument("--gallery", default="gallery")
    parser.add_argument("--queries", nargs="+", type=int, help="query indices (default: random)")
    parser.add_argument("--num-queries", type=int, default=8)
    parser.add_argument("--top-k", type=int, default=10)
    parser.add_argument("--rerank", action="store_true", help="rank by k-reciprocal re-ranking")
    parser.add_argument("--keep-same-camera", action="store_true",
                        help="also show same-id same-camera gallery images")
    parser.add_argument("--seed", type=int, default=0)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    from keras_pass.reid.evaluation import pairwise_distance
    from keras_pass.reid.features import load_feature_set
    from keras_pass.reid.reranking import re_ranking_features
    from keras_pass.reid.visualize import plot_ranking

    try:
        query_features, query = load_feature_set(args.features_dir, args.query)
        gallery_features, gallery = load_feature_set(args.features_dir, args.gallery)
        if args.queries:
            indices = np.asarray(args.queries)
            if indices.min() < 0 or indices.max() >= len(query):
                raise ValueError(f"Expected query indices in [0, {len(query)}). "
                                 f"Received: {args.queries}")
        else:
            rng = np.random.default_rng(args.seed)
            indices = np.sort(rng.choice(len(query), min(args.num_queries, len(query)), replace=False))
        if args.rerank:
            distances = re_ranking_features(query_features, gallery_features)[indices]
        else:
            distances = pairwise_distance(query_features[indices], gallery_features)
        plot_ranking(query, gallery, distances, indices, args.output, args.top_k,
                     args.keep_same_camera)
    except (ValueError, OSError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
