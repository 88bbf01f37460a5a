"""`Embedder`: images in, L2-normalised ReID features out.

The model's own preprocessing (the preset's `image_converter.json`: size and
normalisation) is applied, so callers pass plain RGB images.
"""

import os

import numpy as np
import tensorflow as tf

from keras_pass.data.formats import is_image_name
from keras_pass.data.images import list_image_files
from keras_pass.loading import load_backbone, load_model
from keras_pass.models.image_converter import image_converter_of
from keras_pass.reid.features import embed_batch, extract_features
from keras_pass.reid.progress import progress_bar

PROGRESS_FROM = 512  # images; smaller inputs embed without a progress bar


class Embedder:
    """L2-normalised features of images, batched, with the model's preprocessing.

    Args:
        model: a `PASSBackbone` (feature concat(CLS, mean PART)) or a
            fine-tuned `ReIDModel` (its test feature).
        image_converter: a `PASSImageConverter`; default the model's own.
        batch_size: images per forward pass.

    Call it with image paths (a list, a folder, a list file or one image
    file), an array of RGB images 0-255 (`(H, W, 3)` or `(N, H, W, 3)`, any
    size), a list of such arrays of different sizes, or a `tf.data.Dataset`
    of `(H, W, 3)` images. Returns `(N, D)` float32, rows of unit norm.
    """

    def __init__(self, model, image_converter=None, batch_size=64):
        if not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"Expected batch_size >= 1. Received: batch_size={batch_size}")
        self.model = model
        self.image_converter = image_converter or image_converter_of(model)
        self.batch_size = batch_size

    @classmethod
    def from_preset(cls, preset, **kwargs):
        """A backbone preset (name or folder) with its saved preprocessing."""
        return cls(load_backbone(preset), **kwargs)

    @classmethod
    def from_model(cls, model, **kwargs):
        """A model object, or a path the one loader reads (`.keras`, `.pth`, preset)."""
        if isinstance(model, (str, os.PathLike)):
            model = load_model(model)
        return cls(model, **kwargs)

    def __call__(self, images, verbose="auto"):
        paths = _as_paths(images)
        if paths is not None:
            converter = self.image_converter
            return extract_features(self.model, paths, converter.image_size, self.batch_size,
                                    _show(verbose, len(paths)), converter.mean, converter.std)
        dataset, count = _as_dataset(images)
        batches = dataset.map(self.image_converter, num_parallel_calls=tf.data.AUTOTUNE)
        batches = batches.batch(self.batch_size).prefetch(tf.data.AUTOTUNE)
        show = _show(verbose, count)
        bar = progress_bar(count, "images") if show else None
        features = []
        for batch in batches.as_numpy_iterator():
            features.append(embed_batch(self.model, batch))
            if bar is not None:
                bar.add(len(batch))
        if not features:
            raise ValueError("Expected at least one image. Received: an empty input")
        return np.concatenate(features).astype(np.float32)


def _show(verbose, count):
    if verbose == "auto":
        return count is not None and count >= PROGRESS_FROM
    return bool(verbose)


def _as_paths(images):
    if isinstance(images, (str, os.PathLike)):
        path = os.fspath(images)
        if os.path.isfile(path) and is_image_name(path):
            return [path]
        return list_image_files(path)
    if isinstance(images, (list, tuple)) and images and all(isinstance(p, (str, os.PathLike)) for p in images):
        return [os.fspath(p) for p in images]
    return None


def _as_dataset(images):
    """(dataset of (H, W, 3) images, count or None)."""
    if isinstance(images, tf.data.Dataset):
        rank = len(images.element_spec.shape)
        if rank not in (3, 4):
            raise ValueError("Expected a tf.data.Dataset of (H, W, 3) images (or batches of them). "
                             f"Received: element_spec={images.element_spec}")
        dataset = images.unbatch() if rank == 4 else images
        count = int(dataset.cardinality())
        return dataset, count if count >= 0 else None
    if isinstance(images, (list, tuple)):  # arrays, possibly of different sizes
        arrays = [_check_image(np.asarray(image), "images[i]") for image in images]
        signature = tf.TensorSpec((None, None, 3), tf.as_dtype(arrays[0].dtype) if arrays else tf.uint8)
        return tf.data.Dataset.from_generator(lambda: iter(arrays), output_signature=signature), len(arrays)
    array = np.asarray(images)
    if array.ndim == 3:
        array = array[None]
    if array.ndim != 4:
        raise ValueError("Expected image paths, an (H, W, 3) or (N, H, W, 3) array, a list of arrays "
                         f"or a tf.data.Dataset. Received: an array of shape {array.shape}")
    _check_image(array[0] if len(array) else array, "images")
    return tf.data.Dataset.from_tensor_slices(array), len(array)


def _check_image(image, name):
    if image.ndim != 3 or image.shape[-1] != 3:
        raise ValueError(f"Expected RGB images of shape (H, W, 3). Received: {name}.shape={image.shape}")
    return image
