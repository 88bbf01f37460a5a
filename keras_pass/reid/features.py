"""Test features of image lists and the evaluation of a model on a split."""

import os

import numpy as np
import tensorflow as tf
from keras import ops

from keras_pass import io
from keras_pass.data.images import check_images, undecodable_error
from keras_pass.backend import multihost
from keras_pass.models.backbone import PASSBackbone, reid_feature
from keras_pass.models.image_converter import image_converter_of
from keras_pass.reid.data import make_test_dataset
from keras_pass.reid.datasets import ImageRecords
from keras_pass.reid.progress import progress_bar
from keras_pass.reid.evaluation import (
    alpha_query_expansion,
    evaluate_features,
    evaluate_rank,
    l2_normalize,
)
from keras_pass.reid.reranking import re_ranking_features


def embed_batch(model, images):
    """L2-normalised test features of one batch of normalised images."""
    if isinstance(model, PASSBackbone):  # a bare backbone: concat(CLS, mean PART)
        if tuple(images.shape[1:]) == tuple(model.image_shape):
            outputs = multihost.predict_on_batch(model, images)  # compiled, unlike encode()
            features = ops.convert_to_numpy(reid_feature(outputs))
        else:
            features = ops.convert_to_numpy(model.reid_features(images))
        return l2_normalize(features)
    return np.asarray(multihost.predict_on_batch(model, images))


def extract_features(model, paths, image_size=None, batch_size=128, verbose=True,
                     mean=None, std=None):
    """L2-normalised test features `(len(paths), dim)` of image files.

    `model` is a `ReIDModel` (its test feature) or a `PASSBackbone`
    (concat(CLS, mean(PART)), L2-normalised); `image_size` defaults to the
    backbone's native size. `mean`/`std` default to the model's own
    preprocessing (`image_converter_of`: a preset's saved statistics, 0.5/0.5
    for a fine-tuned model).
    """
    backbone = model if isinstance(model, PASSBackbone) else model.backbone
    converter = image_converter_of(model)
    mean = converter.mean if mean is None else mean
    std = converter.std if std is None else std
    image_size = tuple(image_size or backbone.image_shape[:2])
    paths = list(paths)
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"Expected batch_size an int >= 1. Received: batch_size={batch_size!r}")
    if not paths:
        raise ValueError("Expected at least one image path. Received: an empty list")
    check_images(paths)  # a skipped file would misalign features and paths
    bar = progress_bar(len(paths), "images") if verbose else None
    features, done = [], 0
    batches = make_test_dataset(paths, image_size, batch_size, mean, std).as_numpy_iterator()
    while done < len(paths):
        try:
            images = next(batches)
        except tf.errors.InvalidArgumentError as error:  # passed the header checks, failed to decode
            raise (undecodable_error(paths[done:done + batch_size]) or error) from None
        features.append(embed_batch(model, images))
        done += len(images)
        if bar is not None:
            bar.add(len(images))
    return np.concatenate(features).astype(np.float32)


def evaluate_model(model, query, gallery, image_size=None, batch_size=128, rerank=False,
                   query_expansion=False, max_rank=50, verbose=True, mean=None, std=None):
    """Extracts query/gallery features (ImageRecords) and evaluates them
    with squared Euclidean distances, optionally alpha-QE then re-ranking."""
    query_features = extract_features(model, query.paths, image_size, batch_size, verbose, mean, std)
    gallery_features = extract_features(model, gallery.paths, image_size, batch_size, verbose, mean, std)
    return evaluate_feature_sets(
        query_features, gallery_features, query, gallery, rerank, query_expansion, max_rank, verbose
    )


def evaluate_feature_sets(query_features, gallery_features, query, gallery, rerank=False,
                          query_expansion=False, max_rank=50, verbose=False):
    """Metrics of given features; `query`/`gallery` carry pids and camids."""
    if query_expansion:
        query_features = alpha_query_expansion(query_features, gallery_features)
    ids = (query.pids, gallery.pids, query.camids, gallery.camids)
    if rerank:
        distances = re_ranking_features(query_features, gallery_features, verbose=verbose)
        return evaluate_rank(distances, *ids, max_rank=max_rank, verbose=verbose)
    return evaluate_features(query_features, gallery_features, *ids, max_rank=max_rank,
                             verbose=verbose)


# === Feature sets on disk: <dir>/<split>_{features,pids,camids}.npy + _paths.txt ===

def save_feature_set(directory, split, features, records):
    """Writes one split's features, ids, cameras and image paths atomically."""
    base = os.path.join(directory, split)
    for suffix, values in (("features", features), ("pids", records.pids), ("camids", records.camids)):
        io.save_npy(f"{base}_{suffix}.npy", np.asarray(values))
    io.write_text(f"{base}_paths.txt", "".join(f"{p}\n" for p in records.paths))


def load_feature_set(directory, split, require_paths=False):
    """`(features, ImageRecords)` written by `save_feature_set`; paths are
    "" without a `<split>_paths.txt`, a ValueError if `require_paths`."""
    base = os.path.join(directory, split)
    missing = [f"{base}_{s}" for s in ("features.npy", "pids.npy", "camids.npy")
               if not os.path.isfile(f"{base}_{s}")]
    if missing:
        raise ValueError(
            f"Expected the feature files of split '{split}' (`keras-pass extract`"
            f" output). Received: missing {missing}"
        )
    features = np.load(f"{base}_features.npy")
    pids, camids = np.load(f"{base}_pids.npy"), np.load(f"{base}_camids.npy")
    paths = ("",) * len(pids)
    if require_paths and not os.path.isfile(f"{base}_paths.txt"):
        raise ValueError(f"Expected the image list {base}_paths.txt (written by extract). "
                         "Received: no such file")
    if os.path.isfile(f"{base}_paths.txt"):
        with open(f"{base}_paths.txt") as handle:
            paths = tuple(line.rstrip("\n") for line in handle)
    if not len(features) == len(pids) == len(camids) == len(paths):
        raise ValueError(
            f"Expected as many features, pids, camids and paths for split '{split}'. "
            f"Received: {len(features)}, {len(pids)}, {len(camids)}, {len(paths)}"
        )
    return features, ImageRecords(paths, pids, camids)
