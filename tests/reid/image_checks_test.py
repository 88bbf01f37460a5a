"""Query/gallery images checked before training; extraction names a file
that fails to decode (features stay aligned with their paths)."""

import os

import pytest

from keras_pass import PASSBackbone
from keras_pass.reid.datasets import check_dataset_images, market1501
from keras_pass.reid.features import extract_features
from tests.helpers import TINY_BACKBONE, make_market1501


def _cut(path):
    with open(path, "rb") as handle:
        data = handle.read()
    with open(path, "wb") as handle:
        handle.write(data[: len(data) // 2])


def test_query_and_gallery_checked_train_cleaned(tmp_path):
    root, truth = make_market1501(tmp_path)
    train_file = next(f for f, pid, _ in truth["bounding_box_train"] if pid > 0)
    open(os.path.join(root, "bounding_box_train", train_file), "wb").close()
    dataset = check_dataset_images(market1501(root), verbose=False)
    assert len(dataset.train) == len(market1501(root).train) - 1
    assert not any(p.endswith(train_file) for p in dataset.train.paths)
    query_file = truth["query"][0][0]
    _cut(os.path.join(root, "query", query_file))
    with pytest.raises(ValueError, match=query_file):
        check_dataset_images(market1501(root))


def test_extraction_names_a_file_that_fails_only_at_decode(tmp_path):
    """A JPEG whose middle is garbage passes the header checks."""
    root, truth = make_market1501(tmp_path)
    paths = list(market1501(root).query.paths)
    with open(paths[2], "rb") as handle:
        data = bytearray(handle.read())
    data[2:len(data) - 2] = b"\x00" * (len(data) - 4)  # SOI ... EOI, nothing decodable between
    with open(paths[2], "wb") as handle:
        handle.write(bytes(data))
    with pytest.raises(ValueError, match=os.path.basename(paths[2])):
        extract_features(PASSBackbone(**TINY_BACKBONE), paths, batch_size=2, verbose=False)
