"""Gallery search speed: milliseconds per query against N gallery features.

    python tools/benchmark_search.py --sizes 100000 [--dim 768] [--search numpy faiss]

Features are random unit vectors (768-d: ViT-S's concat(CLS, mean PART));
search cost does not depend on their values. Reports one query at a time
and a batch of 100, and the memory the index holds.
"""

import argparse
import time

import numpy as np

from keras_pass.deploy.gallery import GalleryIndex
from keras_pass.uda.jaccard import faiss_available


def unit_vectors(count, dim, seed):
    vectors = np.random.default_rng(seed).normal(size=(count, dim)).astype(np.float32)
    return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def time_search(index, queries, search, top_k=10, repeats=3):
    """Best-of-`repeats` milliseconds per query, queries one at a time and in one batch."""
    index.search(queries[:1], top_k, search)  # warm-up (faiss builds its index)
    single = min(_seconds(lambda: [index.search(q[None], top_k, search) for q in queries[:20]])
                 for _ in range(repeats)) / 20
    batched = min(_seconds(lambda: index.search(queries, top_k, search)) for _ in range(repeats)) / len(queries)
    return 1000 * single, 1000 * batched


def _seconds(function):
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10000, 100000])
    parser.add_argument("--dim", type=int, default=768)
    parser.add_argument("--search", nargs="+", default=["numpy", "faiss"] if faiss_available() else ["numpy"])
    args = parser.parse_args(argv)
    queries = unit_vectors(100, args.dim, seed=1)
    print("| gallery size | features (MB) | search | ms / query (one at a time) | ms / query (batch of 100) |")
    print("|---|---|---|---|---|")
    for size in args.sizes:
        index = GalleryIndex(unit_vectors(size, args.dim, seed=0), [""] * size, np.full(size, -1))
        for search in args.search:
            single, batched = time_search(index, queries, search)
            print(f"| {size:,} | {index.features.nbytes / 1e6:.0f} | {search} | {single:.1f} | {batched:.2f} |")
    return 0


if __name__ == "__main__":
    main()
