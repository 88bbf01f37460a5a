"""Per-process input of pre-training: each process's slice of every global
batch, together exactly the single-process batch."""

import numpy as np
import pytest

from keras_pass.data.synthetic import write_unlabeled
from keras_pass.pretraining.data import make_pass_dataset
from tests.helpers import once_under_tensorflow

pytestmark = once_under_tensorflow

SMALL = dict(global_size=(16, 8), local_size=(8, 4), local_crops_per_part=1, view_augmentations="none")


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = str(tmp_path_factory.mktemp("lup"))
    write_unlabeled(root, num_identities=7, views=(1, 1), image_size=(32, 16), seed=3)
    return root


def _batches(folder, batch_size, epochs=1, **kwargs):
    dataset = make_pass_dataset(folder, batch_size, seed=4, repeat=True, **SMALL, **kwargs)
    steps = dataset.steps_per_epoch
    return [b["global_crops"] for b in dataset.take(epochs * steps).as_numpy_iterator()], steps


@pytest.mark.parametrize("num_shards", [2])
def test_process_slices_concatenate_to_the_global_batch(folder, num_shards):
    batch = 6
    whole, steps = _batches(folder, batch)
    slices = [_batches(folder, batch, num_shards=num_shards, shard_index=k) for k in range(num_shards)]
    assert all(s == steps for _, s in slices)  # the global number of steps
    for step, expected in enumerate(whole):
        parts = [batches[step] for batches, _ in slices]
        assert all(len(p) == batch // num_shards for p in parts)
        np.testing.assert_array_equal(np.concatenate(parts), expected)


def test_bad_shard_arguments_are_value_errors(folder):
    with pytest.raises(ValueError, match="shard_index < num_shards=2"):
        make_pass_dataset(folder, 4, num_shards=2, shard_index=2, **SMALL)
    with pytest.raises(ValueError, match="divisible by num_shards=2"):
        make_pass_dataset(folder, 5, num_shards=2, shard_index=0, **SMALL)
