"""Preprocessing that travels with a backbone preset (keras-hub's converter).

`PASSImageConverter` resizes raw RGB images (0-255) to the model's size and
normalises them with the statistics the weights were trained with:
`"imagenet"` for pre-trained backbones (the release pre-trains with ImageNet
mean/std), `"half"` (0.5/0.5) for fine-tuned ones. `save_to_preset` writes it
as `image_converter.json`, so `keras_hub.layers.ImageConverter.from_preset`
and `load_image_converter` read it back.
"""

import keras
import numpy as np
from keras import ops
from keras_hub.layers import ImageConverter
from keras_hub.models import Backbone
from keras_hub.src.utils.preset_utils import check_file_exists
from keras_hub.src.utils.tensor_utils import in_tf_function

from keras_pass.data.images import HALF_MEAN, HALF_STD, IMAGENET_MEAN, IMAGENET_STD

STATISTICS = {"imagenet": (IMAGENET_MEAN, IMAGENET_STD), "half": (HALF_MEAN, HALF_STD)}
IMAGE_CONVERTER_FILE = "image_converter.json"


def statistics(name):
    """(mean, std) of a named normalisation ("imagenet" or "half")."""
    if name not in STATISTICS:
        raise ValueError(f"Expected normalization in {tuple(STATISTICS)}. Received: normalization={name}")
    return STATISTICS[name]


@keras.saving.register_keras_serializable(package="keras_pass")
class PASSImageConverter(ImageConverter):
    """Resize to `image_size`, then `(x / 255 - mean) / std` per channel.

    Plain (aspect-distorting) bilinear resizing with antialiasing, as the
    release's `T.Resize((H, W))` on PIL images and the test pipeline
    (`reid.data.test_transform`); no crop, no pad. `mean`/`std` are in
    [0, 1] units. Its `backbone_cls` (keras-hub's pairing of a converter
    with its backbone) is set in `keras_pass.models.backbone`, which uses
    this class and so is imported after it.
    """

    def __init__(self, image_size=None, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                 interpolation="bilinear", antialias=True, **kwargs):
        mean, std = tuple(float(m) for m in mean), tuple(float(s) for s in std)
        if len(mean) != 3 or len(std) != 3 or min(std) <= 0:
            raise ValueError("Expected 3 channel means and 3 positive stds. "
                             f"Received: mean={mean}, std={std}")
        for key in ("scale", "offset", "crop_to_aspect_ratio", "pad_to_aspect_ratio"):
            kwargs.pop(key, None)  # derived from mean/std; fixed by the release
        super().__init__(
            image_size=None if image_size is None else tuple(image_size),
            scale=[1.0 / (255.0 * s) for s in std],
            offset=[-m / s for m, s in zip(mean, std)],
            crop_to_aspect_ratio=False,
            interpolation=interpolation,
            antialias=antialias,
            **kwargs,
        )
        self.mean, self.std = mean, std

    @classmethod
    def for_backbone(cls, backbone, normalization="imagenet"):
        """The converter of `backbone`'s native size with named statistics."""
        mean, std = statistics(normalization)
        return cls(image_size=tuple(backbone.image_shape[:2]), mean=mean, std=std)

    def call(self, inputs):
        # Resize in float: resizing uint8 rounds to whole levels in some
        # paths (eager) and not in others (traced), a 2e-3 feature mismatch.
        if isinstance(inputs, (list, tuple, np.ndarray)):
            inputs = np.asarray(inputs)
        if in_tf_function():  # inside tf.data, whatever the backend
            import tensorflow as tf

            return super().call(tf.cast(inputs, "float32"))
        return super().call(ops.cast(inputs, "float32"))

    def normalize(self, images):
        """`(images - mean) / std` for float images already in [0, 1]."""
        return ((np.asarray(images) - np.array(self.mean)) / np.array(self.std)).astype("float32")

    def get_config(self):
        config = super().get_config()
        for key in ("scale", "offset", "crop_to_aspect_ratio", "pad_to_aspect_ratio"):
            config.pop(key, None)
        return {**config, "image_size": None if self.image_size is None else list(self.image_size),
                "mean": list(self.mean), "std": list(self.std)}


def image_converter_of(model):
    """The preprocessing `model`'s weights expect: a backbone's own converter
    (ImageNet statistics when it has none: a pre-training backbone); for a
    fine-tuned model (`ReIDModel`, cluster contrast) the release's 0.5/0.5."""
    if isinstance(model, Backbone):
        return sized_image_converter(model.image_converter, model)
    return PASSImageConverter.for_backbone(model.backbone, "half")


def load_image_converter(handle, backbone):
    """The preset's `PASSImageConverter` at the backbone's image size; ImageNet
    statistics for presets written before converters were saved."""
    converter = None
    if check_file_exists(handle, IMAGE_CONVERTER_FILE):
        converter = PASSImageConverter.from_preset(handle)
    return sized_image_converter(converter, backbone)


def sized_image_converter(converter, backbone):
    """A copy of `converter` (None: ImageNet statistics) resizing to the
    backbone's native size."""
    config = {} if converter is None else converter.get_config()
    return PASSImageConverter.from_config({**config, "image_size": list(backbone.image_shape[:2])})
