"""BoxMOT's own ReID backends run a keras-pass export: features equal Embedder's."""

import json

import keras
import numpy as np
import pytest

from keras_pass import PASSBackbone
from keras_pass.data.synthetic import camera_styles, render_person, sample_identities
from keras_pass.deploy import Embedder, export_feature_extractor
from keras_pass.deploy.clients import boxmot_sidecar_path
from keras_pass.models.image_converter import PASSImageConverter
from tests.helpers import TINY_BACKBONE, to_numpy

pytest.importorskip("boxmot", reason="BoxMOT is an optional extra: pip install -e '.[trackers]'")
pytestmark = pytest.mark.skipif(keras.config.backend() != "tensorflow",
                                reason="exports are written by the TensorFlow backend")

HEIGHT, WIDTH = TINY_BACKBONE["image_shape"][:2]
# (x1, y1, height, width): at the model's size (BoxMOT's cv2.resize is then
# the identity), twice it (downsampling: cv2 does not antialias, Embedder
# does), and 1.5x (upsampling: antialiasing plays no part).
SAME_SIZE = [(10, 20, HEIGHT, WIDTH), (200, 150, HEIGHT, WIDTH), (90, 5, HEIGHT, WIDTH)]
DOWNSAMPLED = [(40, 100, 2 * HEIGHT, 2 * WIDTH), (250, 40, 2 * HEIGHT, 2 * WIDTH)]
UPSAMPLED = [(140, 60, 3 * HEIGHT // 2, 3 * WIDTH // 2)]


def _frame(boxes, seed=0):
    """An RGB frame with one generated pedestrian per box (x1, y1, h, w)."""
    rng = np.random.default_rng(seed)
    frame = rng.integers(60, 200, size=(300, 360, 3)).astype("uint8")
    identities, (camera,) = sample_identities(len(boxes), seed=seed), camera_styles(1, seed=seed)
    for identity, (x, y, h, w) in zip(identities, boxes):
        frame[y:y + h, x:x + w] = render_person(identity, camera, rng, height=h, width=w)
    return frame


def _boxmot_backend(path):
    import torch
    from boxmot.reid.backends.registry import get_backend_class
    from boxmot.reid.core.formats import resolve_reid_format

    backend = get_backend_class(resolve_reid_format(path))(path, torch.device("cpu"), False)
    assert tuple(backend.input_shape) == (HEIGHT, WIDTH)  # from the sidecar / graph, not guessed
    return backend


def _xyxy(boxes):
    return np.array([[x, y, x + w, y + h] for x, y, h, w in boxes], dtype="float32")


def _cosines(model, path, boxes):
    """Row cosines between BoxMOT's features of the boxes in a frame (BGR,
    as it takes frames) and Embedder's of the same crops (RGB)."""
    frame = _frame(boxes)
    theirs = _boxmot_backend(path).get_features(_xyxy(boxes), np.ascontiguousarray(frame[..., ::-1]))
    ours = Embedder(model)([frame[y:y + h, x:x + w] for x, y, h, w in boxes])
    np.testing.assert_allclose(np.linalg.norm(theirs, axis=1), 1.0, atol=1e-5)
    return np.sum(theirs * ours, axis=1)


@pytest.fixture(scope="module")
def model():
    backbone = PASSBackbone(**TINY_BACKBONE)
    # 0.5/0.5 statistics: BoxMOT's ImageNet-normalised input is converted inside the graph
    backbone.image_converter = PASSImageConverter.for_backbone(backbone, "half")
    return backbone


@pytest.mark.parametrize("format,suffix", [("onnx", ".onnx"), ("litert", ".tflite")])
def test_boxmot_backend_features_equal_embedders(model, format, suffix, tmp_path):
    path = str(tmp_path / f"pass{suffix}")
    export_feature_extractor(model, path, format, client="boxmot")
    sidecar = json.load(open(boxmot_sidecar_path(path)))
    assert sidecar["model_kwargs"]["img_size"] == [HEIGHT, WIDTH] and sidecar["preprocess"] == "resize"
    assert np.all(_cosines(model, path, SAME_SIZE) >= 0.9999)


def test_boxmot_crops_equal_ours_at_the_models_size_and_differ_by_its_resize(model, tmp_path):
    """BoxMOT's input batch against our converter's (ImageNet statistics),
    in 0-255 levels. Measured: identical at the model's size; mean 0.66-1.14
    (max 8.6-12.8) levels at 2x downsampling (cv2 does not antialias),
    mean 0.64 (max 6.2) at 1.5x upsampling. On the tiny random model that
    moves features by cosine 0.99998 at most; a trained model's features
    move more with such differences."""
    path = str(tmp_path / "pass.onnx")
    export_feature_extractor(model, path, "onnx", client="boxmot")
    backend, converter = _boxmot_backend(path), PASSImageConverter(image_size=(HEIGHT, WIDTH))
    mean_levels = {}
    for name, boxes in {"same": SAME_SIZE, "down": DOWNSAMPLED, "up": UPSAMPLED}.items():
        frame = _frame(boxes)
        theirs = backend.get_crops(_xyxy(boxes), np.ascontiguousarray(frame[..., ::-1])).numpy()
        ours = np.stack([to_numpy(converter(frame[y:y + h, x:x + w])) for x, y, h, w in boxes])
        levels = np.abs(theirs.transpose(0, 2, 3, 1) - ours) * np.array(converter.std) * 255
        mean_levels[name] = levels.mean()
        assert np.all(_cosines(model, path, boxes) >= 0.999)
    print(f"BoxMOT crops vs ours, mean abs difference in 0-255 levels: {mean_levels}")
    assert mean_levels["same"] < 1e-3
    assert 0.2 < mean_levels["down"] < 3 and 0.2 < mean_levels["up"] < 3


@pytest.mark.slow
def test_tracking_example_prints_fewer_switches_with_keras_pass_features(capsys):
    import importlib.util
    import os

    from tests.helpers import REPO_ROOT

    spec = importlib.util.spec_from_file_location(
        "track_with_boxmot", os.path.join(REPO_ROOT, "examples", "track_with_boxmot.py"))
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    example.main([])
    switches = {line.split(":")[0]: int(line.split(":")[1].split()[0])
                for line in capsys.readouterr().out.splitlines() if "identity switches" in line}
    assert len(switches) == 3
    assert switches["BoT-SORT with keras-pass appearance features, proximity_thresh=1"] < \
        switches["BoT-SORT without appearance features"]
