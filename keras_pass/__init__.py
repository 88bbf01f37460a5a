"""keras-pass: PASS part-aware self-supervised pre-training for person ReID."""

from keras_pass import startup as _startup

_startup.prepare()  # before Keras loads: KERAS_BACKEND checked, TensorFlow's start-up lines left out

import importlib as _importlib

__version__ = "0.1.0"

# Every module defining a Keras-serialisable class, imported here so that
# `keras.saving.load_model` and `keras_hub.models.Backbone.from_preset(dir)`
# work right after `import keras_pass` (0.2 s on top of Keras and keras-hub, which the backbone needs anyway).
_SERIALIZABLE_MODULES = (
    "keras_pass.models",
    "keras_pass.models.image_converter",
    "keras_pass.pretraining.trainer",
    "keras_pass.reid.model",
    "keras_pass.uda.model",
)
for _module in _SERIALIZABLE_MODULES:
    _importlib.import_module(_module)

from keras_pass.models import PASSBackbone, list_presets  # noqa: E402
from keras_pass.models.image_converter import PASSImageConverter  # noqa: E402

# Deployment helpers, imported on first use.
_LAZY = {"Embedder": "keras_pass.deploy", "export_feature_extractor": "keras_pass.deploy"}

__all__ = ["Embedder", "PASSBackbone", "PASSImageConverter", "export_feature_extractor", "list_presets"]


def __getattr__(name):
    if name in _LAZY:
        return getattr(_importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_pass' has no attribute {name!r}")
