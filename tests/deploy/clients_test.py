import hashlib
import json
import os

import keras
import numpy as np
import pytest

from keras_pass import PASSBackbone
from keras_pass.cli.export import build_parser
from keras_pass.deploy import export as export_module
from keras_pass.deploy.clients import onnx_metadata
from keras_pass.deploy.export import export_feature_extractor
from keras_pass.models.image_converter import PASSImageConverter
from tests.helpers import TINY_BACKBONE, to_numpy

on_tensorflow = pytest.mark.skipif(keras.config.backend() != "tensorflow",
                                   reason="exports are written by the TensorFlow backend")


def _backbone():
    backbone = PASSBackbone(**TINY_BACKBONE)
    backbone.image_converter = PASSImageConverter.for_backbone(backbone, "imagenet")
    return backbone


@on_tensorflow
def test_onnx_export_carries_names_contract_and_unit_length_option(tmp_path):
    import onnxruntime

    model, path = _backbone(), str(tmp_path / "pass.onnx")
    export_feature_extractor(model, path, "onnx", l2_normalize=True)
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (graph_input,), (graph_output,) = session.get_inputs(), session.get_outputs()
    assert (graph_input.name, graph_output.name) == ("images", "features")
    assert graph_input.shape == ["batch", 64, 32, 3] and graph_output.shape == ["batch", 64]

    metadata = onnx_metadata(path)
    assert metadata["input_layout"] == "NHWC" and json.loads(metadata["input_size"]) == [64, 32]
    assert json.loads(metadata["mean"]) == pytest.approx([0.485, 0.456, 0.406])
    assert json.loads(metadata["std"]) == pytest.approx([0.229, 0.224, 0.225])
    assert metadata["unit_length_outputs"] == "true" and metadata["input_dtype"] == "float32"
    assert metadata["keras_pass_version"] and metadata["client"] == "none"
    digest = hashlib.sha256(b"".join(w.astype("float32").tobytes() for w in model.get_weights()))
    assert metadata["source_model_sha256"] == digest.hexdigest()

    images = np.random.default_rng(0).normal(size=(3, 64, 32, 3)).astype("float32")
    raw = to_numpy(model.reid_features(images))
    features = session.run(None, {"images": images})[0]
    np.testing.assert_allclose(features, raw / np.linalg.norm(raw, axis=1, keepdims=True), atol=1e-5)


@on_tensorflow
def test_boxmot_onnx_takes_imagenet_nchw_for_a_half_normalised_model(tmp_path):
    import onnxruntime

    model = PASSBackbone(**TINY_BACKBONE)
    model.image_converter = PASSImageConverter.for_backbone(model, "half")
    path = str(tmp_path / "pass.onnx")
    export_feature_extractor(model, path, "onnx", client="boxmot")
    pixels = np.random.default_rng(0).uniform(size=(2, 64, 32, 3)).astype("float32")  # RGB in [0, 1]
    imagenet = (pixels - [0.485, 0.456, 0.406]) / [0.229, 0.224, 0.225]
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    features = session.run(None, {"images": imagenet.transpose(0, 3, 1, 2).astype("float32")})[0]
    expected = to_numpy(model.reid_features(((pixels - 0.5) / 0.5).astype("float32")))
    np.testing.assert_allclose(features, expected, atol=1e-4)
    sidecar = json.load(open(path + ".metadata.json"))
    assert sidecar["img_size"] == [64, 32] and sidecar["keras_pass"]["input_layout"] == "NCHW"


def test_existing_output_is_replaced_only_with_overwrite(tmp_path, monkeypatch):
    model, path = _backbone(), str(tmp_path / "pass.onnx")
    with open(path, "w") as handle:
        handle.write("old")
    with pytest.raises(ValueError, match="Expected an output path that does not exist"):
        export_feature_extractor(model, path, "onnx")
    if keras.config.backend() != "tensorflow":
        return
    monkeypatch.setattr(export_module, "load_exported", lambda path, format: lambda x: np.zeros((len(x), 64)))
    with pytest.raises(export_module.ExportParityError):
        export_feature_extractor(model, path, "onnx", overwrite=True)
    assert open(path).read() == "old" and os.listdir(tmp_path) == ["pass.onnx"]  # no temporaries left
    monkeypatch.undo()
    export_feature_extractor(model, path, "onnx", overwrite=True)
    assert onnx_metadata(path)["output_name"] == "features"


def test_client_arguments(tmp_path):
    model = _backbone()
    for format, raw_input in (("tf_saved_model", False), ("onnx", True)):
        with pytest.raises(ValueError, match="for client=boxmot"):
            export_feature_extractor(model, str(tmp_path / "x"), format, raw_input, client="boxmot")
    with pytest.raises(ValueError, match="Expected client in"):
        export_feature_extractor(model, str(tmp_path / "x"), "onnx", client="deepsort")
    for spelling in ("--l2-normalize", "--l2_normalize"):
        args = build_parser().parse_args(["m", "o.onnx", "--format", "onnx", "--client", "boxmot", spelling])
        assert args.l2_normalize and args.client == "boxmot" and not args.overwrite


def test_command_line_refuses_an_existing_output_in_one_line(tmp_path, capsys):
    from keras_pass.cli.main import main

    model, output = tmp_path / "model.keras", tmp_path / "pass.onnx"
    model.write_text("not read: the output is checked first")
    output.write_text("old")
    assert main(["export", str(model), str(output), "--format", "onnx"]) == 2
    message = capsys.readouterr().err.strip()
    assert "\n" not in message and "--overwrite" in message and output.read_text() == "old"
