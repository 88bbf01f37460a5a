"""Market-1501 protocol ranking metrics: CMC, mAP and mINP, in NumPy.

For each query, gallery images with the same person id AND the same camera
are removed, and so are junk images (id -1); CMC and AP are computed over
the rest and queries without a valid match are skipped. Distractors (id 0)
are ordinary negatives.

Speed and memory: queries are processed in chunks of rows, and a row is
ranked only as far as its last true match: the valid items no farther than
it are gathered and sorted (exactly, in the input dtype), which for a
trained model is a few percent of the gallery. Where that prefix is long
(e.g. random features) each row is sorted once as uint64 keys
`(order-preserving float32 distance bits << 32) | (gallery index << 2) |
status` instead, so the sorted statuses sit in the low bits with no argsort
or gathers; float64 rows whose distinct values collide in float32 fall back
to an exact stable argsort. Either way ties are broken by gallery index.
"""

import numpy as np

from keras_pass.reid.progress import progress

AP_METHODS = ("uninterpolated", "devkit_trapezoidal")
_CHUNK_ELEMENTS = 1 << 22


def _validate_ids(name, values, length=None):
    values = np.asarray(values)
    if values.ndim != 1 or (length is not None and len(values) != length):
        expected = "a 1-D array" + (f" of length {length}" if length is not None else "")
        raise ValueError(f"Expected {name} as {expected}. Received: {name}.shape={values.shape}")
    if not np.issubdtype(values.dtype, np.integer):
        raise ValueError(f"Expected integer {name}. Received: dtype={values.dtype}")
    return values.astype(np.int64)


def _sortable_bits(values):
    """float32 -> uint32 whose unsigned order is the float order (-0 == +0)."""
    bits = (values + np.float32(0.0)).view(np.uint32)
    flip = (bits >> np.uint32(31)) * np.uint32(0x7FFFFFFF) | np.uint32(0x80000000)
    return bits ^ flip


class RankAccumulator:
    """Accumulates per-query ranking results over chunks of query rows.

    Args:
        gallery_pids, gallery_camids: 1-D integer arrays.
        max_rank: length of the CMC curve.
        ap_method: `"uninterpolated"` (mean over hits of precision at the
            hit; torchreid/fast-reid/official PASS) or `"devkit_trapezoidal"`
            (the Market-1501 MATLAB devkit: trapezoid between the precision
            before and at each hit; about one point lower).
    """

    def __init__(self, gallery_pids, gallery_camids, max_rank=50, ap_method="uninterpolated"):
        self.gallery_pids = _validate_ids("gallery_pids", gallery_pids)
        self.gallery_camids = _validate_ids(
            "gallery_camids", gallery_camids, len(self.gallery_pids))
        if isinstance(max_rank, bool) or not isinstance(max_rank, (int, np.integer)) or max_rank < 1:
            raise ValueError(f"Expected an integer max_rank >= 1. Received: max_rank={max_rank}")
        if ap_method not in AP_METHODS:
            raise ValueError(f"Expected ap_method in {AP_METHODS}. Received: ap_method={ap_method}")
        num_gallery = len(self.gallery_pids)
        if not 0 < num_gallery < 2**30:
            raise ValueError(
                f"Expected 1 <= gallery size < 2**30. Received: {num_gallery} gallery items"
            )
        self.max_rank = int(max_rank)
        self.ap_method = ap_method
        self._junk = self.gallery_pids == -1
        self._first_ranks, self._ap, self._inp = [], [], []

    @property
    def num_gallery(self):
        return len(self.gallery_pids)

    def _statuses(self, query_pids, query_camids):
        """0 = ignored (junk / same id+camera), 1 = valid negative, 3 = hit."""
        match = self.gallery_pids[None] == query_pids[:, None]
        ignored = (match & (self.gallery_camids[None] == query_camids[:, None])) | self._junk
        valid = ~ignored
        return valid.view(np.uint8) + np.left_shift((match & valid).view(np.uint8), 1)

    def update(self, distances, query_pids, query_camids):
        """Adds a `(num_queries_in_chunk, num_gallery)` block of distances."""
        distances = np.asarray(distances)
        if distances.ndim != 2 or distances.shape != (len(query_pids), self.num_gallery):
            raise ValueError(
                f"Expected a distance block of shape ({len(query_pids)}, {self.num_gallery}). "
                f"Received: shape={distances.shape}"
            )
        if not np.issubdtype(distances.dtype, np.number) or not np.isfinite(distances).all():
            raise ValueError("Expected finite numeric distances. Received: NaN, inf or non-numbers")
        status = self._statuses(query_pids, query_camids)
        hit_rows, ranks = _hit_ranks(distances, status)
        self._accumulate(hit_rows, ranks, len(distances))

    def _accumulate(self, hit_rows, rank, num_rows):
        num_hits = np.bincount(hit_rows, minlength=num_rows)
        row_start = np.cumsum(num_hits) - num_hits
        k = np.arange(len(hit_rows)) - row_start[hit_rows] + 1.0
        precision = k / rank
        if self.ap_method == "devkit_trapezoidal":
            before = np.where(rank > 1, (k - 1) / np.maximum(rank - 1, 1), 1.0)
            precision = (before + precision) / 2
        has_hit = num_hits > 0
        safe_hits = np.maximum(num_hits, 1)
        ap = np.bincount(hit_rows, weights=precision, minlength=num_rows) / safe_hits
        first = np.full(num_rows, np.inf)
        last = np.full(num_rows, np.inf)
        first[hit_rows[k == 1]] = rank[k == 1]
        is_last = k == num_hits[hit_rows]
        last[hit_rows[is_last]] = rank[is_last]
        self._first_ranks.append(first)
        self._ap.append(np.where(has_hit, ap, np.nan))
        self._inp.append(np.where(has_hit, num_hits / last, np.nan))

    def result(self):
        """`{"cmc", "mAP", "mINP", "num_valid_queries", "query_ap"}`.

        `cmc[r]` is the fraction of valid queries with a true match within
        the top r + 1; `query_ap` has NaN for skipped queries.
        """
        first = np.concatenate(self._first_ranks) if self._first_ranks else np.zeros(0)
        valid = np.isfinite(first)
        num_valid = int(valid.sum())
        if num_valid == 0:
            raise ValueError(
                "Expected at least one query with a valid gallery match (same id, "
                "another camera). Received: none; check ids, cameras and the split."
            )
        ranks = first[valid].astype(np.int64)
        counts = np.bincount(np.minimum(ranks, self.max_rank + 1), minlength=self.max_rank + 2)
        cmc = np.cumsum(counts[1 : self.max_rank + 1]) / num_valid
        query_ap = np.concatenate(self._ap)
        return {
            "cmc": cmc,
            "mAP": float(np.nanmean(query_ap)),
            "mINP": float(np.nanmean(np.concatenate(self._inp))),
            "num_valid_queries": num_valid,
            "query_ap": query_ap,
        }


# A block is ranked by sorting only the valid items up to each row's last hit
# (all that CMC, AP and INP depend on) unless they are more than this share of
# the block, where one full row sort is cheaper.
_PREFIX_MAX_SHARE = 0.2


def _hit_ranks(distances, status):
    """(row, rank among the row's valid items) of every hit, row-major and
    rank-ascending within a row; ties are broken by gallery index."""
    if not np.issubdtype(distances.dtype, np.floating):
        distances = distances.astype(np.float64)
    hit_rows, hit_cols = np.nonzero(status == 3)  # row-major
    last_hit = np.full(len(distances), -np.inf, dtype=distances.dtype)
    if len(hit_rows):
        rows_with_hits, first_hit = np.unique(hit_rows, return_index=True)
        last_hit[rows_with_hits] = np.maximum.reduceat(distances[hit_rows, hit_cols], first_hit)
    candidates = distances <= last_hit[:, None]
    candidates &= status != 0
    if np.count_nonzero(candidates) <= _PREFIX_MAX_SHARE * candidates.size:
        return _ranks_in_prefix(distances, status, candidates)
    return _ranks_by_row_sort(distances, status)


def _ranks_in_prefix(distances, status, candidates):
    flat = np.flatnonzero(candidates)  # row-major: within a row, by gallery index
    rows = flat // candidates.shape[1]
    values = distances.ravel()[flat]
    if values.dtype == np.float32:
        keys = (rows.astype(np.uint64) << np.uint64(32)) | _sortable_bits(values)
        order = np.argsort(keys, kind="stable")
    else:  # exact in the input dtype
        order = np.lexsort((flat, values, rows))
    flat, rows = flat[order], rows[order]
    per_row = np.bincount(rows, minlength=len(candidates))
    position = np.arange(len(flat)) - (np.cumsum(per_row) - per_row)[rows] + 1
    is_hit = status.ravel()[flat] == 3
    return rows[is_hit], position[is_hit].astype(np.float64)


def _ranks_by_row_sort(distances, status):
    """One sort per row of uint64 keys `(distance bits << 32) | (gallery
    index << 2) | status`, so the sorted statuses sit in the low bits."""
    single = np.asarray(distances, dtype=np.float32)
    keys = np.empty(single.shape, np.uint64)
    words = keys.view(np.uint32).reshape(*single.shape, 2)  # little-endian: (low, high)
    np.bitwise_or(np.arange(single.shape[1], dtype=np.uint32) << np.uint32(2), status, out=words[..., 0])
    words[..., 1] = _sortable_bits(single)
    keys.sort(axis=1)
    sorted_status = keys.view(np.uint8)[..., ::8] & np.uint8(3)
    if distances.dtype != np.float32:
        _fix_float32_collisions(distances, keys, status, sorted_status)
    num_cols = sorted_status.shape[1]
    hit_rows, hit_cols = np.nonzero(sorted_status == 3)
    ignored = np.flatnonzero(sorted_status.ravel() == 0)
    # Rank among valid items = position + 1 - ignored items before it.
    ignored_before = np.searchsorted(ignored, hit_rows * num_cols + hit_cols)
    ignored_before -= np.searchsorted(ignored, hit_rows * num_cols)
    return hit_rows, (hit_cols + 1 - ignored_before).astype(np.float64)


def _fix_float32_collisions(distances, keys, status, sorted_status):
    """Rows where distinct values became equal in float32: exact re-sort."""
    same_bits = (keys[:, 1:] >> np.uint64(32)) == (keys[:, :-1] >> np.uint64(32))
    rows, cols = np.nonzero(same_bits)
    if not len(rows):
        return
    index = (keys >> np.uint64(2)) & np.uint64(2**30 - 1)
    left = distances[rows, index[rows, cols].astype(np.int64)]
    right = distances[rows, index[rows, cols + 1].astype(np.int64)]
    for row in np.unique(rows[left != right]):
        order = np.argsort(distances[row], kind="stable")
        sorted_status[row] = status[row, order]


def _chunk_rows(num_gallery, chunk_size):
    if chunk_size is None:
        return max(1, _CHUNK_ELEMENTS // max(num_gallery, 1))
    if int(chunk_size) < 1:
        raise ValueError(f"Expected chunk_size >= 1. Received: chunk_size={chunk_size}")
    return int(chunk_size)


def evaluate_rank(
    distmat,
    query_pids,
    gallery_pids,
    query_camids,
    gallery_camids,
    max_rank=50,
    ap_method="uninterpolated",
    chunk_size=None,
    verbose=False,
):
    """CMC, mAP and mINP under the Market-1501 protocol.

    Args:
        distmat: `(num_query, num_gallery)` distances (smaller = closer);
            any array supporting row slicing (e.g. `np.memmap`).
        query_pids, gallery_pids, query_camids, gallery_camids: 1-D ints.
        max_rank: length of the returned CMC curve.
        ap_method: `"uninterpolated"` or `"devkit_trapezoidal"`.
        chunk_size: query rows per chunk (default: ~4M distances per chunk).
        verbose: show a progress bar.

    Returns:
        Dict with `cmc` (length `max_rank`), `mAP`, `mINP` (fractions in
        [0, 1]), `num_valid_queries` and the per-query `query_ap`.
    """
    query_pids = _validate_ids("query_pids", query_pids)
    query_camids = _validate_ids("query_camids", query_camids, len(query_pids))
    accumulator = RankAccumulator(gallery_pids, gallery_camids, max_rank, ap_method)
    if not hasattr(distmat, "shape"):  # a list of lists: rows slice the same in NumPy
        try:
            distmat = np.asarray(distmat, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError("Expected distmat a (num_query, num_gallery) array of numbers. "
                             f"Received: a ragged or non-numeric {type(distmat).__name__}") from None
    shape = getattr(distmat, "shape", None)
    if len(shape) != 2 or tuple(shape) != (len(query_pids), accumulator.num_gallery):
        raise ValueError(
            f"Expected distmat of shape (num_query, num_gallery) = ({len(query_pids)}, "
            f"{accumulator.num_gallery}). Received: distmat.shape={shape}"
        )
    step = _chunk_rows(accumulator.num_gallery, chunk_size)
    for start in progress(range(0, len(query_pids), step), verbose, "evaluating"):
        stop = start + step
        accumulator.update(distmat[start:stop], query_pids[start:stop], query_camids[start:stop])
    return accumulator.result()


def l2_normalize(features, epsilon=1e-12):
    features = np.asarray(features, dtype=np.float32)
    return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), epsilon)


def pairwise_distance(query_features, gallery_features, metric="sqeuclidean"):
    """`(len(query), len(gallery))` distances, float32.

    `sqeuclidean` (the official PASS test distance, on L2-normalised
    features), `euclidean` or `cosine` (1 - cosine similarity).
    """
    return _GalleryDistances(gallery_features, metric)(query_features)


class _GalleryDistances:
    """Distances to a fixed gallery as ONE matmul of augmented features:
    `[-2q, |q|^2, 1] . [g, 1, |g|^2] = |q - g|^2` (cosine: `[-q, 1] . [g, 1]`),
    so no pass over the (query x gallery) block but one clamp at zero."""

    def __init__(self, gallery_features, metric):
        if metric not in ("sqeuclidean", "euclidean", "cosine"):
            raise ValueError(
                f"Expected metric in ('sqeuclidean', 'euclidean', 'cosine'). Received: metric={metric}"
            )
        gallery = np.asarray(gallery_features, dtype=np.float32)
        if gallery.ndim != 2:
            raise ValueError(f"Expected 2-D gallery features. Received: gallery.shape={gallery.shape}")
        self.metric, self.width = metric, gallery.shape[1]
        ones = np.ones((len(gallery), 1), np.float32)
        if metric == "cosine":
            self.gallery_t = np.concatenate([l2_normalize(gallery), ones], 1).T.copy()
        else:
            squares = (gallery**2).sum(1, keepdims=True)
            self.gallery_t = np.concatenate([gallery, ones, squares], 1).T.copy()

    def __call__(self, query_features):
        query = np.asarray(query_features, dtype=np.float32)
        if query.ndim != 2 or query.shape[1] != self.width:
            raise ValueError(
                "Expected 2-D query and gallery features of equal width. Received: "
                f"query.shape={query.shape}, gallery width={self.width}"
            )
        ones = np.ones((len(query), 1), np.float32)
        if self.metric == "cosine":
            return np.concatenate([-l2_normalize(query), ones], 1) @ self.gallery_t
        squares = (query**2).sum(1, keepdims=True)
        distances = np.concatenate([-2.0 * query, squares, ones], 1) @ self.gallery_t
        np.maximum(distances, 0.0, out=distances)
        return np.sqrt(distances, out=distances) if self.metric == "euclidean" else distances


def evaluate_features(
    query_features,
    gallery_features,
    query_pids,
    gallery_pids,
    query_camids,
    gallery_camids,
    metric="sqeuclidean",
    max_rank=50,
    ap_method="uninterpolated",
    chunk_size=None,
    verbose=False,
):
    """`evaluate_rank` on distances computed chunk by chunk from features,
    so the full distance matrix never exists in memory."""
    query_pids = _validate_ids("query_pids", query_pids, len(query_features))
    query_camids = _validate_ids("query_camids", query_camids, len(query_pids))
    accumulator = RankAccumulator(gallery_pids, gallery_camids, max_rank, ap_method)
    if len(gallery_features) != accumulator.num_gallery:
        raise ValueError(
            f"Expected {accumulator.num_gallery} gallery features (one per gallery id). "
            f"Received: {len(gallery_features)}"
        )
    distances_to_gallery = _GalleryDistances(gallery_features, metric)
    step = _chunk_rows(accumulator.num_gallery, chunk_size)
    for start in progress(range(0, len(query_pids), step), verbose, "evaluating"):
        stop = start + step
        block = distances_to_gallery(query_features[start:stop])
        accumulator.update(block, query_pids[start:stop], query_camids[start:stop])
    return accumulator.result()


def alpha_query_expansion(query_features, gallery_features, top_k=10, alpha=3.0):
    """alpha-QE (Radenovic et al., TPAMI 2018) of the query features.

    Each (L2-normalised) query becomes the L2-normalised sum of itself and
    its `top_k` nearest gallery features, weighted by `max(cos, 0) ** alpha`.
    The gallery is unchanged.
    """
    query = l2_normalize(query_features)
    gallery = l2_normalize(gallery_features)
    if top_k < 1 or top_k > len(gallery):
        raise ValueError(
            f"Expected 1 <= top_k <= {len(gallery)} (gallery size). Received: top_k={top_k}"
        )
    expanded = np.empty_like(query)
    step = _chunk_rows(len(gallery), None)
    for start in range(0, len(query), step):
        similarity = query[start : start + step] @ gallery.T
        neighbours = np.argpartition(-similarity, top_k - 1, axis=1)[:, :top_k]
        weights = np.maximum(np.take_along_axis(similarity, neighbours, 1), 0.0) ** alpha
        summed = query[start : start + step] + np.einsum("qk,qkd->qd", weights, gallery[neighbours])
        expanded[start : start + step] = summed
    return l2_normalize(expanded)


def format_results(results, ranks=(1, 5, 10), title=None):
    """A small table: mAP, mINP and the requested CMC ranks, in percent."""
    lines = [title] if title else []
    lines.append(f"mAP: {100 * results['mAP']:.1f}%  mINP: {100 * results['mINP']:.1f}%")
    for r in ranks:
        if r <= len(results["cmc"]):
            lines.append(f"CMC Rank-{r:<3}: {100 * results['cmc'][r - 1]:.1f}%")
    lines.append(f"valid queries: {results['num_valid_queries']}")
    return "\n".join(lines)


def bootstrap_interval(values, num_samples=2000, confidence=0.95, seed=0):
    """Percentile interval of the mean of `values` (e.g. per-query AP, or the
    per-query difference of two models' APs on the same queries) when the
    queries are resampled with replacement; NaN entries (skipped queries)
    are dropped first."""
    values = np.asarray(values, np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ValueError("Expected at least one finite value. Received: none")
    rng = np.random.default_rng(seed)
    means = values[rng.integers(len(values), size=(num_samples, len(values)))].mean(axis=1)
    tail = 100 * (1 - confidence) / 2
    return float(np.percentile(means, tail)), float(np.percentile(means, 100 - tail))
