"""Times evaluation and re-ranking on synthetic data of benchmark sizes.

    python tools/benchmark_evaluation.py --num-query 3368 --num-gallery 15913 [--rerank]

Features are clustered (one cluster per identity) so that neighbour sets
look like real ones; peak memory is the process's maximum resident size.
"""

import argparse
import resource
import time

import numpy as np


def synthetic_problem(num_query, num_gallery, num_ids, dim=768, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(num_ids, dim)).astype(np.float32)
    q_pids = rng.integers(1, num_ids, num_query)
    g_pids = rng.integers(0, num_ids, num_gallery)
    features = np.concatenate([centres[q_pids], centres[g_pids]])
    features += 2.5 * rng.normal(size=features.shape).astype(np.float32)
    features /= np.linalg.norm(features, axis=1, keepdims=True)
    cams = rng.integers(0, 6, num_query + num_gallery)
    return features[:num_query], features[num_query:], q_pids, g_pids, cams[:num_query], cams[num_query:]


def peak_memory_gb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--num-query", type=int, default=3368)
    parser.add_argument("--num-gallery", type=int, default=15913)
    parser.add_argument("--num-ids", type=int, default=750)
    parser.add_argument("--rerank", action="store_true")
    parser.add_argument("--rerank-from", choices=("matrices", "features"), default="features")
    args = parser.parse_args(argv)
    from keras_pass.reid.evaluation import evaluate_rank, pairwise_distance
    from keras_pass.reid.reranking import re_ranking, re_ranking_features

    qf, gf, q_pids, g_pids, q_cams, g_cams = synthetic_problem(
        args.num_query, args.num_gallery, args.num_ids)
    print(f"setup done, peak memory {peak_memory_gb():.2f} GB")
    start = time.perf_counter()
    distmat = pairwise_distance(qf, gf)
    print(f"distances {distmat.shape}: {time.perf_counter() - start:.2f} s")
    start = time.perf_counter()
    results = evaluate_rank(distmat, q_pids, g_pids, q_cams, g_cams)
    print(f"evaluate_rank: {time.perf_counter() - start:.2f} s, mAP {results['mAP']:.4f}, "
          f"peak memory {peak_memory_gb():.2f} GB")
    if args.rerank:
        start = time.perf_counter()
        if args.rerank_from == "features":
            reranked = re_ranking_features(qf, gf)
        else:
            reranked = re_ranking(distmat, pairwise_distance(qf, qf), pairwise_distance(gf, gf))
        elapsed = time.perf_counter() - start
        results = evaluate_rank(reranked, q_pids, g_pids, q_cams, g_cams)
        print(f"re_ranking ({args.rerank_from}): {elapsed:.2f} s, mAP {results['mAP']:.4f}, "
              f"peak memory {peak_memory_gb():.2f} GB")


if __name__ == "__main__":
    main()
