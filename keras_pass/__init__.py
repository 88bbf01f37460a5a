"""keras-pass: PASS part-aware self-supervised pre-training for person ReID."""

__version__ = "0.1.0"

# Imported on first use, so that `keras-pass` can quiet TensorFlow's C++
# start-up logging before Keras (and with it TensorFlow) is imported.
_LAZY = {"PASSBackbone": "keras_pass.models", "list_presets": "keras_pass.models"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'keras_pass' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
