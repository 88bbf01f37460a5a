"""Do the part tokens tell parts apart? Two functional measures.

`part_probe`: a linear probe per token ([CLS], [PART_1..L]) per attribute,
fit on one image set and tested on another, gives a token x attribute
accuracy table; the locality score is how many points better each
[PART_i] predicts the attributes of its own region than the other [PART]
tokens do (0: every part token holds the same information; the attention
share of `models.attention` says where a token looks, this says what it
knows). `sibling_map`: retrieval mAP with each query's gallery restricted
to its own images and those of its "siblings" (people who differ in one
part), the fine-grained case part features are for.

Not in the release: PASS reports neither; they need the part attributes
of generated people (`keras_pass.data.synthetic`).
"""

import numpy as np

from keras_pass.backend import multihost
from keras_pass.models.image_converter import image_converter_of
from keras_pass.reid.data import make_test_dataset
from keras_pass.reid.evaluation import evaluate_rank, pairwise_distance


def token_names(num_parts):
    return ["CLS"] + [f"PART{i + 1}" for i in range(num_parts)]


def token_features(backbone, paths, batch_size=128):
    """(len(paths), 1 + L, D) float32: the [CLS] and [PART] outputs of a
    backbone on image files, with its own preprocessing."""
    converter = image_converter_of(backbone)
    batches = make_test_dataset(list(paths), tuple(backbone.image_shape[:2]), batch_size,
                                converter.mean, converter.std).as_numpy_iterator()
    tokens = []
    for images in batches:
        outputs = multihost.predict_on_batch(backbone, images)
        cls, parts = (np.asarray(outputs[key], np.float32) for key in ("cls", "parts"))
        tokens.append(np.concatenate([cls[:, None], parts], axis=1))
    return np.concatenate(tokens)


def probe_accuracy(train_x, train_y, test_x, test_y, ridge=10.0):
    """Test accuracy of a ridge-regression classifier (one-hot targets,
    standardised features with the train statistics): a linear probe with
    a closed form, so the same on every backend and run."""
    classes = np.unique(train_y)
    mean, std = train_x.mean(0), train_x.std(0) + 1e-6

    def design(x):
        x = (np.asarray(x, np.float64) - mean) / std
        return np.concatenate([x, np.ones((len(x), 1))], axis=1)

    x = design(train_x)
    penalty = ridge * np.eye(x.shape[1])
    penalty[-1, -1] = 0.0  # the bias is not shrunk
    targets = (np.asarray(train_y)[:, None] == classes[None]).astype(np.float64)
    weights = np.linalg.solve(x.T @ x + penalty, x.T @ targets)
    predicted = classes[np.argmax(design(test_x) @ weights, axis=1)]
    return float(np.mean(predicted == np.asarray(test_y)))


def majority_accuracy(train_y, test_y):
    """Chance: always answering the train set's most frequent value."""
    values, counts = np.unique(train_y, return_counts=True)
    return float(np.mean(np.asarray(test_y) == values[np.argmax(counts)]))


def locality_score(accuracy, attribute_regions):
    """Mean over regions of: [PART_i]'s accuracy on region i's attributes
    minus the mean of the other [PART] tokens' on them, in points.

    `accuracy`: (1 + L, A), rows [CLS, PART_1..L]; `attribute_regions`: the
    0-based region of each attribute (None: counted in no region)."""
    accuracy = np.asarray(accuracy)
    parts = accuracy[1:]
    gains = []
    for region in range(len(parts)):
        columns = [a for a, r in enumerate(attribute_regions) if r == region]
        if not columns:
            continue
        others = np.delete(parts, region, axis=0)[:, columns].mean(axis=0)
        gains.append(np.mean(parts[region, columns] - others))
    if not gains:
        raise ValueError("Expected at least one attribute assigned to a region. "
                         f"Received: attribute_regions={list(attribute_regions)}")
    return float(100 * np.mean(gains))


def nearest_regions(spans, region_bounds):
    """Per (top, bottom) span, the index of the region whose centre is
    nearest the span's centre (heights as fractions of the image)."""
    centres = np.array([(top + bottom) / 2 for top, bottom in region_bounds])
    return [int(np.argmin(np.abs(centres - (top + bottom) / 2))) for top, bottom in spans]


def part_probe(train_tokens, train_labels, test_tokens, test_labels, attribute_regions):
    """The token x attribute table and locality score.

    `*_tokens`: (N, 1 + L, D); `*_labels`: {attribute: (N,) ints}, the
    same attributes in both; `attribute_regions`: {attribute: region or None}.
    """
    if set(train_labels) != set(test_labels) or set(train_labels) != set(attribute_regions):
        raise ValueError("Expected the same attributes in train_labels, test_labels and "
                         f"attribute_regions. Received: {sorted(train_labels)}, {sorted(test_labels)}, "
                         f"{sorted(attribute_regions)}")
    attributes = list(train_labels)
    accuracy = [[probe_accuracy(train_tokens[:, t], train_labels[a], test_tokens[:, t], test_labels[a])
                 for a in attributes] for t in range(train_tokens.shape[1])]
    return {
        "tokens": token_names(train_tokens.shape[1] - 1),
        "attributes": attributes,
        "regions": [attribute_regions[a] for a in attributes],
        "accuracy": accuracy,
        "chance": [majority_accuracy(train_labels[a], test_labels[a]) for a in attributes],
        "locality": locality_score(accuracy, [attribute_regions[a] for a in attributes]),
    }


def sibling_map(query_features, gallery_features, query, gallery, sibling_pids):
    """mAP over the queries that have a sibling in the gallery, each ranked
    against its own and its siblings' gallery images only (Market protocol:
    same-camera matches and junk are still ignored).

    `query`/`gallery`: records with `pids` and `camids`; `sibling_pids`:
    {pid: set of sibling pids}. Returns {"mAP", "num_queries", "query_ap"}."""
    gallery_pids = np.asarray(gallery.pids)
    allowed = np.stack([np.isin(gallery_pids, [pid, *sibling_pids.get(int(pid), ())])
                        & (gallery_pids > 0) for pid in query.pids])
    has_sibling = np.array([np.any(row & (gallery_pids != pid)) for row, pid in zip(allowed, query.pids)])
    if not has_sibling.any():
        return {"mAP": float("nan"), "num_queries": 0, "query_ap": []}
    distances = pairwise_distance(query_features[has_sibling], gallery_features)
    # Farther than every allowed image: ranked after all hits, so no effect on AP.
    distances[~allowed[has_sibling]] = distances.max() + 1.0
    results = evaluate_rank(distances, np.asarray(query.pids)[has_sibling], gallery_pids,
                            np.asarray(query.camids)[has_sibling], gallery.camids)
    query_ap = [float(v) for v in results["query_ap"] if np.isfinite(v)]
    return {"mAP": float(np.mean(query_ap)), "num_queries": len(query_ap), "query_ap": query_ap}
