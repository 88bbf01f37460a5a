import os

import keras
import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.backend import kernels
from keras_pass.cli.main import main as cli_main
from keras_pass.deploy import export as export_module
from keras_pass.deploy.export import FORMATS, export_feature_extractor, feature_extractor, load_exported
from keras_pass.models.image_converter import PASSImageConverter
from keras_pass.reid.model import ReIDModel
from tests.helpers import REPO_ROOT, TINY_BACKBONE, to_numpy

on_tensorflow = pytest.mark.skipif(keras.config.backend() != "tensorflow",
                                   reason="exports are written by the TensorFlow backend")
SUFFIX = {"tf_saved_model": "", "onnx": ".onnx", "litert": ".tflite"}


def _models():
    backbone = PASSBackbone(**TINY_BACKBONE)
    backbone.image_converter = PASSImageConverter.for_backbone(backbone, "imagenet")
    return {"backbone": backbone, "reid": ReIDModel(PASSBackbone(**TINY_BACKBONE), num_classes=5)}


@on_tensorflow
@pytest.mark.parametrize("format", FORMATS)
@pytest.mark.parametrize("raw_input", [False, True])
def test_export_round_trips_with_its_own_runtime(format, raw_input, tmp_path):
    for name, model in _models().items():
        path = str(tmp_path / f"{name}{SUFFIX[format]}")
        worst = export_feature_extractor(model, path, format, raw_input)
        assert worst <= 1e-4
        run = load_exported(path, format)
        if raw_input:  # uint8 of another size in, the preset's preprocessing inside
            images = np.random.default_rng(1).integers(0, 256, size=(3, 80, 40, 3)).astype("uint8")
            converter = PASSImageConverter.for_backbone(
                model if name == "backbone" else model.backbone, "imagenet" if name == "backbone" else "half")
            converter.antialias = converter.resizing.antialias = format == "tf_saved_model"
            reference_input = to_numpy(converter(images))
        else:
            images = reference_input = np.random.default_rng(1).normal(size=(3, 64, 32, 3)).astype("float32")
        if name == "backbone":
            expected = to_numpy(model.reid_features(reference_input))
        else:
            expected = to_numpy(model.features(reference_input)[0])  # before-BN concat
        np.testing.assert_allclose(run(images), expected, atol=1e-4)


@on_tensorflow
def test_fast_paths_stay_out_of_exports(tmp_path, monkeypatch):
    """Without `generic_ops` the separately compiled XLA kernels reach the
    ONNX graph, which onnxruntime then refuses."""
    model = _models()["backbone"]
    export_feature_extractor(model, str(tmp_path / "ok.onnx"), "onnx")
    import contextlib

    monkeypatch.setattr(export_module, "generic_ops", contextlib.nullcontext)
    with pytest.raises(Exception):
        export_feature_extractor(model, str(tmp_path / "leaky.onnx"), "onnx")
    assert kernels.fast_paths_enabled()


def test_parity_failure_and_bad_arguments(tmp_path, monkeypatch):
    model = _models()["backbone"]
    with pytest.raises(ValueError, match="Expected format in"):
        export_feature_extractor(model, str(tmp_path / "x"), "torchscript")
    with pytest.raises(ValueError, match="Expected a PASSBackbone or a fine-tuned ReIDModel"):
        feature_extractor(keras.Sequential([keras.layers.Dense(2)]))
    if keras.config.backend() != "tensorflow":
        with pytest.raises(ValueError, match="KERAS_BACKEND=tensorflow"):
            export_feature_extractor(model, str(tmp_path / "x"))
        return
    monkeypatch.setattr(export_module, "load_exported", lambda path, format: lambda x: np.zeros((len(x), 64)))
    with pytest.raises(export_module.ExportParityError, match="within 0.0001"):
        export_feature_extractor(model, str(tmp_path / "bad"))


@pytest.mark.slow
def test_command_line_exports_a_preset_on_any_backend(tmp_path, capfd, monkeypatch):
    """`keras-pass export` in this process; under another backend it re-runs
    itself under TensorFlow (that fresh process is the point)."""
    preset = str(tmp_path / "preset")
    PASSBackbone(**TINY_BACKBONE).save_to_preset(preset)
    monkeypatch.setenv("PYTHONPATH", REPO_ROOT)
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    output = str(tmp_path / "model.onnx")
    capfd.readouterr()
    status = cli_main(["export", preset, output, "--format", "onnx", "--raw-input"])
    printed = capfd.readouterr()  # the file descriptors: the re-run's lines too
    assert status == 0, printed.err[-3000:]
    assert "batch 5: max abs difference" in printed.out and os.path.isfile(output)
    rerun = "export: writing with the TensorFlow backend" in printed.out
    assert rerun == (keras.config.backend() != "tensorflow")
    # (a missing model: tests/cli/bad_inputs_test.py)
