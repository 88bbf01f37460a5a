"""Moved to `keras_pass.recipes.cluster_contrast` (the recipes sit above the library pieces); this name
stays importable and is the same module."""

import importlib
import sys

_module = importlib.import_module("keras_pass.recipes.cluster_contrast")

sys.modules[__name__] = _module
