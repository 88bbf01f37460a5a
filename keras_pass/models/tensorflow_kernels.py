"""Moved to `keras_pass.backend.tensorflow_kernels` (backend-specific code lives in keras_pass/backend);
this name stays importable and is the same module."""

import importlib
import sys

sys.modules[__name__] = importlib.import_module("keras_pass.backend.tensorflow_kernels")
