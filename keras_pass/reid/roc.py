"""Same-person verification: TPR at fixed FPR and the distance thresholds.

Every (query, gallery) pair is a verification trial, as fast-reid's ROC:
positive when the ids agree, negative otherwise; pairs the ranking protocol
ignores (junk id -1, same id seen by the same camera) are left out. A pair is
accepted as the same person when its distance is below the threshold.
"""

import numpy as np

FALSE_POSITIVE_RATES = (1e-4, 1e-3, 1e-2)


def _pair_masks(query_pids, gallery_pids, query_camids, gallery_camids):
    """(positive, negative) masks of the valid (query, gallery) pairs."""
    query_pids, gallery_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    same_id = query_pids[:, None] == gallery_pids[None, :]
    same_camera = np.asarray(query_camids)[:, None] == np.asarray(gallery_camids)[None, :]
    valid = (gallery_pids[None, :] != -1) & ~(same_id & same_camera)
    return valid & same_id, valid & ~same_id


def verification_distances(distances, query_pids, gallery_pids, query_camids, gallery_camids):
    """(positive, negative) distances of the valid pairs, as 1-D arrays."""
    distances = np.asarray(distances)
    if distances.shape != (len(query_pids), len(gallery_pids)):
        raise ValueError(f"Expected distances of shape {(len(query_pids), len(gallery_pids))}. "
                         f"Received: distances.shape={distances.shape}")
    positive, negative = _pair_masks(query_pids, gallery_pids, query_camids, gallery_camids)
    return distances[positive], distances[negative]


def blockwise_tpr_at_fpr(query_distances, query_pids, gallery_pids, query_camids, gallery_camids,
                         false_positive_rates=FALSE_POSITIVE_RATES, block_size=1024):
    """`tpr_at_fpr` of every (query, gallery) pair without the whole matrix
    of pairs in memory: `query_distances(start, stop)` gives the distances
    of queries `start:stop` to the gallery; only the positives and the
    smallest `max(fpr) x N` negatives are kept."""
    ids = [np.asarray(v) for v in (query_pids, gallery_pids, query_camids, gallery_camids)]
    blocks = [slice(start, start + block_size) for start in range(0, len(ids[0]), block_size)]
    num_negatives = sum(int(_pair_masks(ids[0][b], ids[1], ids[2][b], ids[3])[1].sum()) for b in blocks)
    keep = int(np.floor(max(false_positive_rates) * num_negatives)) + 1
    positives, smallest = [], np.zeros(0)
    for b in blocks:
        positive, negative = verification_distances(
            query_distances(b.start, min(b.stop, len(ids[0]))), ids[0][b], ids[1], ids[2][b], ids[3])
        positives.append(positive)
        smallest = np.concatenate([smallest, negative])
        if smallest.size > keep:
            smallest = np.partition(smallest, keep - 1)[:keep]
    return tpr_at_fpr(np.concatenate(positives or [np.zeros(0)]), smallest, false_positive_rates,
                      num_negatives=num_negatives)


def tpr_at_fpr(positive, negative, false_positive_rates=FALSE_POSITIVE_RATES, num_negatives=None):
    """`{fpr: (tpr, threshold)}`: accepting `distance < threshold` lets at
    most `fpr` of the negative pairs through and this share of the positives.

    The threshold is the `floor(fpr * N)`-th smallest negative distance
    (0-based), the largest one meeting the rate. `negative` may hold only
    the smallest negatives of `num_negatives` (N) in all.
    """
    positive, negative = np.sort(np.asarray(positive, np.float64)), np.sort(np.asarray(negative, np.float64))
    num_negatives = negative.size if num_negatives is None else num_negatives
    if positive.size == 0 or negative.size == 0:
        raise ValueError("Expected positive and negative pairs. Received: "
                         f"{positive.size} positive, {negative.size} negative")
    results = {}
    for rate in false_positive_rates:
        if not 0 < rate < 1:
            raise ValueError(f"Expected false positive rates in (0, 1). Received: fpr={rate}")
        accepted_negatives = int(np.floor(rate * num_negatives))
        if accepted_negatives >= negative.size and negative.size < num_negatives:
            raise ValueError(f"Expected the smallest {accepted_negatives + 1} negatives for fpr={rate}. "
                             f"Received: {negative.size} of {num_negatives}")
        threshold = negative[accepted_negatives] if accepted_negatives < negative.size else np.inf
        tpr = np.searchsorted(positive, threshold, side="left") / positive.size
        results[rate] = (float(tpr), float(threshold))
    return results


def format_roc(results):
    return "\n".join(f"TPR@FPR={rate:g}: {100 * tpr:5.1f}%  (same person if distance < {threshold:.4g})"
                     for rate, (tpr, threshold) in results.items())
