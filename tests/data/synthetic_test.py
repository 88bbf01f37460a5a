import numpy as np
import pytest

from keras_pass.data import synthetic
from keras_pass.reid.datasets import market1501
from tests.helpers import once_under_tensorflow

# `keras_pass.data.synthetic` draws images with NumPy and writes files, no Keras op: the backend
# cannot change what is checked here.
pytestmark = once_under_tensorflow


def test_siblings_differ_in_exactly_one_part():
    identities = synthetic.sample_identities(200, seed=3, sibling_fraction=1.0)
    for identity in identities[1:]:
        distances = [sum(identity[p][a] != other[p][a] for p in identity for a in identity[p])
                     for other in identities[: identities.index(identity)]]
        assert min(distances) <= 1  # a copy of an earlier identity with one attribute changed


@pytest.mark.parametrize("background", ["scene", "plain"])
def test_rendering_is_deterministic_per_seed(background):
    identity = synthetic.sample_identities(1, seed=0)[0]
    camera = synthetic.camera_styles(1, seed=0)[0]
    first, second = (synthetic.render_person(identity, camera, np.random.default_rng(7), 64, 32, background)
                     for _ in range(2))
    assert first.shape == (64, 32, 3) and first.dtype == np.uint8
    np.testing.assert_array_equal(first, second)


def test_plain_background_is_the_same_grey_up_to_the_camera():
    identity = synthetic.sample_identities(1, seed=0)[0]
    neutral = {"background": np.zeros((2, 3), np.float32), "cast": np.ones(3, np.float32),
               "brightness": 1.0, "blur": 0.0}
    corners = [synthetic.render_person(identity, neutral, np.random.default_rng(s), 64, 32, "plain")[:3, :3]
               for s in range(4)]
    for corner in corners:  # the person never covers the top-left corner at these sizes
        assert abs(corner.astype(float).mean() - 128) < 12


def test_unknown_background_is_a_value_error():
    identity = synthetic.sample_identities(1)[0]
    with pytest.raises(ValueError, match="Expected background in"):
        synthetic.render_person(identity, synthetic.camera_styles(1)[0], np.random.default_rng(0),
                                 32, 16, "beach")


def test_market_folder_goes_through_the_real_loader(tmp_path):
    counts = synthetic.write_market1501(str(tmp_path), num_train_ids=4, num_test_ids=4, num_distractors=3,
                                        num_junk=2, image_size=(32, 16), background="plain")
    dataset = market1501(str(tmp_path))
    assert len(dataset.train) == counts["bounding_box_train"] and dataset.num_train_ids == 4
    assert len(dataset.query) == counts["query"] > 0
    assert 0 in set(dataset.gallery.pids.tolist())  # distractors; the loader drops the junk (-1)
    assert len(dataset.gallery) == counts["bounding_box_test"] - 2
    for pid, camid in zip(dataset.query.pids, dataset.query.camids):  # a cross-camera match exists
        gallery = (dataset.gallery.pids == pid) & (dataset.gallery.camids != camid)
        assert gallery.any()
