"""Sharded LUPerson-scale input: TFRecord shards of encoded images.

Written by `write_shards` (`keras-pass shard IMAGE_DIR OUT_DIR`): shard i
holds files [i * N, (i + 1) * N) of the sorted listing, each record a
`tf.train.Example` with the file's original bytes (`image`, no re-encoding)
and its relative path (`path`); `shards.json` lists the shards and their
record counts. Finished shards are never rewritten, so an interrupted
conversion resumes where it stopped. Files that fail the up-front image
checks (`keras_pass.data.images.image_file_problem`: size, header, end
marker) or that PIL cannot identify are left out, summarised in one line
and listed under `skipped` (a record that fails to decode while training
would stop every process, as each must deliver the same count).

Read by `ShardReader` (through `make_pass_dataset(OUT_DIR, ...)`), per epoch:

- the shard order is a permutation drawn from (seed, epoch); process k of P
  reads shards k, k + P, ... of it (file-level sharding: each process opens
  only its own files);
- records are shuffled inside windows of `window` consecutive records (the
  shuffle buffer: `window` encoded images in memory, never the data set),
  by a permutation drawn from (seed, epoch, window): the order is a pure
  function of the seed;
- every process delivers the same `records_per_epoch` (its first ones;
  with equal shard sizes and a shard count divisible by P, every image
  exactly once per epoch across the processes);
- resuming at position p of an epoch skips whole shards by their counts
  (nothing read) and then records of one shard up to p's window (read, not
  decoded).

Deviation: the release samples images uniformly over the data set each
epoch; here the order is shards shuffled, then records within 1024-record
windows (what a sequential record format allows without holding the data
set). ArrayRecord + grain would shuffle globally, but measured no faster
where it matters (docs/experiments/sharded_input.md), so TFRecord stays.
"""

import os

import numpy as np
import tensorflow as tf

from keras_pass import io
from keras_pass.data.images import (
    SkippedImages,
    decode_image,
    describe_unreadable,
    find_unreadable_images,
    list_image_files,
)

INDEX_FILE = "shards.json"
_ORDER_SALT, _WINDOW_SALT = 11, 12


def shard_name(index, count):
    return f"shard-{index:05d}-of-{count:05d}.tfrecord"


def _example(path, root):
    with open(path, "rb") as handle:
        contents = handle.read()
    feature = {
        "image": tf.train.Feature(bytes_list=tf.train.BytesList(value=[contents])),
        "path": tf.train.Feature(bytes_list=tf.train.BytesList(value=[os.path.relpath(path, root).encode()])),
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def _readable(path):
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
        return True
    except (OSError, UnidentifiedImageError, SyntaxError):
        return False


def write_shards(image_dir, out_dir, shard_size, verbose=True):
    """Converts an image folder into TFRecord shards of `shard_size` images;
    returns the index. Resumable: existing shards are kept as they are."""
    if not isinstance(shard_size, int) or shard_size < 1:
        raise ValueError(f"Expected shard_size >= 1. Received: shard_size={shard_size}")
    listed = list_image_files(image_dir)
    bad = find_unreadable_images(listed)
    rejected = {path for path, _ in bad}
    bad += [(path, "PIL cannot identify it") for path in listed if path not in rejected and not _readable(path)]
    rejected = {path for path, _ in bad}
    paths = [path for path in listed if path not in rejected]
    skipped = sorted(rejected)
    if verbose and bad:
        print(f"left out {describe_unreadable(bad, len(listed))} (full list: 'skipped' in "
              f"{os.path.join(out_dir, INDEX_FILE)})", flush=True)
    count = -(-len(paths) // shard_size)
    shards = []
    for index in range(count):
        name, members = shard_name(index, count), paths[index * shard_size:(index + 1) * shard_size]
        target = os.path.join(out_dir, name)
        if not os.path.isfile(target):
            with io.atomic_path(target) as temporary, tf.io.TFRecordWriter(temporary) as writer:
                for path in members:
                    writer.write(_example(path, image_dir))
            if verbose:
                print(f"wrote {name} ({len(members)} images)", flush=True)
        shards.append({"file": name, "count": len(members)})
    index = {"source": os.path.abspath(image_dir), "shard_size": shard_size, "num_images": len(paths),
             "shards": shards, "skipped": skipped}
    io.write_json(os.path.join(out_dir, INDEX_FILE), index)
    return index


def is_shard_folder(source):
    return isinstance(source, (str, os.PathLike)) and os.path.isfile(os.path.join(source, INDEX_FILE))


def _parse(record):
    parsed = tf.io.parse_single_example(record, {"image": tf.io.FixedLenFeature([], tf.string)})
    return parsed["image"]


class ShardReader:
    """Encoded images of one process, epoch by epoch (see the module doc)."""

    def __init__(self, directory, seed, num_processes=1, process_index=0, window=1024,
                 multiple_of=1):
        index = io.read_json(os.path.join(directory, INDEX_FILE))
        self.files = [os.path.join(directory, shard["file"]) for shard in index["shards"]]
        self.counts = np.array([shard["count"] for shard in index["shards"]], np.int64)
        if len(self.files) < num_processes:
            raise ValueError(f"Expected at least num_processes={num_processes} shards. "
                             f"Received: {directory} with {len(self.files)} shards")
        self.seed, self.window = seed, window
        self.num_processes, self.process_index = num_processes, process_index
        smallest = np.sort(self.counts)[: len(self.files) // num_processes].sum()
        self.records_per_epoch = int(smallest // multiple_of * multiple_of)

    def _order(self, epoch):
        seed = tf.random.experimental.stateless_fold_in(tf.constant([self.seed, _ORDER_SALT], tf.int64), epoch)
        shards = tf.range(len(self.files), dtype=tf.int64)
        order = tf.random.experimental.index_shuffle(shards, seed, len(self.files) - 1)
        return order[self.process_index::self.num_processes]

    def records(self, epoch, start=0):
        """`(position, encoded image)` of this process in `epoch`, from
        position `start` on (a Python int)."""
        mine = self._order(epoch)
        ends = tf.cumsum(tf.gather(self.counts, mine))
        first_window = start // self.window
        skip_to = first_window * self.window
        first = tf.searchsorted(ends, tf.constant([skip_to], tf.int64), side="right")[0]
        before = tf.where(first > 0, tf.gather(ends, tf.maximum(first - 1, 0)), tf.constant(0, tf.int64))
        files = tf.data.Dataset.from_tensor_slices(tf.gather(tf.constant(self.files), mine[first:]))
        records = tf.data.TFRecordDataset(files).skip(skip_to - before)
        windows = tf.data.Dataset.zip(records.batch(self.window),
                                      tf.data.Dataset.counter(start=first_window, dtype=tf.int64))
        shuffled = windows.map(lambda batch, number: self._shuffled(batch, epoch, number)).unbatch()
        positions = tf.data.Dataset.counter(start=skip_to, dtype=tf.int64)
        stream = tf.data.Dataset.zip(positions, shuffled).skip(start - skip_to)
        return stream.take(self.records_per_epoch - start).map(lambda position, record: (position, _parse(record)))

    def _shuffled(self, batch, epoch, number):
        seed = tf.random.experimental.stateless_fold_in(tf.constant([self.seed, _WINDOW_SALT], tf.int64), epoch)
        seed = tf.random.experimental.stateless_fold_in(seed, number)
        size = tf.shape(batch, out_type=tf.int64)[0]
        permutation = tf.random.experimental.index_shuffle(tf.range(size), seed, size - 1)
        return tf.gather(batch, permutation)


def decoded(contents):
    """float32 [0, 1] image of an encoded record."""
    return decode_image(contents)


def sharded_pass_dataset(directory, batch_size, crop, seed, *, repeat, initial_epoch, initial_position,
                         num_shards, shard_index, window, num_parallel_calls, prefetch):
    """`make_pass_dataset` on a shard folder: `crop(image, seed)` makes the
    views. `batch_size` is the global batch; each process batches its
    `batch_size / num_shards`. `initial_position`: this process's records
    already used in `initial_epoch` (a multiple of its batch)."""
    local_batch = batch_size // num_shards
    reader = ShardReader(directory, seed, num_shards, shard_index, window, multiple_of=local_batch)
    if reader.records_per_epoch == 0:
        raise ValueError(f"Expected at least one batch of {local_batch} images per process. "
                         f"Received: files_or_dir={directory}")
    if initial_position % local_batch or initial_position >= reader.records_per_epoch:
        raise ValueError(f"Expected initial_position a multiple of {local_batch} below "
                         f"{reader.records_per_epoch}. Received: initial_position={initial_position}")
    crop_seed = tf.constant([seed, shard_index], tf.int64)

    def views(epoch, position, contents):
        where = tf.random.experimental.stateless_fold_in(
            tf.random.experimental.stateless_fold_in(crop_seed, epoch), position)
        global_crops, local_crops = crop(decoded(contents), where)
        return {"global_crops": global_crops, "local_crops": local_crops}

    def epoch_stream(epoch, start):
        records = reader.records(epoch, start)
        return records.map(lambda position, contents: views(epoch, position, contents),
                           num_parallel_calls=num_parallel_calls, deterministic=True)

    first = epoch_stream(tf.constant(initial_epoch, tf.int64), initial_position)
    if repeat:
        later = tf.data.Dataset.counter(start=initial_epoch + 1, dtype=tf.int64)
        first = first.concatenate(later.flat_map(lambda epoch: epoch_stream(epoch, 0)))
    dataset = first.batch(local_batch, drop_remainder=True).prefetch(prefetch)
    dataset.steps_per_epoch = reader.records_per_epoch // local_batch
    dataset.num_images = int(reader.counts.sum())
    dataset.skipped_images = SkippedImages()  # `keras-pass shard` wrote decodable images only
    return dataset
