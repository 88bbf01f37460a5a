"""Query/gallery images checked before training; extraction and training
name a file that fails only at decode (features stay aligned with their
paths)."""

import os

import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.reid.datasets import check_dataset_images, market1501
from keras_pass.data.images import naming_undecodable_images
from keras_pass.reid.data import make_train_dataset
from keras_pass.reid.features import extract_features
from tests.helpers import TINY_BACKBONE, garble_image, make_market1501


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
    garble_image(paths[2])
    with pytest.raises(ValueError, match=os.path.basename(paths[2])):
        extract_features(PASSBackbone(**TINY_BACKBONE), paths, batch_size=2, verbose=False)


def test_training_names_a_file_that_fails_only_at_decode(tmp_path):
    root, _ = make_market1501(tmp_path)
    train = check_dataset_images(market1501(root), verbose=False).train
    for path in train.paths[1::2]:  # half of them: the first batches read some
        garble_image(path)
    stream, _ = make_train_dataset(train, (32, 16), batch_size=4, num_instances=2)
    with pytest.raises(ValueError, match=os.path.basename(train.paths[1])):
        with naming_undecodable_images(train.paths, "the train set"):
            for _ in stream.take(len(train)):
                pass
