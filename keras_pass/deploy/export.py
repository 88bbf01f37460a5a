"""Exports the ReID feature extractor, then checks it with its own runtime.

The exported function maps a batch of images (any batch size) to the
release's test feature: for a bare `PASSBackbone` its `reid_features`
(concat(CLS, mean PART)), for a fine-tuned `ReIDModel` its test feature
(`before` or `after` the BNNeck, as configured). Features are not
L2-normalised (the release normalises at retrieval; `Embedder` does).
Inputs are float32 NHWC images at the model's size, already normalised with
the preset's statistics, or with `raw_input=True` uint8 RGB images of any
size (resize and normalisation baked in; ONNX and LiteRT have no
antialiased resize, so theirs resizes without it: identical features for
inputs at the model's size, small differences when downsampling).

Exports are written on the TensorFlow backend only: a JAX SavedModel holds
`vhlo.composite_v2` (from `erf`) that TensorFlow cannot run, and JAX's ONNX
path needs a fixed batch (KERAS_NOTES). Weights are backend-independent, so
`keras-pass export` re-runs itself under TensorFlow when needed.
"""

import os

import keras
import numpy as np
from keras import ops

from keras_pass import io
from keras_pass.backend.kernels import generic_ops
from keras_pass.models.backbone import PASSBackbone, reid_feature
from keras_pass.models.image_converter import image_converter_of

FORMATS = ("tf_saved_model", "onnx", "litert")
PARITY_TOLERANCE = 1e-4
PARITY_BATCH_SIZES = (1, 5)
# No antialiased resize in these runtimes: their raw-input exports resize
# plainly (features differ a little from the Keras side when downsampling).
UNALIASED_FORMATS = ("onnx", "litert")
_SUFFIX = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}


class ExportParityError(ValueError):
    """The exported model's features differ from the Keras model's."""


def _test_features(model, images):
    if isinstance(model, PASSBackbone):
        return reid_feature(model(images))
    before, after = model.features(images)
    return before if getattr(model, "test_feature", "before") == "before" else after


def feature_extractor(model, raw_input=False, antialias=True):
    """A functional `keras.Model`: images -> test features (see module doc);
    `antialias=False` resizes raw input without antialiasing."""
    backbone = model if isinstance(model, PASSBackbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, PASSBackbone) or not (backbone is model or hasattr(model, "features")):
        raise ValueError("Expected a PASSBackbone or a fine-tuned ReIDModel. "
                         f"Received: model={type(model).__name__}")
    height, width = backbone.image_shape[:2]
    if raw_input:
        images = keras.Input((None, None, 3), dtype="uint8", name="images")
        converter = image_converter_of(model)  # the preset's own preprocessing
        if not antialias:
            converter = converter.from_config({**converter.get_config(), "antialias": False})
        normalised = converter(images)
    else:
        images = normalised = keras.Input((height, width, 3), name="images")
    return keras.Model(images, _test_features(model, normalised), name="feature_extractor")


def parity_inputs(extractor, batch_size, seed=0):
    """Random inputs the extractor takes: normalised floats, or uint8 images
    of 1.5x the model's size when preprocessing is baked in."""
    rng = np.random.default_rng(seed)
    spec = extractor.inputs[0]
    if spec.dtype == "uint8":
        return rng.integers(0, 256, size=(batch_size, 96, 48, 3)).astype("uint8")
    return rng.normal(size=(batch_size, *spec.shape[1:])).astype("float32")


def load_exported(path, format):
    """A function images -> features running the export with its own
    runtime: TensorFlow alone, onnxruntime, or the LiteRT interpreter."""
    if format == "tf_saved_model":
        import tensorflow as tf

        loaded = tf.saved_model.load(path)  # kept alive: `serve` needs its variables
        return lambda images: loaded.serve(images).numpy()
    if format == "onnx":
        import onnxruntime

        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return lambda images: session.run(None, {name: images})[0]
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:  # TensorFlow's own copy (deprecated)
        from tensorflow.lite.python.interpreter import Interpreter

    interpreter = Interpreter(model_path=path)

    def run(images):
        (inputs,), (outputs,) = interpreter.get_input_details(), interpreter.get_output_details()
        interpreter.resize_tensor_input(inputs["index"], images.shape)
        interpreter.allocate_tensors()
        interpreter.set_tensor(inputs["index"], images)
        interpreter.invoke()
        return interpreter.get_tensor(outputs["index"])

    return run


def _check_format(format):
    if format not in FORMATS:
        raise ValueError(f"Expected format in {FORMATS}. Received: format={format}")
    if keras.config.backend() != "tensorflow":
        raise ValueError("Expected the TensorFlow backend for exports (a JAX SavedModel does not run "
                         "under TensorFlow). Received: KERAS_BACKEND="
                         f"{keras.config.backend()}; run KERAS_BACKEND=tensorflow keras-pass export ...")


def export_feature_extractor(model, path, format="tf_saved_model", raw_input=False, verbose=False):
    """Exports `model`'s feature extractor to `path`, reloads it with its own
    runtime and returns the max abs difference to the Keras model over
    batches of 1 and 5; raises `ExportParityError` above 1e-4.

    Args:
        model: a `PASSBackbone` or a fine-tuned `ReIDModel`.
        path: a folder (`tf_saved_model`) or a file (`.onnx`, `.tflite`).
        format: one of `FORMATS`.
        raw_input: bake resize and the preset's normalisation in (uint8 input).
    """
    _check_format(format)
    extractor = feature_extractor(model, raw_input, antialias=format not in UNALIASED_FORMATS)
    inputs = {n: parity_inputs(extractor, n, seed=n) for n in PARITY_BATCH_SIZES}
    expected = {n: ops.convert_to_numpy(extractor(x)) for n, x in inputs.items()}
    path = os.fspath(path)
    with generic_ops():  # the traced graph must hold plain ops only
        if format == "tf_saved_model":
            with io.atomic_directory(path) as staging:
                extractor.export(staging, format=format, verbose=False)
        else:
            with io.atomic_path(path, _SUFFIX[format]) as temporary:
                extractor.export(temporary, format=format, verbose=False)
    run = load_exported(path, format)
    differences = {}
    for batch_size, images in inputs.items():
        differences[batch_size] = float(np.abs(run(images) - expected[batch_size]).max())
        if verbose:
            print(f"{format}: batch {batch_size}: max abs difference {differences[batch_size]:.2e}")
    worst = max(differences.values())
    if not worst <= PARITY_TOLERANCE:
        raise ExportParityError(f"Expected the {format} export within {PARITY_TOLERANCE:g} of the Keras model. "
                                f"Received: max abs difference {worst:.3g} ({path})")
    return worst
