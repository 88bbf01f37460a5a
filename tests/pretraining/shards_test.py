"""TFRecord shard input: conversion (resumable), coverage across processes,
determinism per seed, resume by position."""

import os

import numpy as np
import pytest
import tensorflow as tf

from keras_pass.cli.main import main
from keras_pass.data.synthetic import write_unlabeled
from keras_pass.pretraining.data import make_pass_dataset
from keras_pass.pretraining.shards import ShardReader, write_shards
from tests.helpers import once_under_tensorflow

pytestmark = once_under_tensorflow

SMALL = dict(global_size=(16, 8), local_size=(8, 4), local_crops_per_part=1, view_augmentations="none")


@pytest.fixture(scope="module")
def shard_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("shards")
    write_unlabeled(str(root / "images"), num_identities=8, views=(1, 1), image_size=(32, 16), seed=2)
    assert main(["shard", str(root / "images"), str(root / "out"), "--shard-size", "2"]) == 0
    return str(root / "out")


def _all_records(reader, epoch, start=0):
    return [bytes(r) for _, r in reader.records(tf.constant(epoch, tf.int64), start).as_numpy_iterator()]


def test_conversion_is_resumable_and_indexed(shard_dir, tmp_path):
    images = os.path.join(os.path.dirname(shard_dir), "images")
    index = write_shards(images, shard_dir, 2, verbose=False)
    assert index["num_images"] == sum(s["count"] for s in index["shards"]) == len(index["shards"]) * 2
    kept = {name: os.path.getmtime(os.path.join(shard_dir, name)) for name in os.listdir(shard_dir)}
    os.remove(os.path.join(shard_dir, index["shards"][1]["file"]))  # as if killed before shard 1
    write_shards(images, shard_dir, 2, verbose=False)
    for name, mtime in kept.items():  # finished shards untouched, the missing one back
        if name != index["shards"][1]["file"] and name.endswith(".tfrecord"):
            assert os.path.getmtime(os.path.join(shard_dir, name)) == mtime
    assert os.path.isfile(os.path.join(shard_dir, index["shards"][1]["file"]))


def test_unreadable_files_are_left_out_and_listed(tmp_path):
    write_unlabeled(str(tmp_path / "images"), num_identities=2, views=(1, 1), image_size=(32, 16), seed=1)
    broken = tmp_path / "images" / "broken.jpg"
    broken.write_bytes(b"not a jpeg")
    index = write_shards(str(tmp_path / "images"), str(tmp_path / "out"), 8, verbose=False)
    assert index["skipped"] == [str(broken)] and index["num_images"] == 4


def test_every_image_once_per_epoch_across_two_processes(shard_dir):
    index_total = len(os.listdir(shard_dir)) - 1  # shards (2 images each)
    for epoch in (0, 1):
        parts = [_all_records(ShardReader(shard_dir, 5, 2, k, window=3), epoch) for k in (0, 1)]
        assert len(parts[0]) == len(parts[1])
        together = parts[0] + parts[1]
        assert len(together) == len(set(together)) == 2 * index_total


def test_order_is_a_function_of_the_seed_and_changes_per_epoch(shard_dir):
    first = _all_records(ShardReader(shard_dir, 5, window=3), 0)
    assert first == _all_records(ShardReader(shard_dir, 5, window=3), 0)
    assert first != _all_records(ShardReader(shard_dir, 6, window=3), 0)
    assert first != _all_records(ShardReader(shard_dir, 5, window=3), 1)
    assert sorted(first) == sorted(_all_records(ShardReader(shard_dir, 5, window=3), 1))


@pytest.mark.parametrize("start", [1, 3, 5, 9])
def test_resume_by_position_continues_the_same_order(shard_dir, start):
    reader = ShardReader(shard_dir, 5, window=3)
    assert _all_records(reader, 2, start) == _all_records(reader, 2)[start:]


def test_make_pass_dataset_reads_shards_and_resumes_mid_epoch(shard_dir):
    whole = make_pass_dataset(shard_dir, 4, seed=1, repeat=True, **SMALL)
    assert whole.steps_per_epoch == 4
    batches = [b["global_crops"] for b in whole.take(6).as_numpy_iterator()]
    resumed = make_pass_dataset(shard_dir, 4, seed=1, repeat=True, initial_position=8, **SMALL)
    for expected, got in zip(batches[2:], resumed.take(4).as_numpy_iterator()):
        np.testing.assert_array_equal(got["global_crops"], expected)
    with pytest.raises(ValueError, match="initial_position a multiple of 4"):
        make_pass_dataset(shard_dir, 4, seed=1, initial_position=3, **SMALL)


def test_the_pretrain_recipe_resumes_a_shard_folder_by_position(shard_dir, tmp_path, monkeypatch):
    from types import SimpleNamespace

    from keras_pass.recipes import pretrain as recipe

    config = recipe.PretrainConfig(data=shard_dir, output_dir=str(tmp_path), batch_size=4, seed=1,
                                   local_size=(8, 4), local_crops_per_part=1, view_augmentations="none")
    backbone = SimpleNamespace(image_shape=(16, 8, 3), num_parts=3)
    calls = []
    reader = recipe.make_pass_dataset
    monkeypatch.setattr(recipe, "make_pass_dataset", lambda *a, **k: calls.append(k) or reader(*a, **k))
    stream = recipe._stream(config, backbone)
    uninterrupted = [b["global_crops"] for b in stream(0).take(7).as_numpy_iterator()]
    resumed = [b["global_crops"] for b in stream(6).take(1).as_numpy_iterator()]  # epoch 1, batch 2
    np.testing.assert_array_equal(resumed[0], uninterrupted[6])
    assert calls[-1]["initial_epoch"] == 1 and calls[-1]["initial_position"] == 8  # not re-read
