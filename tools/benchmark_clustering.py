"""Time to cluster N features: k-reciprocal Jaccard distance + DBSCAN.

    python tools/benchmark_clustering.py --sizes 10000 30000 [--search numpy]

Features are random 768-d vectors (`--ids 0`, the worst case for neighbour
sets: every item is about as far from every other) or, with `--ids M`, M
identities plus noise, closer to real features. Peak memory is the
process's maximum resident size (it only grows across sizes).
"""

import argparse
import time

import numpy as np

from benchmark_evaluation import peak_memory_gb
from keras_pass.uda.clustering import dbscan_labels
from keras_pass.uda.jaccard import faiss_available, jaccard_distance


def random_features(num_items, dim=768, num_ids=0, seed=0):
    """L2-normalised float32 features; `num_ids` > 0 adds identity centres."""
    rng = np.random.default_rng(seed)
    features = rng.normal(size=(num_items, dim)).astype(np.float32)
    if num_ids:
        centres = rng.normal(size=(num_ids, dim)).astype(np.float32)
        features = 0.6 * features + centres[rng.integers(0, num_ids, num_items)]
    return features / np.linalg.norm(features, axis=1, keepdims=True)


def time_clustering(num_items, dim=768, num_ids=0, search="auto", eps=0.6, min_samples=4,
                    k1=30, k2=6, seed=0):
    """Seconds of the Jaccard distance and of DBSCAN, clusters found, peak GB."""
    features = random_features(num_items, dim, num_ids, seed)
    start = time.perf_counter()
    distances = jaccard_distance(features, k1, k2, max_distance=eps, search=search)
    jaccard_seconds = time.perf_counter() - start
    start = time.perf_counter()
    labels = dbscan_labels(distances, eps, min_samples)
    return {
        "jaccard s": jaccard_seconds,
        "dbscan s": time.perf_counter() - start,
        "clusters": int(labels.max()) + 1,
        "peak GB": peak_memory_gb(),
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 30000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--ids", type=int, default=0, help="0: purely random features")
    parser.add_argument("--search", choices=("auto", "numpy", "faiss"), default="auto")
    args = parser.parse_args(argv)
    print(f"neighbour search: {args.search} (faiss installed: {faiss_available()})")
    for size in args.sizes:
        row = time_clustering(size, args.dim, args.ids, args.search)
        print(f"N={size}: " + ", ".join(f"{k} {v:.3g}" for k, v in row.items()), flush=True)


if __name__ == "__main__":
    main()
