"""Split hygiene: person ids or images that a benchmark's train set shares
with its query or gallery set make its mAP meaningless, so they are found
and reported before training (`check_split_overlap`).

Shared images are same content (equal bytes), not same name: a copied file
may be renamed, and equal names in different splits are routine in the
generic `<pid>/<camid>_*.jpg` layout. Only files whose size occurs on both
sides are hashed, so a sound benchmark costs one `stat` a file (Market-1501's
published splits are distinct files and disjoint ids). Market-1501's own
markers are not ids: junk (-1) is dropped when the splits are read and its
distractors (0000) are never counted as shared.
"""

import hashlib
import os

import numpy as np

DISTRACTOR_PID = 0  # Market-1501's "not a person of the benchmark"
_EXAMPLES = 3


def shared_ids(dataset):
    """Sorted person ids present in the train set and in query or gallery."""
    train = dataset.train.original_pids if dataset.train.original_pids is not None else dataset.train.pids
    test = set(np.concatenate([dataset.query.pids, dataset.gallery.pids]).tolist())
    if dataset.name == "Market-1501":
        test.discard(DISTRACTOR_PID)
    return sorted(set(np.unique(train).tolist()) & test)


def _digest(path):
    with open(path, "rb") as handle:
        return hashlib.sha1(handle.read()).digest()


def _sizes(paths):
    sizes = {}
    for path in paths:
        try:
            sizes.setdefault(os.path.getsize(path), []).append(path)
        except OSError:  # unreadable files are the image checks' business
            continue
    return sizes


def shared_images(dataset):
    """`[(train path, query/gallery path)]` of files with equal bytes."""
    train_sizes = _sizes(dataset.train.paths)
    test_sizes = _sizes(dataset.query.paths + dataset.gallery.paths)
    pairs = []
    for size in sorted(set(train_sizes) & set(test_sizes)):
        by_digest = {}
        for path in train_sizes[size]:
            by_digest.setdefault(_digest(path), path)
        pairs += [(by_digest[d], path) for path in test_sizes[size] if (d := _digest(path)) in by_digest]
    return sorted(pairs, key=lambda pair: pair[1])


def describe_overlap(ids, pairs):
    parts = []
    if ids:
        more = " ..." if len(ids) > _EXAMPLES else ""
        parts.append(f"{len(ids)} person ids (e.g. {', '.join(map(str, ids[:_EXAMPLES]))}{more})")
    if pairs:
        examples = "; ".join(f"{test} = {train}" for train, test in pairs[:_EXAMPLES])
        parts.append(f"{len(pairs)} query/gallery images equal to train images (e.g. {examples})")
    return " and ".join(parts)


def check_split_overlap(dataset, allow_overlap=False, verbose=True):
    """ValueError when `dataset`'s train set shares person ids or images
    with its query or gallery set, unless `allow_overlap` (then the counts
    and examples are printed and training goes on)."""
    ids, pairs = shared_ids(dataset), shared_images(dataset)
    if not ids and not pairs:
        return dataset
    found = f"{describe_overlap(ids, pairs)} in {dataset.root}"
    if not allow_overlap:
        raise ValueError("Expected train and query/gallery splits without shared person ids or images "
                         "(evaluation would be meaningless; allow_overlap, --allow_overlap, goes on). "
                         f"Received: {found}")
    if verbose:
        print(f"=> evaluating despite shared train and query/gallery data (allow_overlap): {found}")
    return dataset
