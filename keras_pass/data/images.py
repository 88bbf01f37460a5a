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

from keras_pass.data.formats import IMAGE_EXTENSIONS, is_image_name

# Pre-training normalises with ImageNet statistics, fine-tuning with 0.5/0.5.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF_MEAN = HALF_STD = (0.5, 0.5, 0.5)

logger = logging.getLogger("keras_pass")


def list_image_files(files_or_dir, extensions=IMAGE_EXTENSIONS):
    """Returns the image paths named by `files_or_dir`, as a list of str.

    `files_or_dir` is one of:
    - a folder: every file ending in `extensions` (any case) below it, at any
      depth (`walk_files`: each real folder once), sorted so the order does
      not depend on the file system;
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
            extensions = tuple(ext.lower() for ext in extensions)
            paths = walk_files(path, lambda name: name.lower().endswith(extensions))
        elif os.path.isfile(path):
            paths = read_list_file(path)
        else:
            raise ValueError(
                "Expected an existing image folder or list file. "
                f"Received: files_or_dir={path} ({not_a_file(path)})"
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
    against the list file's folder. ValueError for an image or binary file."""
    base = os.path.dirname(os.path.abspath(list_file))
    if not is_image_name(list_file):
        try:
            with open(list_file, encoding="utf-8") as f:
                lines = [line.strip() for line in f]
            return [os.path.normpath(os.path.join(base, line))
                    for line in lines if line and not line.startswith("#")]
        except UnicodeDecodeError:  # told by content only now: a text list may start with "BM"
            pass
    kind = "an image file" if is_image_name(list_file) or _image_kind(list_file) else "a binary file"
    raise ValueError("Expected an image folder or a list file (UTF-8 text, one path per line). "
                     f"Received: {list_file} ({kind})")


def _as_path(files_or_dir):
    try:
        return os.fspath(files_or_dir)
    except TypeError:
        raise ValueError(
            "Expected a folder, a list file or a list of image paths. "
            f"Received: files_or_dir={files_or_dir!r}"
        ) from None


def not_a_file(path):
    """What is at `path` when it is not a readable regular file, in words
    (for "Received: PATH (...)"), or None when it is one."""
    if os.path.isdir(path):
        return "a folder"
    if os.path.islink(path) and not os.path.exists(path):
        return "a symbolic link to a missing file, or a symbolic link loop"
    if not os.path.exists(path):
        return "no such file or folder"
    return None if os.path.isfile(path) else "not a regular file"


def walk_files(folder, keep=is_image_name):
    """The files below `folder` (any depth, symbolic links followed) whose
    name passes `keep`, sorted. Each real folder is entered once: a link
    back to a folder already walked (a symbolic link loop, or a second link
    to the same folder) is cut, and said once, in one warning line."""
    seen, found, cut = set(), [], []
    for root, dirs, files in os.walk(folder, followlinks=True):
        try:
            status = os.stat(root)
        except OSError:
            continue
        if (status.st_dev, status.st_ino) in seen:
            cut.append(os.path.relpath(root, folder))
            dirs[:] = []
            continue
        seen.add((status.st_dev, status.st_ino))
        dirs.sort(key=lambda name: (os.path.islink(os.path.join(root, name)), name))  # real folders first
        found.extend(os.path.join(root, name) for name in files if keep(name))
    if cut:
        logger.warning("Walked each folder below %s once: left out %d folder(s) reached again through "
                       "symbolic links (a loop or a repeated link): %s", folder, len(cut),
                       ", ".join(sorted(cut)[:3]) + (" ..." if len(cut) > 3 else ""))
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
    first seen (the first `max_paths`). Each file is named in a warning once.
    Files left out up front (`left_out`) are summarised in one line, and
    listed in full in `list_file` when one is given. Thread-safe: tf.data
    reports from its own threads.
    """

    def __init__(self, max_paths=10000, list_file=None):
        self.max_paths = max_paths
        self.list_file = list_file
        self.count = 0
        self.paths = []
        self._seen = set()
        self._lock = threading.Lock()

    def _add(self, paths, count):
        """Counts `count` skips; returns those of `paths` not seen before."""
        new = []
        with self._lock:
            self.count += count
            for path in paths:
                if path not in self._seen:
                    new.append(path)
                    if len(self.paths) < self.max_paths:
                        self._seen.add(path)
                        self.paths.append(path)
            return new, self.count

    def record(self, paths, count=None):
        """Records skipped `paths`; `count` (default `len(paths)`) may be
        larger when only some of the skipped files are named."""
        paths = [p.decode("utf-8", "replace") if isinstance(p, bytes) else p for p in paths]
        count = len(paths) if count is None else count
        new, total = self._add(paths, count)
        for path in new:
            logger.warning("Skipped an unreadable image (%d so far): %s", total, path)
        if count > len(paths):
            logger.warning("... and %d more unreadable images", count - len(paths))

    def left_out(self, bad, total, name="paths"):
        """Records the `[(path, problem)]` found by an up-front check among
        `total` files: one warning line (count, the first few, where the
        full list is), each file named once however often this is called."""
        new, _ = self._add([path for path, _ in bad], len(bad))
        if not new:
            return
        where = ""
        if self.list_file:
            from keras_pass import io

            io.write_text(self.list_file, "".join(f"{path}\t{problem}\n" for path, problem in bad))
            where = f" (full list: {self.list_file})"
        logger.warning("Left out, in %s, %s%s", name, describe_unreadable(bad, total), where)

    def __repr__(self):
        return f"SkippedImages(count={self.count})"


# === Up-front checks: cheap enough for every file of a data set ===
# A file's size, its format's magic bytes and, for JPEG and PNG, its end
# marker (a truncated JPEG only fails at full decode, but has lost its EOI
# marker). Reading 16 + 64 bytes per file costs 0.1 ms (1000 128x64 JPEGs,
# 8 threads, 2 busy CPU cores: 102 ms), a full TF decode 2.3 ms.

_MAGIC = {b"\xff\xd8\xff": "jpeg", b"\x89PNG\r\n\x1a\n": "png", b"GIF8": "gif", b"BM": "bmp"}
if ".webp" in IMAGE_EXTENSIONS:
    _MAGIC[b"RIFF"] = "webp"  # RIFF....WEBP: the form type is checked in `_image_kind`
_END_MARKERS = {"jpeg": b"\xff\xd9", "png": b"IEND"}
_TAIL_BYTES = 64  # end markers may be followed by a few padding bytes
_NAMED = 5  # files named in one message


def _image_kind(path, head=None):
    """The format named by the magic bytes of the file at `path`, or None."""
    if head is None:
        try:
            with open(path, "rb") as handle:
                head = handle.read(16)
        except OSError:
            return None
    kind = next((kind for magic, kind in _MAGIC.items() if head.startswith(magic)), None)
    return None if kind == "webp" and head[8:12] != b"WEBP" else kind


def image_file_problem(path):
    """Why the image file at `path` cannot be decoded, or None when its
    size, header and end marker look right."""
    if not_a_file(path) not in (None, "no such file or folder"):
        return not_a_file(path)
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
    kind = _image_kind(path, head)
    if kind is None:
        kinds = [kind.upper() for kind in dict.fromkeys(_MAGIC.values())]
        return f"not a {', '.join(kinds[:-1])} or {kinds[-1]} file"
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


def split_readable(paths, name="paths"):
    """`(readable, [(path, problem)])`: the paths that pass
    `image_file_problem`, and the others. ValueError when none passes."""
    paths = list(paths)
    bad = find_unreadable_images(paths)
    if len(bad) == len(paths):
        raise ValueError(f"Expected at least one readable image in {name}. Received: "
                         f"{describe_unreadable(bad, len(paths))}")
    rejected = {path for path, _ in bad}
    return [path for path in paths if path not in rejected], bad


def readable_images(paths, name="paths", skipped_images=None):
    """The paths that pass `image_file_problem`; the others are left out,
    summarised in one warning (`SkippedImages.left_out`) and counted
    (training sets). ValueError when none is left."""
    paths = list(paths)
    readable, bad = split_readable(paths, name)
    if bad:
        (skipped_images or SkippedImages()).left_out(bad, len(paths), name)
    return readable


def _op_message(text):
    """TF's error text without its `{{function_node ...}}` and `[Op:...]` wrapping."""
    text = re.sub(r"\{\{.*?\}\}|\[Op:\w+\]", "", text.splitlines()[0] if text else "")
    return text.strip()


@contextlib.contextmanager
def libjpeg_stderr_silenced():
    """Around the checks' own full decodes (never around a `tf.data`
    pipeline): libjpeg writes its warnings ("Corrupt JPEG data: ...") with
    C stdio to file descriptor 2; the failure is named in a ValueError."""
    import sys

    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no file descriptor 2 (embedded interpreters)
        yield
        return
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


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
    with libjpeg_stderr_silenced():
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
    with libjpeg_stderr_silenced():
        for path in paths:
            problem = decode_problem(path)
            if problem is None:
                return path
            problems.append((path, problem))
    raise ValueError(f"Expected at least one readable image in {name}. Received: "
                     f"{describe_unreadable(problems, len(problems))}")
