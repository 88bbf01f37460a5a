"""What an export tells its consumers: ONNX names and metadata, BoxMOT's sidecar.

`export_contract` describes an export's preprocessing (input name, layout,
size, dtype, value range, mean/std, resize), its output (name, dimension,
unit length or not) and its origin (keras-pass version, SHA-256 of the
model's weights). Every ONNX export carries it in `metadata_props` (values
are strings; lists as JSON).

BoxMOT 25 (`boxmot.reid.backends`): crops each box from the BGR frame,
`cv2.resize`s it (bilinear, no antialiasing) to the model's input size,
converts to RGB, scales to [0, 1], normalises with ImageNet mean/std and
feeds float32 NCHW (ONNX: `get_inputs()[0]` -> `get_outputs()[0]`); it
L2-normalises the outputs itself. Its LiteRT backend is meant to feed NHWC
to an NHWC graph, but BoxMOT 25 transposes such a batch twice
(`inference_preprocess`, then `forward`) and LiteRT refuses it
("Dimension mismatch"); it feeds NCHW unchanged to an NCHW graph, so the
LiteRT export for BoxMOT is NCHW too. It reads the input
size from `<weights>.metadata.json` (`core/artifacts.py`: `model_name`,
`preprocess`, `model_kwargs.img_size`, ...; the ONNX graph's static size
wins over it, the LiteRT backend reads the sidecar only), else guesses
from the file name, else 256x128. Exports for it take that input and
convert it inside the graph to the preset's own statistics.
"""

import hashlib
import json
import os

from keras import ops

from keras_pass import io
from keras_pass.models.image_converter import image_converter_of, statistics
from keras_pass.version import __version__

INPUT_NAME, OUTPUT_NAME, BATCH_DIMENSION = "images", "features", "batch"
FORMATS = {"boxmot": ("onnx", "litert")}
BOXMOT_MODEL_NAME = "keras_pass"


def layout(client, format):
    """`NCHW` for BoxMOT (both formats: see the module doc), `NHWC` otherwise."""
    return "NCHW" if client == "boxmot" else "NHWC"


def input_statistics(client):
    """The statistics the client normalises with; `None`: the preset's own."""
    return statistics("imagenet") if client == "boxmot" else None


def weights_sha256(model):
    """SHA-256 of the model's weights (float32, in `model.weights` order):
    the same for a model whatever file it was loaded from."""
    digest = hashlib.sha256()
    for weight in model.weights:
        digest.update(ops.convert_to_numpy(weight).astype("float32").tobytes())
    return digest.hexdigest()


def export_contract(model, extractor, raw_input, layout, client, l2_normalize, antialias):
    """The preprocessing and output contract of an export, as strings."""
    converter = image_converter_of(model)
    mean, std = input_statistics(client) or (converter.mean, converter.std)
    size = list(converter.image_size)
    if raw_input:
        value_range = "RGB uint8 0-255, any size"
        resize = f"bilinear to {size[0]}x{size[1]} inside the graph, antialias={antialias}"
    else:
        value_range = "float32 (RGB / 255 - mean) / std"
        resize = "none: resize to input_size before"
    contract = {
        "input_name": INPUT_NAME,
        "output_name": OUTPUT_NAME,
        "input_layout": layout,
        "input_size": size,
        "input_dtype": "uint8" if raw_input else "float32",
        "input_value_range": value_range,
        "mean": list(mean),
        "std": list(std),
        "resize": resize,
        "feature_dim": int(extractor.outputs[0].shape[-1]),
        "unit_length_outputs": bool(l2_normalize),
        "client": client or "none",
        "keras_pass_version": __version__,
        "source_model_sha256": weights_sha256(model),
    }
    return {key: value if isinstance(value, str) else json.dumps(value) for key, value in contract.items()}


def name_and_describe_onnx(path, contract):
    """Renames the graph's input/output to `images`/`features` (batch
    dimension `batch`) and writes `contract` into `metadata_props`."""
    import onnx

    graph_model = onnx.load(path)
    graph = graph_model.graph
    (graph_input,), (graph_output,) = graph.input, graph.output
    _rename_value(graph, graph_input.name, INPUT_NAME)
    _rename_value(graph, graph_output.name, OUTPUT_NAME)
    for value in (graph_input, graph_output):
        value.type.tensor_type.shape.dim[0].dim_param = BATCH_DIMENSION
    del graph_model.metadata_props[:]
    for key, value in contract.items():
        graph_model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(graph_model)
    onnx.save(graph_model, path)


def _rename_value(graph, old, new):
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]
    for value in (*graph.input, *graph.output, *graph.value_info):
        if value.name == old:
            value.name = new


def onnx_metadata(path):
    """The `metadata_props` of an ONNX file as a dict of strings."""
    import onnx

    return {prop.key: prop.value for prop in onnx.load(path).metadata_props}


def boxmot_sidecar_path(path):
    """BoxMOT's `artifact_metadata_path` for a file: `model.onnx.metadata.json`."""
    return os.fspath(path) + ".metadata.json"


def write_sidecar(client, path, contract):
    """BoxMOT's artifact metadata (schema 1): the input size it crops to,
    its default `resize` preprocessing, and our contract for reference."""
    size = json.loads(contract["input_size"])
    io.write_json(boxmot_sidecar_path(path), {
        "schema_version": 1,
        "model_name": BOXMOT_MODEL_NAME,
        "preprocess": "resize",
        "model_kwargs_schema_version": 1,
        "model_kwargs": {"img_size": size},
        "img_size": size,
        "source": "keras-pass",
        "source_sha256": contract["source_model_sha256"],
        "keras_pass": contract,
    })
