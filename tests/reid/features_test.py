"""`reid.features`: extraction names a file that fails only at decode
(features stay aligned with their paths)."""

import os

import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.reid.datasets import market1501
from keras_pass.reid.features import extract_features
from tests.helpers import TINY_BACKBONE, garble_image, make_market1501


def test_extraction_names_a_file_that_fails_only_at_decode(tmp_path):
    """A JPEG whose middle is garbage passes the header checks."""
    root, truth = make_market1501(tmp_path)
    paths = list(market1501(root).query.paths)
    garble_image(paths[2])
    with pytest.raises(ValueError, match=os.path.basename(paths[2])):
        extract_features(PASSBackbone(**TINY_BACKBONE), paths, batch_size=2, verbose=False)
