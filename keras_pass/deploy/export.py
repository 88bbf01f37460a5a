"""Exports the ReID feature extractor, then checks it with its own runtime.

The exported function maps a batch of images (any batch size) to the
release's test feature: for a bare `PASSBackbone` its `reid_features`
(concat(CLS, mean PART)), for a fine-tuned `ReIDModel` its test feature
(`before` or `after` the BNNeck, as configured). By default features are
NOT L2-normalised (the release normalises at retrieval; `Embedder` does);
`l2_normalize=True` appends the normalisation (unit-length rows).
Inputs are float32 NHWC images at the model's size, already normalised with
the preset's statistics, or with `raw_input=True` uint8 RGB images of any
size (resize and normalisation baked in; ONNX and LiteRT have no
antialiased resize, so theirs resizes without it: identical features for
inputs at the model's size, small differences when downsampling).

`client="boxmot"` writes what BoxMOT's ReID backends feed and read (see
`keras_pass.deploy.clients`): ImageNet-normalised float input at the
model's size, NCHW (for LiteRT too: BoxMOT 25 cannot feed an NHWC LiteRT
graph), converted inside the graph to the preset's own statistics, plus
BoxMOT's metadata sidecar.

Every ONNX export names its input `images` and output `features` (batch
dimension `batch`) and carries its preprocessing contract in the ONNX
`metadata_props` (`export_contract`).

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
from keras_pass.deploy import clients
from keras_pass.models.backbone import PASSBackbone, reid_feature
from keras_pass.models.image_converter import image_converter_of

FORMATS = ("tf_saved_model", "onnx", "litert")
CLIENTS = (None, "boxmot")
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


def _backbone_of(model):
    backbone = model if isinstance(model, PASSBackbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, PASSBackbone) or not (backbone is model or hasattr(model, "features")):
        raise ValueError("Expected a PASSBackbone or a fine-tuned ReIDModel. "
                         f"Received: model={type(model).__name__}")
    return backbone


def feature_extractor(model, raw_input=False, antialias=True, input_statistics=None,
                      channels_first=False, l2_normalize=False):
    """A functional `keras.Model`: images -> test features (see module doc).

    Args:
        raw_input: uint8 RGB input of any size, the preset's converter inside.
        antialias: `False` resizes raw input without antialiasing.
        input_statistics: `(mean, std)` (0-1 scale) the float input is
            normalised with; converted inside to the preset's. Default: the
            preset's own (no conversion).
        channels_first: float input `(3, H, W)` instead of `(H, W, 3)`.
        l2_normalize: unit-length output rows.
    """
    height, width = _backbone_of(model).image_shape[:2]
    converter = image_converter_of(model)  # the preset's own preprocessing
    if raw_input:
        images = keras.Input((None, None, 3), dtype="uint8", name="images")
        if not antialias:
            converter = converter.from_config({**converter.get_config(), "antialias": False})
        normalised = converter(images)
    else:
        shape = (3, height, width) if channels_first else (height, width, 3)
        images = normalised = keras.Input(shape, name="images")
        if channels_first:
            normalised = ops.transpose(normalised, (0, 2, 3, 1))
        if input_statistics is not None:
            normalised = _renormalise(normalised, input_statistics, (converter.mean, converter.std))
    features = _test_features(model, normalised)
    if l2_normalize:
        features = features / ops.sqrt(ops.maximum(ops.sum(features * features, -1, keepdims=True), 1e-24))
    return keras.Model(images, features, name="feature_extractor")


def _renormalise(images, source, target):
    """`(x - m_s) / s_s` -> `(x - m_t) / s_t`: one per-channel affine map."""
    (source_mean, source_std), (target_mean, target_std) = (np.asarray(s, "float32") for s in source), \
        (np.asarray(t, "float32") for t in target)
    scale = source_std / target_std
    offset = (source_mean - target_mean) / target_std
    return images * scale + offset


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


def check_overwrite(path, overwrite):
    """An existing output is replaced only when asked to."""
    if os.path.lexists(path) and not overwrite:
        raise ValueError("Expected an output path that does not exist (overwrite=True, or --overwrite, "
                         f"replaces it). Received: path={path}")


def _check_arguments(path, format, raw_input, client, overwrite):
    if format not in FORMATS:
        raise ValueError(f"Expected format in {FORMATS}. Received: format={format}")
    if client not in CLIENTS:
        raise ValueError(f"Expected client in {CLIENTS}. Received: client={client}")
    if client is not None and (raw_input or format not in clients.FORMATS[client]):
        raise ValueError(f"Expected format in {clients.FORMATS[client]} and no raw input for client={client}. "
                         f"Received: format={format}, raw_input={raw_input}")
    check_overwrite(path, overwrite)
    if keras.config.backend() != "tensorflow":
        raise ValueError("Expected the TensorFlow backend for exports (a JAX SavedModel does not run "
                         "under TensorFlow). Received: KERAS_BACKEND="
                         f"{keras.config.backend()}; run KERAS_BACKEND=tensorflow keras-pass export ...")


def export_feature_extractor(model, path, format="tf_saved_model", raw_input=False, verbose=False,
                             client=None, l2_normalize=False, overwrite=False):
    """Exports `model`'s feature extractor to `path`, reloads it with its own
    runtime and returns the max abs difference to the Keras model over
    batches of 1 and 5; raises `ExportParityError` above 1e-4 (the export
    is then not put in place).

    Args:
        model: a `PASSBackbone` or a fine-tuned `ReIDModel`.
        path: a folder (`tf_saved_model`) or a file (`.onnx`, `.tflite`).
        format: one of `FORMATS`.
        raw_input: bake resize and the preset's normalisation in (uint8 input).
        client: `None`, or `"boxmot"` (BoxMOT's layout, preprocessing and
            metadata sidecar; `onnx` or `litert`).
        l2_normalize: unit-length output rows (default: the raw test feature).
        overwrite: replace an existing `path` (atomically); without it an
            existing path is an error.
    """
    path = os.fspath(path)
    _check_arguments(path, format, raw_input, client, overwrite)
    layout = clients.layout(client, format)
    extractor = feature_extractor(model, raw_input, antialias=format not in UNALIASED_FORMATS,
                                  input_statistics=clients.input_statistics(client),
                                  channels_first=layout == "NCHW", l2_normalize=l2_normalize)
    contract = clients.export_contract(model, extractor, raw_input, layout, client, l2_normalize,
                                       antialias=format not in UNALIASED_FORMATS)
    inputs = {n: parity_inputs(extractor, n, seed=n) for n in PARITY_BATCH_SIZES}
    expected = {n: ops.convert_to_numpy(extractor(x)) for n, x in inputs.items()}
    with generic_ops():  # the traced graph must hold plain ops only
        if format == "tf_saved_model":
            with io.atomic_directory(path) as staging:
                extractor.export(staging, format=format, verbose=False)
                worst = _check_parity(staging, format, inputs, expected, verbose, path)
        else:
            with io.atomic_path(path, _SUFFIX[format]) as temporary:
                extractor.export(temporary, format=format, verbose=False)
                if format == "onnx":
                    clients.name_and_describe_onnx(temporary, contract)
                worst = _check_parity(temporary, format, inputs, expected, verbose, path)
    if client is not None:
        clients.write_sidecar(client, path, contract)
    return worst


def _check_parity(written, format, inputs, expected, verbose, path):
    run = load_exported(written, format)
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
