"""keras-pass: PASS part-aware self-supervised pre-training for person ReID."""

__version__ = "0.1.0"

from keras_pass.models import PASSBackbone, list_presets  # noqa: E402
