"""k-reciprocal re-ranking (Zhong et al., CVPR 2017), memory-chunked.

The algorithm on N = num_query + num_gallery items, with `D` the full
distance matrix and `M[i] = D[:, i] / max(D[:, i])` (each column normalised
by its maximum, then transposed, as the reference code does):

1. `R(i, k)`: the k + 1 nearest items of i under M (i itself included);
   the k-reciprocal set keeps the j in R(i, k1) with i in R(j, k1).
2. Expansion: a k-reciprocal neighbour j adds its own round(k1/2)-reciprocal
   set when more than 2/3 of that set is already in i's set.
3. `V[i, j] = exp(-M[i, j])` over the expanded set, normalised to sum 1;
   local query expansion averages the rows of the k2 nearest items.
4. Jaccard distance `1 - sum(min(V_i, V_j)) / sum(max(V_i, V_j))`, and
   the result `(1 - lambda) * jaccard + lambda * M` on query x gallery.

Only the (N, k1 + 1) neighbour table and the sparse V (about k1 to k2 * k1
entries per row) are kept; distance rows are produced chunk by chunk, from
the three matrices (`re_ranking`) or from features (`re_ranking_features`).
Deviations from the reference code: float32 instead of float16 storage, and
distances are used as given (pass squared Euclidean distances, as PASS does;
the original authors' code squares Euclidean distances itself).
"""

import numpy as np
from scipy import sparse

from keras_pass.reid.progress import progress

_CHUNK_ELEMENTS = 1 << 23  # distances per block: 32 MiB of float32


def block_rows(total):
    """Rows per distance block, so that a block holds ~8M distances."""
    return max(1, _CHUNK_ELEMENTS // total)


class _MatrixColumns:
    """Columns of D = [[q_q, q_g], [q_g.T, g_g]] in blocks, as rows."""

    def __init__(self, q_g_dist, q_q_dist, g_g_dist):
        self.q_g, self.q_q, self.g_g = q_g_dist, q_q_dist, g_g_dist
        self.num_query, self.num_gallery = q_g_dist.shape

    def block(self, start, stop):
        nq = self.num_query
        if stop <= nq:
            parts = (self.q_q[:, start:stop].T, self.q_g[start:stop])
        else:
            cols = slice(start - nq, stop - nq)
            parts = (self.q_g[:, cols].T, self.g_g[:, cols].T)
        return np.concatenate([np.asarray(p, dtype=np.float32) for p in parts], axis=1)

    def entries(self, start, stop, cols):
        """`block(start, stop)` at columns `cols` (c, m), row by row."""
        return np.take_along_axis(self.block(start, stop), cols, axis=1)


class FeatureDistances:
    """Squared Euclidean distances from features, computed per block
    (`query_features` first, then `gallery_features`, which may be empty)."""

    def __init__(self, query_features, gallery_features):
        self.features = np.concatenate(
            [np.asarray(query_features, np.float32), np.asarray(gallery_features, np.float32)]
        )
        self.squares = (self.features**2).sum(1)
        self.num_query = len(query_features)
        self.num_gallery = len(gallery_features)

    def block(self, start, stop):
        rows = self.features[start:stop]
        distances = self.squares[start:stop, None] + self.squares[None] - 2.0 * rows @ self.features.T
        return np.maximum(distances, 0.0)

    def entries(self, start, stop, cols):
        """Only the requested distances: (c, m) dot products, not (c, N);
        the gathered (rows, m, D) features are bounded to ~8M values."""
        step = max(1, _CHUNK_ELEMENTS // max(1, cols.shape[1] * self.features.shape[1]))
        dots = np.empty(cols.shape, np.float32)
        for first in range(0, stop - start, step):
            part = slice(first, first + step)
            rows = self.features[start + first:min(start + first + step, stop)]
            dots[part] = np.einsum("cd,cmd->cm", rows, self.features[cols[part]])
        distances = self.squares[start:stop, None] + self.squares[cols] - 2.0 * dots
        return np.maximum(distances, 0.0)


def _blocks(columns, chunk_rows):
    """(start, stop) ranges that never straddle the query/gallery boundary."""
    total = columns.num_query + columns.num_gallery
    for begin, end in ((0, columns.num_query), (columns.num_query, total)):
        for start in range(begin, end, chunk_rows):
            yield start, min(start + chunk_rows, end)


def nearest_neighbours(columns, num_neighbours, chunk_rows, verbose=False):
    """Per row: the `num_neighbours` nearest items sorted by distance (then
    index; the item itself first) and the row maximum (for normalising)."""
    total = columns.num_query + columns.num_gallery
    ranks = np.empty((total, num_neighbours), dtype=np.int64)
    row_max = np.empty(total, dtype=np.float32)
    for start, stop in progress(list(_blocks(columns, chunk_rows)), verbose, "neighbours"):
        block = columns.block(start, stop)
        row_max[start:stop] = block.max(axis=1)
        part = np.argpartition(block, num_neighbours - 1, axis=1)[:, :num_neighbours]
        values = np.take_along_axis(block, part, 1)
        order = np.lexsort((part, values), axis=1)  # by distance, then index
        ranks[start:stop] = np.take_along_axis(part, order, 1)
    if not (row_max > 0).all():
        raise ValueError("Expected every item to have a positive distance to some other item.")
    return ranks, row_max


def reciprocal_table(ranks, k):
    """(N, k + 1) neighbour table with -1 where the neighbour is not k-reciprocal."""
    table = ranks[:, : k + 1]
    rows = np.arange(len(table))[:, None, None]
    is_reciprocal = (table[table] == rows).any(axis=-1)
    return np.where(is_reciprocal, table, -1)


def _expanded_sets(reciprocal, half_reciprocal, rows):
    """Padded (-1) k-reciprocal sets of `rows`, expanded with candidates'
    half-size sets that overlap the set by more than 2/3."""
    own = reciprocal[rows]  # (c, K)
    candidate_sets = np.where(own[..., None] >= 0, half_reciprocal[np.maximum(own, 0)], -1)
    in_own = (candidate_sets[..., None] == own[:, None, None, :]).any(-1) & (candidate_sets >= 0)
    set_sizes = (candidate_sets >= 0).sum(-1)
    accepted = in_own.sum(-1) > 2.0 / 3.0 * set_sizes  # (c, K)
    added = np.where(accepted[..., None], candidate_sets, -1).reshape(len(rows), -1)
    members = np.sort(np.concatenate([own, added], axis=1), axis=1)
    duplicate = np.zeros_like(members, dtype=bool)
    duplicate[:, 1:] = members[:, 1:] == members[:, :-1]
    return np.where(duplicate, -1, members)


def k_reciprocal_encoding(columns, reciprocal, half_reciprocal, row_max, chunk_rows, verbose=False):
    """The sparse k-reciprocal encoding V (rows sum to 1): weights
    `exp(-d / row_max)` over each row's expanded k-reciprocal set.

    `reciprocal`, `half_reciprocal`: `reciprocal_table` outputs (the sets
    and the half-size sets used for the expansion); `columns` gives the
    distances (`FeatureDistances` or the matrix form of `re_ranking`).
    Shared by re-ranking and the clustering Jaccard distance, which differ
    only in the set sizes and in `row_max` (ones there).
    """
    total = len(reciprocal)
    rows_out, cols_out, values_out = [], [], []
    for start, stop in progress(list(_blocks(columns, chunk_rows)), verbose, "encoding"):
        members = _expanded_sets(reciprocal, half_reciprocal, np.arange(start, stop))
        distances = columns.entries(start, stop, np.maximum(members, 0))
        local, position = np.nonzero(members >= 0)
        cols = members[local, position]
        weights = np.exp(-distances[local, position] / row_max[start + local])
        sums = np.bincount(local, weights=weights, minlength=stop - start)
        rows_out.append(local + start)
        cols_out.append(cols)
        values_out.append(weights / sums[local])
    return sparse.csr_matrix(
        (np.concatenate(values_out).astype(np.float32),
         (np.concatenate(rows_out), np.concatenate(cols_out))),
        shape=(total, total),
    )


def local_query_expansion(encoding, ranks, k2):
    """Each row of V replaced by the mean of the rows of its k2 nearest items."""
    if k2 == 1:
        return encoding
    total = encoding.shape[0]
    rows = np.repeat(np.arange(total), k2)
    selector = sparse.csr_matrix(
        (np.full(total * k2, 1.0 / k2, np.float32), (rows, ranks[:, :k2].ravel())),
        shape=(total, total),
    )
    return (selector @ encoding).tocsr()


def jaccard_blocks(query_encoding, gallery_encoding, chunk_pairs=2e7, verbose=False):
    """Yields `(start, stop, distances)`: `1 - sum(min) / sum(max)` of query
    rows start:stop against every gallery row, via an inverted index
    (gallery columns) over the nonzeros of each query row. A block holds at
    most ~8M distances and ~`chunk_pairs` pair terms."""
    by_column = gallery_encoding.tocsc()
    column_counts = np.diff(by_column.indptr)
    num_query, num_gallery = query_encoding.shape[0], gallery_encoding.shape[0]
    pairs_per_row = np.bincount(
        np.repeat(np.arange(num_query), np.diff(query_encoding.indptr)),
        weights=column_counts[query_encoding.indices], minlength=num_query,
    )
    bounds, start, load = [], 0, 0.0
    for row, pairs in enumerate(pairs_per_row):
        load += pairs
        if load > chunk_pairs or (row + 1 - start) * num_gallery > _CHUNK_ELEMENTS:
            bounds.append((start, row + 1))
            start, load = row + 1, 0.0
    if start < num_query:
        bounds.append((start, num_query))
    for start, stop in progress(bounds, verbose, "jaccard"):
        chunk = query_encoding[start:stop].tocoo()
        counts = column_counts[chunk.col]
        entry = np.repeat(np.arange(len(chunk.col)), counts)
        offsets = np.arange(counts.sum()) - np.repeat(np.cumsum(counts) - counts, counts)
        position = by_column.indptr[chunk.col][entry] + offsets
        minimum = np.minimum(chunk.data[entry], by_column.data[position])
        flat = chunk.row[entry] * num_gallery + by_column.indices[position]
        overlap = np.bincount(flat, weights=minimum, minlength=(stop - start) * num_gallery)
        overlap = overlap.reshape(stop - start, num_gallery)
        yield start, stop, (1.0 - overlap / (2.0 - overlap)).astype(np.float32)


def _validate_k(k1, k2, lambda_value, total):
    if not (isinstance(k1, (int, np.integer)) and 1 <= k1 < total):
        raise ValueError(f"Expected an integer 1 <= k1 < {total} (all items). Received: k1={k1}")
    if not (isinstance(k2, (int, np.integer)) and 1 <= k2 <= k1 + 1):
        raise ValueError(f"Expected an integer 1 <= k2 <= k1 + 1. Received: k2={k2}")
    if not 0.0 <= lambda_value <= 1.0:
        raise ValueError(f"Expected 0 <= lambda_value <= 1. Received: lambda_value={lambda_value}")


def _re_rank(columns, k1, k2, lambda_value, verbose):
    total = columns.num_query + columns.num_gallery
    _validate_k(k1, k2, lambda_value, total)
    chunk_rows = block_rows(total)
    ranks, row_max = nearest_neighbours(columns, k1 + 1, chunk_rows, verbose)
    reciprocal = reciprocal_table(ranks, k1)
    half_reciprocal = reciprocal_table(ranks, int(np.around(k1 / 2)))
    encoding = k_reciprocal_encoding(columns, reciprocal, half_reciprocal, row_max, chunk_rows, verbose)
    encoding = local_query_expansion(encoding, ranks, k2)
    nq = columns.num_query
    jaccard = np.empty((nq, columns.num_gallery), dtype=np.float32)
    for start, stop, block in jaccard_blocks(encoding[:nq], encoding[nq:], verbose=verbose):
        jaccard[start:stop] = block
    if lambda_value == 0:
        return jaccard
    jaccard *= 1.0 - lambda_value
    for start, stop in _blocks(columns, chunk_rows):
        if start >= nq:
            break
        original = columns.block(start, stop)[:, nq:] / row_max[start:stop, None]
        jaccard[start:stop] += lambda_value * original
    return jaccard


def _check_finite(name, values):
    """NaN would surface later as a puzzling "no positive distance"."""
    if not np.issubdtype(values.dtype, np.number) or not np.isfinite(values).all():
        bad = "non-numbers" if not np.issubdtype(values.dtype, np.number) else \
            f"{values.size - np.count_nonzero(np.isfinite(values))} NaN/inf values"
        raise ValueError(f"Expected finite numbers in {name}. Received: {name} with {bad}")


def re_ranking(q_g_dist, q_q_dist, g_g_dist, k1=20, k2=6, lambda_value=0.3, verbose=False):
    """Re-ranked `(num_query, num_gallery)` distances (k-reciprocal encoding).

    Args:
        q_g_dist, q_q_dist, g_g_dist: query x gallery, query x query and
            gallery x gallery distances (arrays or `np.memmap`s); squared
            Euclidean on L2-normalised features reproduces PASS.
        k1, k2, lambda_value: the paper's parameters (20, 6, 0.3).
        verbose: progress bars.
    """
    q_g_dist, q_q_dist, g_g_dist = (np.asarray(d) for d in (q_g_dist, q_q_dist, g_g_dist))
    for name, matrix in (("q_g_dist", q_g_dist), ("q_q_dist", q_q_dist), ("g_g_dist", g_g_dist)):
        _check_finite(name, matrix)
    if q_g_dist.ndim != 2:
        raise ValueError(f"Expected a 2-D q_g_dist. Received: q_g_dist.shape={q_g_dist.shape}")
    nq, ng = q_g_dist.shape
    if q_q_dist.shape != (nq, nq) or g_g_dist.shape != (ng, ng):
        raise ValueError(
            f"Expected q_q_dist of shape ({nq}, {nq}) and g_g_dist of shape ({ng}, {ng}) "
            f"to match q_g_dist {q_g_dist.shape}. Received: q_q_dist.shape="
            f"{q_q_dist.shape}, g_g_dist.shape={g_g_dist.shape}"
        )
    return _re_rank(_MatrixColumns(q_g_dist, q_q_dist, g_g_dist), k1, k2, lambda_value, verbose)


def re_ranking_features(query_features, gallery_features, k1=20, k2=6, lambda_value=0.3,
                        verbose=False):
    """`re_ranking` on squared Euclidean distances of the given features,
    computed block by block (no N x N matrix is ever held)."""
    query_features, gallery_features = np.asarray(query_features), np.asarray(gallery_features)
    if query_features.ndim != 2 or gallery_features.shape[1:] != query_features.shape[1:]:
        raise ValueError(
            "Expected 2-D query and gallery features of equal width. Received: "
            f"{query_features.shape} and {gallery_features.shape}"
        )
    _check_finite("query_features", query_features)
    _check_finite("gallery_features", gallery_features)
    return _re_rank(FeatureDistances(query_features, gallery_features), k1, k2, lambda_value, verbose)
