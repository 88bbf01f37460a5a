"""keras-pass: PASS part-aware self-supervised pre-training for person ReID.

Imports every module that defines a Keras-serialisable class, so that
`keras.saving.load_model` and `keras_hub.models.Backbone.from_preset(dir)`
work right after `import keras_pass` (the deployment helpers add 0.02 s).
"""

from keras_pass import startup as _startup

_startup.prepare()  # before Keras loads: KERAS_BACKEND checked, TensorFlow's start-up lines left out

from keras_pass.deploy.embedder import Embedder  # noqa: E402
from keras_pass.deploy.export import export_feature_extractor
from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.image_converter import PASSImageConverter
from keras_pass.models.preset_io import list_presets
from keras_pass.pretraining.trainer import PASSPretrainer
from keras_pass.reid.model import ReIDModel
from keras_pass.uda.model import ClusterContrastModel
from keras_pass.version import __version__

__all__ = [
    "ClusterContrastModel",
    "Embedder",
    "PASSBackbone",
    "PASSImageConverter",
    "PASSPretrainer",
    "ReIDModel",
    "__version__",
    "export_feature_extractor",
    "list_presets",
]
