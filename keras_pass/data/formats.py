"""Which files the image readers take: one definition for every reader
(pre-training, fine-tuning layouts, extraction, index, search, attention)
and for the sentence their `--help` shows. No TensorFlow import here, so
that `--help` stays fast.

Folders are listed by extension (any case); files are then read by content
(a GIF named `.jpg` decodes). WebP is listed where the installed TensorFlow
decodes it (`tf.io.decode_image` does from TF 2.17, measured with 2.21).
"""

from importlib import metadata

_ALWAYS = (".jpg", ".jpeg", ".png", ".bmp", ".gif")
_WEBP_FROM = (2, 17)


def _tensorflow_decodes_webp():
    try:
        version = metadata.version("tensorflow")
    except metadata.PackageNotFoundError:  # e.g. tensorflow-cpu
        try:
            version = metadata.version("tensorflow-cpu")
        except metadata.PackageNotFoundError:
            return False
    numbers = tuple(int(part) for part in version.split(".")[:2] if part.isdigit())
    return numbers >= _WEBP_FROM


IMAGE_EXTENSIONS = _ALWAYS + ((".webp",) if _tensorflow_decodes_webp() else ())
IMAGE_FORMATS_HELP = (
    "Images: JPEG, PNG, BMP, GIF (first frame)" + (", WebP" if ".webp" in IMAGE_EXTENSIONS else "")
    + f" files, listed by extension ({' '.join(IMAGE_EXTENSIONS)}, any case) and read by content."
)


def is_image_name(name):
    """True if the file name `name` has one of `IMAGE_EXTENSIONS` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)
