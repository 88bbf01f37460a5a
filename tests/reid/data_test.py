import os

import numpy as np
import pytest
import tensorflow as tf

from keras_pass.data.images import naming_undecodable_images
from keras_pass.reid import data, datasets
from tests.helpers import garble_image, make_market1501, once_under_tensorflow

# `keras_pass.reid.data` is tf.data pipelines (sampler, decode, augment), no Keras op: the backend
# cannot change what is checked here.
pytestmark = once_under_tensorflow


def normalised(image):
    return (image.astype(np.float32) / 255.0 - 0.5) / 0.5


def an_image(seed=0, size=(64, 32)):
    return np.random.default_rng(seed).integers(0, 256, (*size, 3)).astype(np.uint8)


def seed_of(n):
    return tf.constant([7, n], tf.int64)


class TestPKSampler:
    def setup_method(self):
        # id 0: 9 images, id 1: 2 images (< K), ids 2..5: 4-6 images
        self.pids = np.array([0] * 9 + [1] * 2 + [2] * 4 + [3] * 5 + [4] * 6 + [5] * 4)
        self.init_kwargs = dict(batch_size=8, num_instances=4, seed=3)

    def test_batches_hold_p_distinct_ids_times_k(self):
        sampler = data.PKSampler(self.pids, **self.init_kwargs)
        indices = sampler.epoch_indices(0)
        assert len(indices) % 8 == 0 and len(indices) > 0
        for batch in indices.reshape(-1, 8):
            ids = self.pids[batch].reshape(2, 4)
            assert (ids == ids[:, :1]).all() and ids[0, 0] != ids[1, 0]

    def test_small_ids_with_replacement_others_without(self):
        sampler = data.PKSampler(self.pids, **self.init_kwargs)
        for epoch in range(5):
            indices = sampler.epoch_indices(epoch)
            large = indices[self.pids[indices] != 1]
            assert len(np.unique(large)) == len(large)  # no repeats within an epoch
            assert set(indices[self.pids[indices] == 1]) <= {9, 10}

    def test_steps_per_epoch_and_determinism(self):
        sampler = data.PKSampler(self.pids, **self.init_kwargs)
        # groups of 4: 2 + 1 + 1 + 1 + 1 + 1 = 7 groups = 28 images -> 3 batches of 8
        assert sampler.steps_per_epoch == 3
        np.testing.assert_array_equal(sampler.epoch_indices(1), sampler.epoch_indices(1))
        assert not np.array_equal(sampler.epoch_indices(1), sampler.epoch_indices(2))
        stream = sampler.batches()
        first = np.concatenate([next(stream) for _ in range(len(sampler.epoch_indices(0)) // 8)])
        np.testing.assert_array_equal(first, sampler.epoch_indices(0))

    def test_bad_arguments(self):
        with pytest.raises(ValueError, match="multiple of num_instances"):
            data.PKSampler(self.pids, batch_size=6, num_instances=4)
        with pytest.raises(ValueError, match="at least batch_size / num_instances"):
            data.PKSampler(self.pids, batch_size=32, num_instances=4)


class TestTransforms:
    def test_test_transform_at_native_size_is_normalisation(self):
        image = an_image()
        out = data.test_transform(image, (64, 32)).numpy()
        np.testing.assert_allclose(out, normalised(image), atol=1e-5)

    def test_train_flip_only(self):
        image = an_image(1)
        out = data.train_transform(image, seed_of(0), (64, 32), flip_probability=1.0,
                                   padding=0, erase_probability=0.0).numpy()
        np.testing.assert_allclose(out, normalised(image[:, ::-1]), atol=1e-4)

    def test_pad_and_crop_is_a_shifted_window(self):
        image = an_image(2)
        padded = np.pad(normalised(image), ((10, 10), (10, 10), (0, 0)), constant_values=-1.0)
        offsets = set()
        for n in range(20):
            out = data.train_transform(image, seed_of(n), (64, 32), flip_probability=0.0,
                                       erase_probability=0.0).numpy()
            found = [(dy, dx) for dy in range(21) for dx in range(21)
                     if np.allclose(out, padded[dy:dy + 64, dx:dx + 32], atol=1e-4)]
            assert found
            offsets.add(found[0])
        assert len(offsets) > 10

    def test_random_erasing_box_rate_and_size(self):
        image = tf.zeros((64, 32, 3))
        erased, areas = 0, []
        for n in range(300):
            out = data.random_erasing(image, seed_of(n), probability=0.5).numpy()
            changed = (out != 0).any(-1)
            if not changed.any():
                continue
            erased += 1
            rows, cols = np.flatnonzero(changed.any(1)), np.flatnonzero(changed.any(0))
            box = changed[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
            assert box.mean() > 0.99  # one filled rectangle (noise is almost never 0)
            areas.append(box.size / (64 * 32))
            assert np.all(np.isclose(out[changed].std(), 1.0, atol=0.35))
        assert 0.38 < erased / 300 < 0.62
        assert 0.015 < min(areas) and max(areas) < 0.36

    def test_train_transform_is_seeded(self):
        image = an_image(3, (48, 24))
        first = data.train_transform(image, seed_of(5), (64, 32)).numpy()
        again = data.train_transform(image, seed_of(5), (64, 32)).numpy()
        other = data.train_transform(image, seed_of(6), (64, 32)).numpy()
        np.testing.assert_array_equal(first, again)
        assert not np.array_equal(first, other)
        assert first.shape == (64, 32, 3) and first.dtype == np.float32


class TestPipelines:
    def test_train_and_test_datasets(self, tmp_path):
        make_market1501(tmp_path)
        dataset = datasets.market1501(str(tmp_path))
        train, steps = data.make_train_dataset(dataset.train, (64, 32), batch_size=8, seed=1)
        assert steps == 2  # ids with 6, 5, 2 (-> 4), 6 images: 4 + 4 + 4 + 4 = 16 -> 2 batches
        for images, pids in train.take(3):
            assert images.shape == (8, 64, 32, 3)
            ids = pids.numpy().reshape(2, 4)
            assert (ids == ids[:, :1]).all() and ids[0, 0] != ids[1, 0]
            assert np.abs(images.numpy()).max() < 6
        test = list(data.make_test_dataset(dataset.query.paths, (64, 32), batch_size=4))
        assert [len(batch) for batch in test] == [4, 2]


def test_process_slices_of_the_train_stream_make_the_global_batch(tmp_path):
    make_market1501(tmp_path)
    train = datasets.market1501(str(tmp_path)).train
    whole, steps = data.make_train_dataset(train, (32, 16), 8, 4, seed=3, first_batch=1)
    slices = [data.make_train_dataset(train, (32, 16), 8, 4, seed=3, first_batch=1, num_shards=2,
                                      shard_index=k) for k in (0, 1)]
    for expected, *parts in zip(whole.take(2), slices[0][0].take(2), slices[1][0].take(2)):
        np.testing.assert_array_equal(np.concatenate([p[0] for p in parts]), expected[0])
        np.testing.assert_array_equal(np.concatenate([p[1] for p in parts]), expected[1])
        assert len(parts[0][1]) == 4
    assert slices[0][1] == steps
    with pytest.raises(ValueError, match="num_shards=3"):
        data.make_train_dataset(train, (32, 16), 8, 4, num_shards=3, shard_index=0)


def test_training_names_a_file_that_fails_only_at_decode(tmp_path):
    root, _ = make_market1501(tmp_path)
    train = datasets.check_dataset_images(datasets.market1501(root), verbose=False).train
    for path in train.paths[1::2]:  # half of them: the first batches read some
        garble_image(path)
    stream, _ = data.make_train_dataset(train, (32, 16), batch_size=4, num_instances=2)
    with pytest.raises(ValueError, match=os.path.basename(train.paths[1])):
        with naming_undecodable_images(train.paths, "the train set"):
            for _ in stream.take(len(train)):
                pass
