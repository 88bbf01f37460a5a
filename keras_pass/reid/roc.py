"""Same-person verification: TPR at fixed FPR and the distance thresholds.

Every (query, gallery) pair is a verification trial, as fast-reid's ROC:
positive when the ids agree, negative otherwise; pairs the ranking protocol
ignores (junk id -1, same id seen by the same camera) are left out. A pair is
accepted as the same person when its distance is below the threshold.
"""

import numpy as np

FALSE_POSITIVE_RATES = (1e-4, 1e-3, 1e-2)


def verification_distances(distances, query_pids, gallery_pids, query_camids, gallery_camids):
    """(positive, negative) distances of the valid pairs, as 1-D arrays."""
    distances = np.asarray(distances)
    query_pids, gallery_pids = np.asarray(query_pids), np.asarray(gallery_pids)
    if distances.shape != (len(query_pids), len(gallery_pids)):
        raise ValueError(f"Expected distances of shape {(len(query_pids), len(gallery_pids))}. "
                         f"Received: distances.shape={distances.shape}")
    same_id = query_pids[:, None] == gallery_pids[None, :]
    same_camera = np.asarray(query_camids)[:, None] == np.asarray(gallery_camids)[None, :]
    valid = (gallery_pids[None, :] != -1) & ~(same_id & same_camera)
    return distances[valid & same_id], distances[valid & ~same_id]


def tpr_at_fpr(positive, negative, false_positive_rates=FALSE_POSITIVE_RATES):
    """`{fpr: (tpr, threshold)}`: accepting `distance < threshold` lets at
    most `fpr` of the negative pairs through and this share of the positives.

    The threshold is the `floor(fpr * N)`-th smallest negative distance
    (0-based), the largest one meeting the rate.
    """
    positive, negative = np.sort(np.asarray(positive, np.float64)), np.sort(np.asarray(negative, np.float64))
    if positive.size == 0 or negative.size == 0:
        raise ValueError("Expected positive and negative pairs. Received: "
                         f"{positive.size} positive, {negative.size} negative")
    results = {}
    for rate in false_positive_rates:
        if not 0 < rate < 1:
            raise ValueError(f"Expected false positive rates in (0, 1). Received: fpr={rate}")
        accepted_negatives = int(np.floor(rate * negative.size))
        threshold = negative[accepted_negatives] if accepted_negatives < negative.size else np.inf
        tpr = np.searchsorted(positive, threshold, side="left") / positive.size
        results[rate] = (float(tpr), float(threshold))
    return results


def format_roc(results):
    return "\n".join(f"TPR@FPR={rate:g}: {100 * tpr:5.1f}%  (same person if distance < {threshold:.4g})"
                     for rate, (tpr, threshold) in results.items())
