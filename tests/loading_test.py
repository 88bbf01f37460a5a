"""The one model loader: preset / .keras / .pth, overrides only when given;
each model file read once; bad model files named in one line."""

import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass import loading
from keras_pass.loading import load_backbone, load_model, load_training_backbone, source_kind
from keras_pass.recipes.finetune import FinetuneConfig
from keras_pass.recipes.pretrain import PretrainConfig, build_backbone
from tests.helpers import TINY_BACKBONE, to_numpy


@pytest.fixture(scope="module")
def patch8_preset(tmp_path_factory):
    path = tmp_path_factory.mktemp("presets") / "p8"
    PASSBackbone(**{**TINY_BACKBONE, "patch_size": 8, "stride": 8}).save_to_preset(str(path))
    return str(path)


def test_a_patch8_preset_keeps_its_stride_unless_given(patch8_preset, tmp_path):
    backbone = load_backbone(patch8_preset)
    assert (backbone.patch_size, backbone.stride, backbone.image_shape) == (8, 8, (64, 32, 3))
    # The pre-training recipe with its defaults: the preset's stride, not 16.
    student = build_backbone(PretrainConfig(data=str(tmp_path), output_dir=str(tmp_path), preset=patch8_preset))
    assert student.stride == 8 and student.pos_embed_interpolation == "always"
    resized = load_backbone(patch8_preset, image_size=(96, 32), stride=4)
    assert resized.stride == 4 and resized.image_shape == (96, 32, 3)


def test_keras_files_give_their_backbone_with_the_same_weights(patch8_preset, tmp_path):
    backbone = load_backbone(patch8_preset)
    path = str(tmp_path / "backbone.keras")
    backbone.save(path)
    images = np.random.default_rng(0).normal(size=(2, 64, 32, 3)).astype("float32")
    np.testing.assert_allclose(to_numpy(load_backbone(path).reid_features(images)),
                               to_numpy(backbone.reid_features(images)), atol=1e-6)
    assert isinstance(load_model(path), PASSBackbone)
    assert load_backbone(path, image_size=(96, 32)).image_shape == (96, 32, 3)


@pytest.mark.parametrize("source, message", [
    ("missing.keras", r"Expected a \.keras file .* Received: source=missing\.keras \(no such file\)"),
    ("missing.pth", r"Expected an official PyTorch checkpoint .* Received: source=missing\.pth \(no such file\)"),
    ("missing_preset", r"Received: source=missing_preset \(no such file or folder\)"),
    ("", "Expected a preset name or folder"),
])
def test_clear_errors_name_what_was_given(source, message):
    with pytest.raises(ValueError, match=message):
        source_kind(source)


def test_weights_only_with_a_keras_model(patch8_preset):
    with pytest.raises(ValueError, match="weights"):
        load_model(patch8_preset, weights="best.weights.h5")


def test_training_backbone_resizes_grid_and_sets_drop_path(patch8_preset):
    config = FinetuneConfig(data_root="unused", output_dir="unused", preset=patch8_preset, image_size=(96, 32),
                            stride=8, drop_path_rate=0.1)
    backbone = load_training_backbone(config)
    assert backbone.image_shape == (96, 32, 3) and backbone.drop_path_rate == 0.1
    assert backbone.pos_embed_interpolation == "resize_only"
    assert tuple(backbone.embeddings.pos_embed.shape) == (12 * 4, 32)


def _torch_state(torch, finetuned):
    state = {"pos_embed": torch.zeros(1, 9, 32), "cls_token": torch.zeros(1, 1, 32)}
    if finetuned:
        state["bottleneck.weight"] = torch.ones(64)
    return state


@pytest.mark.parametrize("finetuned", [False, True])
def test_a_pth_is_read_once_and_its_kind_told_from_its_keys(finetuned, tmp_path, monkeypatch):
    torch = pytest.importorskip("torch")
    path = str(tmp_path / "checkpoint.pth")
    torch.save({"model": _torch_state(torch, finetuned)}, path)
    reads, built = [], []
    monkeypatch.setattr(loading, "load_torch_checkpoint", lambda p: reads.append(p) or {"model": {"read": p}})
    monkeypatch.setattr(loading, "checkpoint_kind", lambda state: "fine-tuned" if finetuned else "pre-trained")
    monkeypatch.setattr(loading, "from_official_checkpoint", lambda c, **kw: (built.append(("reid", c)), None))
    monkeypatch.setattr(loading, "convert_checkpoint", lambda c, **kw: (built.append(("backbone", c)), None))
    load_model(path)
    assert reads == [path]
    assert built == [("reid" if finetuned else "backbone", {"model": {"read": path}})]


def test_a_pth_without_a_backbone_is_named(tmp_path):
    torch = pytest.importorskip("torch")
    path = str(tmp_path / "other.pth")
    torch.save({"epoch": torch.zeros(1)}, path)
    with pytest.raises(ValueError, match=r"Received: source=.*other\.pth \(wrong kind: keys such as \['epoch'\]\)"):
        load_model(path)
