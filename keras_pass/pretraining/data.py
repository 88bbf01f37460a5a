"""Region-bound multi-crop `tf.data` pipeline of PASS pre-training.

Per source image: 2 global crops (random resized crops of the whole image)
and `num_parts x local_crops_per_part` local crops, those of part i cut from
region i only (a band of rows of the original image), each view augmented as
in DINO. Pure tf ops with explicit seeds: it runs under every Keras backend and
the same seed gives the same crops.
"""

import random
import threading

import numpy as np
import tensorflow as tf

from keras_pass.data.images import SkippedImages, check_some_image_decodes, list_image_files, read_image, split_readable
from keras_pass.pretraining import augment, shards
from keras_pass.pretraining.data_validation import check_int, describe_source, validated_crop_config

_CROP_SEED_SALT = 1
_SHUFFLE_SEED_SALT = 2
_ELEMENT_KEYS = ("global_crops", "local_crops")
_MAX_NAMED_PER_REPORT = 100


def make_multi_crop(
    image,
    seed,
    *,
    global_size,
    local_size,
    global_scale,
    local_scale,
    ratio,
    region_bounds,
    local_crops_per_part,
    view_augmentations,
):
    """The PASS views of one image (H, W, 3, float32 in [0, 1]).

    Returns `(global_crops, local_crops)`: (2, *global_size, 3) and
    (num_parts, local_crops_per_part, *local_size, 3), normalised. A local
    crop of part i is a random resized crop of region i = rows
    [floor(lo_i * H), floor(lo_i * H) + floor((hi_i - lo_i) * H)) at full
    width, as the official code cuts its regions from the original image.
    """
    seeds = tf.random.experimental.stateless_split(seed, 4)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    views = augment.resolve_view_augmentations(view_augmentations)
    max_sigma = max(config["blur_sigma"][1] for config in views.values())

    global_boxes = augment.sample_crop_boxes(
        seeds[0], tf.fill([2], height), tf.fill([2], width), global_scale, ratio
    )
    global_params = augment.sample_view_parameters(
        seeds[1], [views["global_1"], views["global_2"]]
    )
    global_crops = augment.render_views(image, global_boxes, global_size, global_params, max_sigma)

    num_parts = len(region_bounds)
    num_local = num_parts * local_crops_per_part
    if num_local == 0:
        return global_crops, tf.zeros([num_parts, 0, *local_size, 3])
    region_top, region_height = _region_rows(height, region_bounds)
    region_top = tf.repeat(region_top, local_crops_per_part)
    region_height = tf.repeat(region_height, local_crops_per_part)
    local_boxes = augment.sample_crop_boxes(
        seeds[2], region_height, tf.fill([num_local], width), local_scale, ratio
    )
    local_boxes += tf.pad(region_top[:, None], [[0, 0], [0, 3]])  # shift rows only
    local_params = augment.sample_view_parameters(seeds[3], [views["local"]] * num_local)
    local_crops = augment.render_views(image, local_boxes, local_size, local_params, max_sigma)
    local_crops = tf.reshape(local_crops, [num_parts, local_crops_per_part, *local_size, 3])
    return global_crops, local_crops


def _region_rows(height, region_bounds):
    """(top, height) int32 (L,) of each region, as the official
    `crop(image, int(lo * H), 0, int((hi - lo) * H), W)`, at least one row."""
    height = tf.cast(height, tf.float64)
    lows = tf.constant([low for low, _ in region_bounds], tf.float64)
    spans = tf.constant([high - low for low, high in region_bounds], tf.float64)
    rows = tf.maximum(tf.floor(spans * height), 1.0)
    tops = tf.minimum(tf.floor(lows * height), height - rows)
    return tf.cast(tops, tf.int32), tf.cast(rows, tf.int32)


class _EpochCounter:
    """Hands out 0, 1, 2, ... (from `start`): one epoch index per iteration
    over a finite dataset, so each `model.fit` epoch gets new crops and a new
    order while staying a function of the seed."""

    def __init__(self, start):
        self._next = start
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            epoch, self._next = self._next, self._next + 1
        return np.int64(epoch)


def make_pass_dataset(
    files_or_dir,
    batch_size,
    *,
    global_size=(256, 128),
    local_size=(128, 64),
    global_scale=(0.4, 1.0),
    local_scale=(0.1, 0.8),
    ratio=(3.0 / 4.0, 4.0 / 3.0),
    num_parts=3,
    local_crops_per_part=3,
    region_bounds=None,
    view_augmentations=None,
    seed=None,
    shuffle=True,
    repeat=False,
    initial_epoch=0,
    drop_remainder=True,
    num_parallel_calls=tf.data.AUTOTUNE,
    prefetch=tf.data.AUTOTUNE,
    skipped_images=None,
    num_shards=1,
    shard_index=0,
    initial_position=0,
    shuffle_window=1024,
):
    """A `tf.data.Dataset` of PASS multi-crop batches for `model.fit`.

    Elements are dicts, batch axis first, ImageNet-normalised float32:
    `{"global_crops": (B, 2, *global_size, 3),
      "local_crops": (B, num_parts, local_crops_per_part, *local_size, 3)}`.
    Local crops of part i come from region i of the original image only.

    Args:
        files_or_dir: an image folder (JPEG/PNG at any depth, e.g. LUPerson),
            a list file (one path per line, relative to the list file's
            folder) or a list of paths.
        batch_size: source images per batch.
        global_size, local_size: (height, width) of the crops.
        global_scale, local_scale: area fraction ranges of random resized
            crops (of the whole image, resp. of the region). Defaults are
            the released script's.
        ratio: aspect ratio (w / h) range, torchvision's default as in the
            release; e.g. (1/3, 2/3) suits 1:2 person images better.
        num_parts, local_crops_per_part: local crops per region and count.
        region_bounds: `num_parts` (low, high) fractions of the height;
            default `default_region_bounds(num_parts)`, PASS's three
            overlapping half-height bands for 3 parts.
        view_augmentations: None (DINO/PASS settings), "none" (crop, resize
            and normalise only) or a dict of per-view overrides, see
            `augment.dino_view_augmentations()`.
        seed: int; crops and order are a function of (seed, epoch, position).
            None draws one from Python's `random` (seeded by
            `keras.utils.set_random_seed`).
        shuffle: a new permutation of all files per epoch (no buffer needed).
        repeat: False -> one epoch per iteration: each new iteration (each
            `fit` epoch) is the next epoch, with new order and crops (note:
            Keras's JAX trainer iterates once more to build the model, so its
            first training epoch is data epoch 1). True -> an endless stream
            of epochs, for `fit(..., steps_per_epoch=dataset.steps_per_epoch)`
            where fit epoch k is data epoch `initial_epoch + k`.
        initial_epoch: index of the first epoch (to resume a run).
        drop_remainder: keep batch shapes static (needed by jit and
            distribution); the last partial batch of an epoch is dropped.
        num_parallel_calls, prefetch: `tf.data` parallelism.
        skipped_images: a `keras_pass.data.SkippedImages` to count unreadable
            images in; by default a new one. Either way it is also the
            returned dataset's `skipped_images` attribute.
        num_shards, shard_index: multi-process input. Each process reads
            (and decodes) only its `batch_size / num_shards` slice of every
            global batch: the slices of all processes, in process order, are
            exactly the single-process global batch (same files, same crops),
            and `steps_per_epoch` stays the global one.
        initial_position, shuffle_window: TFRecord shard folders only
            (`keras-pass shard`, `keras_pass.pretraining.shards`): records of
            `initial_epoch` this process already used (mid-epoch resume),
            and the shuffle buffer in records. A shard folder is read
            shard-by-shard per process, so its order depends on the number
            of processes (a folder's does not).

    Images are checked up front (size, header, end marker: 0.1 ms a file):
    those that fail are left out, never decoded, and named in one warning
    (`SkippedImages.left_out`). One that passes the checks but fails to
    decode (corrupt data) is skipped (named once, counted) and replaced by another
    image of the data set drawn at random, so that every epoch has exactly
    `steps_per_epoch` batches, the returned dataset's `steps_per_epoch`
    attribute (and its cardinality unless `repeat`).
    """
    crop_config = validated_crop_config(
        global_size, local_size, global_scale, local_scale, ratio, num_parts,
        local_crops_per_part, region_bounds, view_augmentations,
    )
    check_int("batch_size", batch_size, minimum=1)
    check_int("initial_epoch", initial_epoch, minimum=0)
    shard = BatchShard.checked(batch_size, num_shards, shard_index, drop_remainder)
    if seed is None:
        seed = random.randint(0, 2**31 - 1)
    if shards.is_shard_folder(files_or_dir):
        return shards.sharded_pass_dataset(
            files_or_dir, batch_size, lambda image, where: make_multi_crop(image, where, **crop_config), seed,
            repeat=repeat, initial_epoch=initial_epoch, initial_position=initial_position,
            num_shards=num_shards, shard_index=shard_index, window=shuffle_window,
            num_parallel_calls=num_parallel_calls, prefetch=prefetch)
    skipped_images = SkippedImages() if skipped_images is None else skipped_images
    listed = list_image_files(files_or_dir)
    source = describe_source(files_or_dir, len(listed))
    paths, unreadable = split_readable(listed, source)  # header and end-marker checks, up front
    check_some_image_decodes(paths, source)  # else: skips forever
    if drop_remainder and len(paths) < batch_size:
        raise ValueError(
            f"Expected at least batch_size={batch_size} images with drop_remainder=True. "
            f"Received: files_or_dir={describe_source(files_or_dir, len(paths))} "
            f"with {len(paths)} images"
        )
    check_int("seed", seed, minimum=0)
    if unreadable:  # once the arguments are known to be good: its list file is an output
        skipped_images.left_out(unreadable, len(listed), source)
    reader = _EpochReader(
        paths, crop_config, seed, shuffle, skipped_images, source, num_parallel_calls,
        shard.local_positions(len(paths)),
    )
    if drop_remainder:
        steps_per_epoch = len(paths) // batch_size
    else:
        steps_per_epoch = -(-len(paths) // batch_size)
    batch_size = shard.local_batch

    # Batches never straddle two epochs: with `repeat=True` and
    # `steps_per_epoch=dataset.steps_per_epoch`, fit epoch k is data epoch k.
    dataset = _epoch_indices(repeat, initial_epoch).flat_map(
        lambda epoch: reader.epoch(epoch).batch(batch_size, drop_remainder=drop_remainder)
    )
    cardinality = tf.data.INFINITE_CARDINALITY if repeat else steps_per_epoch
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(cardinality))
    dataset = dataset.prefetch(prefetch)
    dataset.skipped_images = reader.skipped_images
    dataset.steps_per_epoch = steps_per_epoch
    dataset.num_images = len(paths)
    return dataset


class _EpochReader:
    """Builds one epoch: exactly `len(paths)` multi-crop elements.

    Positions 0..n-1 read the epoch's permutation of the files, position n is
    an end-of-epoch marker, positions above n read replacement files (random
    ones) that stand in for images that failed, so every epoch has the same
    length whatever is corrupt. Elements are per-position deterministic:
    crops are seeded by (seed, epoch, position).
    """

    def __init__(self, paths, crop_config, seed, shuffle, skipped_images, source, parallel,
                 positions=None):
        self.paths = paths
        self.num_files = len(paths)
        # This process's positions (`BatchShard.local_positions`): the
        # epoch's length here and the map to the global position of each.
        self.num_local, self.global_position = positions or (self.num_files, None)
        self.path_table = tf.constant(paths)
        self.crop_config = crop_config
        self.crop_seed = tf.constant([seed, _CROP_SEED_SALT], tf.int64)
        self.shuffle_seed = tf.constant([seed, _SHUFFLE_SEED_SALT], tf.int64)
        self.shuffle = shuffle
        self.skipped_images = skipped_images
        self.source = source
        self.parallel = parallel

    def epoch(self, epoch):
        dataset = tf.data.Dataset.counter(dtype=tf.int64).map(lambda position: (epoch, position))
        dataset = dataset.map(self.load, num_parallel_calls=self.parallel, deterministic=True)
        dataset = dataset.ignore_errors()
        dataset = dataset.scan((tf.constant(-1, tf.int64), tf.constant(0, tf.int64)), self.track)
        dataset = dataset.filter(lambda element: element["position"] != self.num_local)
        dataset = dataset.take(self.num_local)
        return dataset.map(lambda element: {key: element[key] for key in _ELEMENT_KEYS})

    def file_index(self, epoch, position):
        n = self.num_files
        in_order = position < n
        rank = tf.where(in_order, position, tf.math.floormod(position - n - 1, n))
        cycle = tf.where(in_order, tf.zeros_like(position), 1 + tf.math.floordiv(position - n - 1, n))
        seed = tf.random.experimental.stateless_fold_in(self.shuffle_seed, epoch)
        seed = tf.random.experimental.stateless_fold_in(seed, cycle)
        shuffled = tf.random.experimental.index_shuffle(rank, seed, n - 1)
        return shuffled if self.shuffle else tf.where(in_order, position, shuffled)

    def _global(self, position):
        return position if self.global_position is None else self.global_position(position)

    def load(self, epoch, position):
        def crops():
            where = self._global(position)
            seed = tf.random.experimental.stateless_fold_in(
                tf.random.experimental.stateless_fold_in(self.crop_seed, epoch), where
            )
            image = read_image(self.path_table[self.file_index(epoch, where)])
            return make_multi_crop(image, seed, **self.crop_config)

        global_crops, local_crops = tf.cond(
            tf.equal(position, self.num_local), lambda: _blank_crops(self.crop_config), crops
        )
        return {
            "epoch": epoch,
            "position": position,
            "global_crops": global_crops,
            "local_crops": local_crops,
        }

    def track(self, state, element):
        """Elements arrive in position order (deterministic map): a gap in
        positions is images that failed. Reports them; at the end-of-epoch
        marker, fails if nothing at all could be read."""
        last_position, delivered = state
        position = element["position"]
        reported = tf.cond(
            position - last_position > 1,
            lambda: tf.py_function(
                self.report, [element["epoch"], last_position + 1, position], tf.int64
            ),
            lambda: tf.constant(0, tf.int64),
        )
        check = tf.debugging.Assert(
            tf.logical_or(tf.not_equal(position, self.num_local), delivered > 0),
            [f"Expected at least one readable image per epoch. Received: files_or_dir={self.source}"],
        )
        with tf.control_dependencies([check]):
            delivered = delivered + tf.cast(position != self.num_local, tf.int64)
        return (position + 0 * reported, delivered), element

    def report(self, epoch, start, stop):
        positions = range(int(start), int(stop))
        named = positions[:_MAX_NAMED_PER_REPORT]  # a wrong list file fails all
        indices = [int(self.file_index(epoch, self._global(tf.constant(p, tf.int64)))) for p in named]
        self.skipped_images.record([self.paths[i] for i in indices], count=len(positions))
        return np.int64(len(positions))


class BatchShard:
    """One process's slice of every global batch: local batch `L = B / S`;
    local position i (block i // L, offset i % L) is global position
    ((i // L) * S + index) * L + i % L, so that the processes' slices, in
    process order, are the global batch. Replacements of unreadable images
    (positions after the end marker) are sliced the same way."""

    def __init__(self, batch_size, num_shards, index):
        self.num_shards, self.index = num_shards, index
        self.local_batch = batch_size // num_shards

    @classmethod
    def checked(cls, batch_size, num_shards, shard_index, drop_remainder):
        check_int("num_shards", num_shards, minimum=1)
        check_int("shard_index", shard_index, minimum=0)
        if shard_index >= num_shards:
            raise ValueError(f"Expected shard_index < num_shards={num_shards}. "
                             f"Received: shard_index={shard_index}")
        if num_shards > 1 and (batch_size % num_shards or not drop_remainder):
            raise ValueError(
                f"Expected a batch_size divisible by num_shards={num_shards} and "
                f"drop_remainder=True. Received: batch_size={batch_size}, "
                f"drop_remainder={drop_remainder}")
        return cls(batch_size, num_shards, shard_index)

    def _spread(self, i):
        return ((i // self.local_batch) * self.num_shards + self.index) * self.local_batch + (
            i % self.local_batch)

    def to_global(self, local):
        """The global position of local position `local` (int64 tensor)."""
        num_files, num_local = self.num_files, self.num_local
        return tf.where(local < num_local, self._spread(local),
                        tf.where(local == num_local, tf.constant(num_files, tf.int64),
                                 num_files + 1 + self._spread(tf.maximum(local - num_local - 1, 0))))

    def local_positions(self, num_files):
        """(positions per epoch here, local -> global map); None: unsharded."""
        if self.num_shards == 1:
            return None
        self.num_files = num_files
        self.num_local = (num_files // (self.local_batch * self.num_shards)) * self.local_batch
        return self.num_local, self.to_global


def _epoch_indices(repeat, initial_epoch):
    if repeat:
        return tf.data.Dataset.counter(start=initial_epoch, dtype=tf.int64)
    counter = _EpochCounter(initial_epoch)

    def next_epoch(_):
        epoch = tf.py_function(counter, [], tf.int64)
        epoch.set_shape([])
        return epoch

    return tf.data.Dataset.range(1).map(next_epoch)


def _blank_crops(crop_config):
    num_parts = len(crop_config["region_bounds"])
    return (
        tf.zeros([2, *crop_config["global_size"], 3]),
        tf.zeros(
            [num_parts, crop_config["local_crops_per_part"], *crop_config["local_size"], 3]
        ),
    )
