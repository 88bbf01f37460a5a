"""`keras-pass evaluate FEATURES_DIR`: saved query/gallery features -> CMC / mAP / mINP table.

    keras-pass evaluate FEATURES_DIR [--rerank] [--query_expansion]
"""

from keras_pass import io
from keras_pass.cli.arguments import ArgumentParser, check_output_file, non_negative_float, positive_int
from keras_pass.reid.evaluation import (
    alpha_query_expansion,
    evaluate_features,
    evaluate_rank,
    pairwise_distance,
    format_results,
)
from keras_pass.reid.features import load_feature_set
from keras_pass.reid.reranking import re_ranking, re_ranking_features
from keras_pass.reid.roc import blockwise_tpr_at_fpr, format_roc


def build_parser():
    parser = ArgumentParser(prog="keras-pass evaluate", description=__doc__.split("\n")[0])
    parser.add_argument("features_dir", help="output folder of `keras-pass extract`")
    parser.add_argument("--query", default="query", help="query split name")
    parser.add_argument("--gallery", default="gallery", help="gallery split name")
    parser.add_argument("--metric", default="sqeuclidean",
                        choices=("sqeuclidean", "euclidean", "cosine"))
    parser.add_argument("--rerank", action="store_true", help="k-reciprocal re-ranking")
    parser.add_argument("--k1", type=positive_int, default=20)
    parser.add_argument("--k2", type=positive_int, default=6)
    parser.add_argument("--lambda_value", type=non_negative_float, default=0.3)
    parser.add_argument("--query_expansion", action="store_true", help="alpha-QE of the queries")
    parser.add_argument("--qe_top_k", type=positive_int, default=10)
    parser.add_argument("--qe_alpha", type=non_negative_float, default=3.0)
    parser.add_argument("--ap_method", default="uninterpolated",
                        choices=("uninterpolated", "devkit_trapezoidal"))
    parser.add_argument("--max_rank", type=positive_int, default=50)
    parser.add_argument("--output", help="write the metrics as JSON here")
    return parser


def evaluate_saved(args):
    query_features, query = load_feature_set(args.features_dir, args.query)
    gallery_features, gallery = load_feature_set(args.features_dir, args.gallery)
    if args.query_expansion:
        query_features = alpha_query_expansion(query_features, gallery_features,
                                               args.qe_top_k, args.qe_alpha)
    ids = (query.pids, gallery.pids, query.camids, gallery.camids)
    options = dict(max_rank=args.max_rank, ap_method=args.ap_method, verbose=True)
    if not args.rerank:
        results = evaluate_features(query_features, gallery_features, *ids, metric=args.metric,
                                    **options)
        return results, _roc(
            lambda start, stop: pairwise_distance(query_features[start:stop], gallery_features, args.metric),
            ids)
    k = dict(k1=args.k1, k2=args.k2, lambda_value=args.lambda_value, verbose=True)
    if args.metric == "sqeuclidean":  # distances computed block by block
        reranked = re_ranking_features(query_features, gallery_features, **k)
    else:
        pairs = ((query_features, gallery_features), (query_features, query_features),
                 (gallery_features, gallery_features))
        reranked = re_ranking(*(pairwise_distance(a, b, args.metric) for a, b in pairs), **k)
    return evaluate_rank(reranked, *ids, **options), _roc(lambda start, stop: reranked[start:stop], ids)


def _roc(query_distances, ids):
    """TPR@FPR and thresholds of the query x gallery pairs (fast-reid's ROC),
    queries in blocks: never the whole list of pairs in memory."""
    return blockwise_tpr_at_fpr(query_distances, *ids)


def main(argv=None):
    args = build_parser().parse_args(argv)

    if args.lambda_value > 1:
        raise ValueError(f"Expected --lambda_value in [0, 1]. Received: --lambda_value={args.lambda_value}")
    if args.output:
        check_output_file(args.output, "--output")
    results, roc = evaluate_saved(args)
    title = "re-ranked" if args.rerank else args.metric
    print(format_results(results, title=f"{args.features_dir} ({title})"))
    print(format_roc(roc))
    if args.output:
        summary = {"mAP": results["mAP"], "mINP": results["mINP"],
                   "cmc": [float(v) for v in results["cmc"]],
                   "num_valid_queries": results["num_valid_queries"],
                   "tpr_at_fpr": {f"{rate:g}": {"tpr": tpr, "threshold": threshold}
                                  for rate, (tpr, threshold) in roc.items()}}
        io.write_json(args.output, summary)
        print(f"wrote {args.output}")
    return 0
