"""Fine-tuning input pipelines in tf.data (TF ops only: any Keras backend).

Train (the official `PASS_transreid` transforms, in this order): resize
bicubic, horizontal flip p=0.5, zero-pad 10 + random crop back to size,
normalise with mean 0.5 / std 0.5, random erasing p=0.5 (one box, area 2% to
1/3, log-uniform aspect 0.3 to 3.3, per-pixel N(0, 1) values, up to 10
tries: timm's `RandomErasing(mode="pixel")`). Test: resize bilinear,
normalise. Resizes are antialiased (as PIL's); the bicubic result is clipped
to [0, 255] but not rounded to uint8.

Randomness is stateless, seeded by (seed, position in the stream), so a
pipeline is reproducible whatever the parallelism.
"""

import math

import numpy as np
import tensorflow as tf

from keras_pass.data.images import HALF_MEAN as IMAGE_MEAN
from keras_pass.data.images import check_images, decode_image_uint8, readable_images
from keras_pass.data.images import HALF_STD as IMAGE_STD


class PKSampler:
    """P identities x K images per batch (batch_size = P * K).

    Each sampler epoch: every identity's images are shuffled (identities
    with fewer than K images are sampled K times with replacement) and cut
    into groups of K (the remainder is dropped); then batches take one group
    from each of P distinct identities drawn uniformly among those with
    groups left, until fewer than P remain. `steps_per_epoch` is the
    reference's epoch-length estimate, `sum(max(n, K) // K * K) // batch_size`.
    """

    def __init__(self, pids, batch_size=64, num_instances=4, seed=0):
        pids = np.asarray(pids)
        if batch_size % num_instances or batch_size < num_instances:
            raise ValueError(
                "Expected batch_size a positive multiple of num_instances. Received: "
                f"batch_size={batch_size}, num_instances={num_instances}"
            )
        self.num_ids_per_batch = batch_size // num_instances
        self.ids, inverse = np.unique(pids, return_inverse=True)
        if len(self.ids) < self.num_ids_per_batch:
            raise ValueError(
                f"Expected at least batch_size / num_instances = {self.num_ids_per_batch} "
                f"identities. Received: {len(self.ids)} identities"
            )
        self.groups = [np.flatnonzero(inverse == i) for i in range(len(self.ids))]
        self.batch_size = batch_size
        self.num_instances = num_instances
        self.seed = seed

    @property
    def steps_per_epoch(self):
        k = self.num_instances
        images = sum(max(len(g), k) // k * k for g in self.groups)
        return max(1, images // self.batch_size)

    def epoch_indices(self, epoch):
        """Dataset indices of one sampler epoch, a multiple of batch_size."""
        rng = np.random.default_rng([self.seed, epoch])
        k = self.num_instances
        chunks = []
        for group in self.groups:
            if len(group) < k:
                group = rng.choice(group, k, replace=True)
            group = rng.permutation(group)
            chunks.append(list(group[: len(group) // k * k].reshape(-1, k)))
        available = [i for i, c in enumerate(chunks) if c]
        batches = []
        while len(available) >= self.num_ids_per_batch:
            chosen = rng.choice(len(available), self.num_ids_per_batch, replace=False)
            batches.extend(chunks[available[i]].pop() for i in chosen)
            available = [i for i in available if chunks[i]]
        return np.concatenate(batches).astype(np.int64)

    def batches(self, first_epoch=0, first_batch=0):
        """Infinite generator of index batches, epoch after epoch, from
        batch `first_batch` of the stream that starts at `first_epoch` (a
        resumed run continues where the interrupted one stopped)."""
        epoch = first_epoch
        while True:
            batches = self.epoch_indices(epoch).reshape(-1, self.batch_size)
            skipped = min(first_batch, len(batches))
            first_batch -= skipped
            yield from batches[skipped:]
            epoch += 1


def read_image(path):
    """Decodes a JPEG/PNG file to a (H, W, 3) uint8 tensor, as PIL would."""
    return decode_image_uint8(tf.io.read_file(path))


def normalize(image, mean=IMAGE_MEAN, std=IMAGE_STD):
    """[0, 1] floats -> (x - mean) / std."""
    return (image - tf.constant(mean, tf.float32)) / tf.constant(std, tf.float32)


def random_erasing(image, seed, probability=0.5, area_range=(0.02, 1 / 3),
                   aspect_range=(0.3, 1 / 0.3), attempts=10):
    """Replaces one random box with N(0, 1) noise with `probability`."""
    seeds = tf.random.experimental.stateless_split(seed, 5)
    height, width = tf.shape(image)[0], tf.shape(image)[1]
    area = tf.cast(height * width, tf.float32)
    target = tf.random.stateless_uniform([attempts], seeds[0], *area_range) * area
    log_aspect = [math.log(a) for a in aspect_range]
    aspect = tf.exp(tf.random.stateless_uniform([attempts], seeds[1], *log_aspect))
    box_h = tf.cast(tf.round(tf.sqrt(target * aspect)), tf.int32)
    box_w = tf.cast(tf.round(tf.sqrt(target / aspect)), tf.int32)
    fits = (box_h < height) & (box_w < width)
    first = tf.argmax(tf.cast(fits, tf.int32), output_type=tf.int32)
    box_h, box_w = box_h[first], box_w[first]
    corner = tf.random.stateless_uniform([2], seeds[2], 0.0, 1.0)
    top = tf.cast(corner[0] * tf.cast(height - box_h + 1, tf.float32), tf.int32)
    left = tf.cast(corner[1] * tf.cast(width - box_w + 1, tf.float32), tf.int32)
    rows, cols = tf.range(height)[:, None], tf.range(width)[None, :]
    inside = (rows >= top) & (rows < top + box_h) & (cols >= left) & (cols < left + box_w)
    apply = tf.reduce_any(fits) & (tf.random.stateless_uniform([], seeds[3]) < probability)
    noise = tf.random.stateless_normal(tf.shape(image), seeds[4], dtype=image.dtype)
    return tf.where((inside & apply)[..., None], noise, image)


def train_transform(image, seed, image_size=(256, 128), flip_probability=0.5, padding=10,
                    erase_probability=0.5, mean=IMAGE_MEAN, std=IMAGE_STD):
    """uint8 (H, W, 3) -> augmented, normalised float32 `image_size` image."""
    height, width = image_size
    seeds = tf.random.experimental.stateless_split(seed, 3)
    x = tf.image.resize(tf.cast(image, tf.float32), image_size, "bicubic", antialias=True)
    x = tf.clip_by_value(x, 0.0, 255.0) / 255.0
    flip = tf.random.stateless_uniform([], seeds[0]) < flip_probability
    x = tf.where(flip, tf.reverse(x, axis=[1]), x)
    if padding:
        x = tf.pad(x, [[padding, padding], [padding, padding], [0, 0]])
        offset = tf.random.stateless_uniform([2], seeds[1], 0, 2 * padding + 1, tf.int32)
        x = tf.slice(x, [offset[0], offset[1], 0], [height, width, 3])
    x = normalize(x, mean, std)
    if erase_probability:
        x = random_erasing(x, seeds[2], erase_probability)
    return tf.ensure_shape(x, (height, width, 3))


def test_transform(image, image_size=(256, 128), mean=IMAGE_MEAN, std=IMAGE_STD):
    x = tf.image.resize(tf.cast(image, tf.float32), image_size, "bilinear", antialias=True)
    return tf.ensure_shape(normalize(x / 255.0, mean, std), (*image_size, 3))


def make_train_dataset(records, image_size=(256, 128), batch_size=64, num_instances=4,
                       seed=0, first_epoch=0, first_batch=0, num_shards=1, shard_index=0,
                       **transform_kwargs):
    """`(dataset, steps_per_epoch)`: an endless stream of `(images, pids)`
    P x K batches; train pids must already be relabelled 0..N-1. Unreadable
    files are left out with a warning naming them (`readable_images`).

    `first_batch` > 0 starts the stream at that batch, with the same
    indices and augmentations (seeded by stream position) as an
    uninterrupted stream has there: what an exact resume needs.

    `num_shards` > 1 (processes of a multi-process run): this process's
    `batch_size / num_shards` rows of every global batch (process k: rows
    `[k * B / S, (k + 1) * B / S)`), the others left out before decoding;
    the slices, in process order, are the global batch. `steps_per_epoch`
    stays the global one."""
    local_batch = _local_batch(batch_size, num_shards, shard_index)
    records = readable_train_records(records)
    sampler = PKSampler(records.pids, batch_size, num_instances, seed)
    paths = tf.constant(records.paths)
    pids = tf.constant(records.pids, tf.int32)
    indices = tf.data.Dataset.from_generator(
        lambda: sampler.batches(first_epoch, first_batch),
        output_signature=tf.TensorSpec((batch_size,), tf.int64),
    ).unbatch()
    stream = tf.data.Dataset.zip(indices, tf.data.Dataset.counter(first_batch * batch_size))
    if num_shards > 1:
        stream = stream.filter(lambda index, position: position % batch_size // local_batch == shard_index)

    def load(index, position):
        image_seed = tf.stack([tf.cast(seed, tf.int64), position])
        image = train_transform(read_image(paths[index]), image_seed, image_size, **transform_kwargs)
        return image, pids[index]

    dataset = stream.map(load, num_parallel_calls=tf.data.AUTOTUNE)
    dataset = dataset.batch(local_batch, drop_remainder=True).prefetch(tf.data.AUTOTUNE)
    return dataset, sampler.steps_per_epoch


def _local_batch(batch_size, num_shards, shard_index):
    if not 0 <= shard_index < num_shards or batch_size % num_shards:
        raise ValueError(f"Expected 0 <= shard_index < num_shards and batch_size divisible by num_shards. "
                         f"Received: batch_size={batch_size}, num_shards={num_shards}, "
                         f"shard_index={shard_index}")
    return batch_size // num_shards


def readable_train_records(records, name="the train set"):
    """`records` without its unreadable images (logged and counted)."""
    kept = set(readable_images(records.paths, name))
    if len(kept) == len(records):
        return records
    return records.select([path in kept for path in records.paths])


def make_test_dataset(paths, image_size=(256, 128), batch_size=128, mean=IMAGE_MEAN, std=IMAGE_STD):
    """Batches of test-transformed images, in the order of `paths`."""
    dataset = tf.data.Dataset.from_tensor_slices(tf.constant(list(paths)))
    dataset = dataset.map(
        lambda path: test_transform(read_image(path), image_size, mean, std),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return dataset.batch(batch_size).prefetch(tf.data.AUTOTUNE)


def load_images(paths, image_size):
    """Images resized as for testing, float32 in [0, 1] (for pictures)."""
    paths = check_images(paths)
    dataset = make_test_dataset(paths, image_size, batch_size=len(paths), mean=(0.0,) * 3, std=(1.0,) * 3)
    return next(dataset.as_numpy_iterator())
