"""k-reciprocal Jaccard distance between unlabeled features, for clustering.

The cluster-contrast variant (`compute_jaccard_distance` of the release),
built on the re-ranking machinery of `keras_pass.reid.reranking`:

1. `ranks`: the k1 nearest items of every item, itself included (the
   release searches k1 neighbours, not k1 + 1 as re-ranking does), by
   Euclidean distance of the L2-normalised features.
2. k-reciprocal sets over those k1 items, expanded by the sets of the
   round(k1/2) + 1 nearest items that overlap by more than 2/3.
3. `V[i, j] = softmax(-d(i, j))` over the expanded set, `d = 2 - 2 cos`
   (no per-row normalisation, unlike re-ranking); local query expansion
   averages the rows of the k2 nearest items.
4. `1 - sum(min(V_i, V_j)) / sum(max(V_i, V_j))`, clipped at 0.

No N x N matrix is needed: with `max_distance` only the pairs closer than
that are kept, as a sparse matrix DBSCAN reads directly (every pair left out
is at distance 1 or more). Memory at N = 30,000 and k1 = 30 stays around a
few GiB. The neighbour search uses faiss (`faiss-cpu`) when it is installed
(exact `IndexFlatL2`, as the release) and a chunked NumPy search otherwise.
"""

import numpy as np
from scipy import sparse

from keras_pass.reid.reranking import (
    FeatureDistances,
    block_rows,
    jaccard_blocks,
    k_reciprocal_encoding,
    local_query_expansion,
    nearest_neighbours,
    reciprocal_table,
)

SEARCH_METHODS = ("auto", "numpy", "faiss")


def faiss_available():
    try:
        import faiss  # noqa: F401
    except ImportError:
        return False
    return True


def _normalized(features):
    features = np.asarray(features, dtype=np.float32)
    if features.ndim != 2 or len(features) < 2:
        raise ValueError(
            f"Expected 2-D features of at least 2 items. Received: features.shape={features.shape}"
        )
    norms = np.linalg.norm(features, axis=1, keepdims=True)
    return features / np.maximum(norms, 1e-12)


def _faiss_neighbours(features, k):
    import faiss

    index = faiss.IndexFlatL2(features.shape[1])
    index.add(features)
    _, ranks = index.search(features, k)
    return ranks.astype(np.int64)


def search_neighbours(features, k, search="auto", verbose=False):
    """`(N, k)` indices of the k nearest items of each (itself first up to
    ties), by Euclidean distance. `search`: "auto" (faiss if installed),
    "numpy" or "faiss"."""
    if search not in SEARCH_METHODS:
        raise ValueError(f"Expected search in {SEARCH_METHODS}. Received: search={search}")
    if search == "faiss" or (search == "auto" and faiss_available()):
        return _faiss_neighbours(features, k)
    distances = FeatureDistances(features, features[:0])
    ranks, _ = nearest_neighbours(distances, k, block_rows(len(features)), verbose)
    return ranks


def _validate(k1, k2, total):
    if not (isinstance(k1, (int, np.integer)) and 2 <= k1 <= total):
        raise ValueError(f"Expected an integer 2 <= k1 <= {total} (all items). Received: k1={k1}")
    if not (isinstance(k2, (int, np.integer)) and 1 <= k2 <= k1):
        raise ValueError(f"Expected an integer 1 <= k2 <= k1. Received: k2={k2}")


def k_reciprocal_encoding_of(features, k1=30, k2=6, search="auto", verbose=False):
    """The query-expanded sparse encoding V (N x N CSR, rows sum to 1) of
    L2-normalised `features`."""
    _validate(k1, k2, len(features))
    ranks = search_neighbours(features, k1, search, verbose)
    reciprocal = reciprocal_table(ranks, k1 - 1)  # the k1 columns of `ranks`
    half_reciprocal = reciprocal_table(ranks, int(np.around(k1 / 2)))
    distances = FeatureDistances(features, features[:0])
    encoding = k_reciprocal_encoding(
        distances, reciprocal, half_reciprocal, np.ones(len(features), np.float32),
        block_rows(len(features)), verbose,
    )
    return local_query_expansion(encoding, ranks, k2)


def jaccard_distance(features, k1=30, k2=6, max_distance=None, search="auto", verbose=False):
    """k-reciprocal Jaccard distances between the rows of `features`.

    Args:
        features: (N, D) features (L2-normalised here).
        k1, k2: neighbourhood and query-expansion sizes (30 and 6 for
            cluster contrast).
        max_distance: None for the dense (N, N) float32 matrix; a value in
            (0, 1) for a sparse CSR matrix holding only the distances
            `<= max_distance` (zeros stored explicitly): what DBSCAN with
            `eps <= max_distance` needs, in a fraction of the memory.
        search: neighbour search, "auto" (faiss if installed), "numpy",
            "faiss".
        verbose: progress bars.
    """
    if max_distance is not None and not 0.0 < max_distance < 1.0:
        raise ValueError(
            f"Expected None or 0 < max_distance < 1. Received: max_distance={max_distance}"
        )
    features = _normalized(features)
    encoding = k_reciprocal_encoding_of(features, k1, k2, search, verbose)
    blocks = jaccard_blocks(encoding, encoding, verbose=verbose)
    if max_distance is None:
        dense = np.empty((len(features), len(features)), np.float32)
        for start, stop, block in blocks:
            dense[start:stop] = np.maximum(block, 0.0)
        return dense
    rows, cols, values = [], [], []
    for start, stop, block in blocks:
        local, col = np.nonzero(block <= max_distance)
        rows.append(local + start)
        cols.append(col)
        values.append(np.maximum(block[local, col], 0.0))
    # Built directly from CSR parts, so stored zeros (identical items) stay.
    rows = np.concatenate(rows)
    indptr = np.concatenate([[0], np.cumsum(np.bincount(rows, minlength=len(features)))])
    return sparse.csr_matrix(
        (np.concatenate(values), np.concatenate(cols), indptr), shape=(len(features),) * 2
    )
