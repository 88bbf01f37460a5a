"""Image listing and decoding shared by the pre-training and ReID pipelines.

Listing is plain Python (run once); decoding is tf ops, so it runs inside
`tf.data` whatever `KERAS_BACKEND` is.
"""

import contextlib
import logging
import os
import re
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


# === Up-front checks: cheap enough for every file of a data set ===
# A file's size, its format's magic bytes and, for JPEG and PNG, its end
# marker (a truncated JPEG only fails at full decode, but has lost its EOI
# marker). Reading 16 + 64 bytes per file costs 0.1 ms (1000 128x64 JPEGs,
# 8 threads, 2 busy CPU cores: 102 ms), a full TF decode 2.3 ms.

_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF8": "gif", b"BM": "bmp"}
_END_MARKERS = {"jpeg": b"\xff\xd9", "png": b"IEND"}
_TAIL_BYTES = 64  # end markers may be followed by a few padding bytes
_NAMED = 5  # files named in one message


def image_file_problem(path):
    """Why the image file at `path` cannot be decoded, or None when its
    size, header and end marker look right."""
    try:
        size = os.path.getsize(path)
        if size == 0:
            return "empty file"
        with open(path, "rb") as handle:
            head = handle.read(16)
            handle.seek(max(0, size - _TAIL_BYTES))
            tail = handle.read()
    except OSError as error:
        return error.strerror or type(error).__name__
    kind = next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)
    if kind is None:
        return "not a JPEG, PNG, GIF or BMP file"
    if kind in _END_MARKERS and _END_MARKERS[kind] not in tail:
        return f"truncated {kind.upper()} (no end marker)"
    return None


def find_unreadable_images(paths, workers=8, problem_of=None, chunksize=64):
    """`[(path, problem)]` of the files among `paths` that fail
    `problem_of` (default `image_file_problem`), in the order of `paths`
    (threads: file-system bound, and TF's decode releases the GIL)."""
    from concurrent.futures import ThreadPoolExecutor

    paths = [os.fspath(p) for p in paths]
    with ThreadPoolExecutor(workers) as pool:
        problems = list(pool.map(problem_of or image_file_problem, paths, chunksize=chunksize))
    return [(path, problem) for path, problem in zip(paths, problems) if problem]


def describe_unreadable(bad, total):
    named = "; ".join(f"{path} ({problem})" for path, problem in bad[:_NAMED])
    more = f" and {len(bad) - _NAMED} more" if len(bad) > _NAMED else ""
    return f"{len(bad)} of {total} images unreadable: {named}{more}"


def check_images(paths, name="paths"):
    """ValueError naming the unreadable files among `paths` (evaluation
    sets, extraction, search: every feature must belong to its path)."""
    paths = list(paths)
    bad = find_unreadable_images(paths)
    if bad:
        raise ValueError(f"Expected readable images in {name}. Received: "
                         f"{describe_unreadable(bad, len(paths))}")
    return paths


def readable_images(paths, name="paths", skipped_images=None):
    """The paths that pass `image_file_problem`; the others are logged
    (`skipped_images.record`, or a warning), counted and left out (training
    sets). ValueError when none is left."""
    paths = list(paths)
    bad = find_unreadable_images(paths)
    if len(bad) == len(paths):
        raise ValueError(f"Expected at least one readable image in {name}. Received: "
                         f"{describe_unreadable(bad, len(paths))}")
    if not bad:
        return paths
    if skipped_images is not None:
        skipped_images.record([path for path, _ in bad[:_NAMED]], count=len(bad))
    else:
        logger.warning("Skipping %s", describe_unreadable(bad, len(paths)))
    rejected = {path for path, _ in bad}
    return [path for path in paths if path not in rejected]


def _op_message(text):
    """TF's error text without its `{{function_node ...}}` and `[Op:...]` wrapping."""
    text = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", text.splitlines()[0] if text else "")
    return text.strip()


def decode_problem(path):
    """Why TF cannot decode the file at `path` (a full decode), or None."""
    problem = image_file_problem(path)
    if problem is None:
        try:
            read_image(path)
        except (tf.errors.OpError, ValueError) as error:
            problem = _op_message(str(error)) or type(error).__name__
    return problem


def undecodable_error(paths, name="paths"):
    """A ValueError naming the files among `paths` that fail a full decode
    (those that passed the header checks but hold corrupt data), or None."""
    paths = list(paths)
    bad = find_unreadable_images(paths, problem_of=decode_problem, chunksize=16)
    if not bad:
        return None
    return ValueError(f"Expected images that decode in {name}. Received: {describe_unreadable(bad, len(paths))}")


@contextlib.contextmanager
def naming_undecodable_images(paths, name="paths"):
    """Around a `tf.data` pipeline reading `paths`: TF's decode error (a file
    whose header and end marker are sound but whose data is corrupt) names
    no file, so on one every file is decoded and the culprits are named in a
    ValueError instead (its message says how to go on)."""
    try:
        yield
    except tf.errors.InvalidArgumentError:
        error = undecodable_error(paths, name)
        if error is None:
            raise
        raise ValueError(f"{error} (remove or replace them, then re-run: training resumes from "
                         "its last backup)") from None


def check_some_image_decodes(paths, name="paths"):
    """ValueError unless one of `paths` decodes (tried in order, stopping at
    the first that does: one decode for a sound data set), so that a reader
    that skips unreadable files never waits forever for a readable one."""
    problems = []
    for path in paths:
        problem = decode_problem(path)
        if problem is None:
            return path
        problems.append((path, problem))
    raise ValueError(f"Expected at least one readable image in {name}. Received: "
                     f"{describe_unreadable(problems, len(problems))}")
