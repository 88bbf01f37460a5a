"""Image listing and decoding shared by the pre-training and ReID pipelines.

Listing is plain Python (run once); decoding is tf ops, so it runs inside
`tf.data` whatever `KERAS_BACKEND` is.
"""

import logging
import os
import threading

import tensorflow as tf

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png")
# Pre-training normalises with ImageNet statistics, fine-tuning with 0.5/0.5.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = HALF_STD = (0.5, 0.5, 0.5)

logger = logging.getLogger("keras_pass")


def list_image_files(files_or_dir, extensions=IMAGE_EXTENSIONS):
    """Returns the image paths named by `files_or_dir`, as a list of str.

    `files_or_dir` is one of:
    - a folder: every file ending in `extensions` (any case) below it, at any
      depth, sorted so the order does not depend on the file system;
    - a list file (any other existing file): one path per line, blank lines
      and lines starting with `#` ignored, relative paths resolved against the
      list file's folder;
    - a list or tuple of paths, used as given.

    Listed files are not opened here (a 4M-image list stays fast): missing or
    unreadable ones are skipped later by the reading pipeline.
    """
    if isinstance(files_or_dir, (list, tuple)):
        paths = [os.fspath(path) for path in files_or_dir]
        source = "list of paths"
    else:
        path = _as_path(files_or_dir)
        if os.path.isdir(path):
            paths = _walk_images(path, extensions)
        elif os.path.isfile(path):
            paths = read_list_file(path)
        else:
            raise ValueError(
                "Expected an existing image folder or list file. "
                f"Received: files_or_dir={path!r}"
            )
        source = path
    if not paths:
        raise ValueError(
            f"Expected at least one image ({', '.join(extensions)}). Found none "
            f"in {source}. Received: files_or_dir={files_or_dir!r}"
        )
    return paths


def read_list_file(list_file):
    """Paths listed one per line in `list_file`, relative ones made absolute
    against the list file's folder."""
    base = os.path.dirname(os.path.abspath(list_file))
    with open(list_file, encoding="utf-8") as f:
        lines = [line.strip() for line in f]
    return [
        os.path.normpath(os.path.join(base, line))
        for line in lines
        if line and not line.startswith("#")
    ]


def _as_path(files_or_dir):
    try:
        return os.fspath(files_or_dir)
    except TypeError:
        raise ValueError(
            "Expected a folder, a list file or a list of image paths. "
            f"Received: files_or_dir={files_or_dir!r}"
        ) from None


def _walk_images(folder, extensions):
    extensions = tuple(ext.lower() for ext in extensions)
    found = []
    for root, dirs, files in os.walk(folder, followlinks=True):
        dirs.sort()
        found.extend(
            os.path.join(root, name)
            for name in files
            if name.lower().endswith(extensions)
        )
    return sorted(found)


def decode_image_uint8(contents):
    """Decodes JPEG/PNG (also GIF/BMP) bytes to uint8 RGB, shape (height,
    width, 3). Grayscale inputs get 3 channels and alpha is dropped.

    JPEGs use libjpeg's accurate integer DCT, the default of PIL, which the
    official PyTorch pipelines read images with (TF's default differs by up
    to 5 levels).
    """
    image = tf.cond(
        tf.io.is_jpeg(contents),
        lambda: tf.io.decode_jpeg(contents, channels=3, dct_method="INTEGER_ACCURATE"),
        lambda: tf.io.decode_image(contents, channels=3, expand_animations=False),
    )
    image.set_shape((None, None, 3))
    return image


def decode_image(contents):
    """`decode_image_uint8` as float32 in [0, 1]."""
    return tf.image.convert_image_dtype(decode_image_uint8(contents), tf.float32)


def read_image(path):
    """Reads and decodes one image file (see `decode_image`). Raises a TF error
    on a missing or corrupt file: pipelines skip such files with
    `tf.data.Dataset.ignore_errors` and report them with `SkippedImages`."""
    return decode_image(tf.io.read_file(path))


class SkippedImages:
    """Counts, and logs, the images a pipeline could not read.

    `count` is the number of skips so far (a bad file read in every epoch
    counts once per epoch); `paths` the distinct skipped files, in the order
    first seen (the first `max_paths`). Thread-safe: tf.data reports from its
    own threads.
    """

    def __init__(self, max_paths=10000):
        self.max_paths = max_paths
        self.count = 0
        self.paths = []
        self._seen = set()
        self._lock = threading.Lock()

    def record(self, paths, count=None):
        """Records skipped `paths`; `count` (default `len(paths)`) may be
        larger when only some of the skipped files are named."""
        paths = [p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in paths]
        count = len(paths) if count is None else count
        with self._lock:
            self.count += count
            for path in paths:
                if path not in self._seen and len(self.paths) < self.max_paths:
                    self._seen.add(path)
                    self.paths.append(path)
            total = self.count
        for path in paths:
            logger.warning("Skipped an unreadable image (%d so far): %s", total, path)
        if count > len(paths):
            logger.warning("... and %d more unreadable images", count - len(paths))

    def __repr__(self):
        return f"SkippedImages(count={self.count})"
