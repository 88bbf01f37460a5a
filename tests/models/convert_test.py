import argparse

import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.cli.main import main as cli_main
from keras_pass.data.images import IMAGENET_MEAN
from keras_pass.models.convert import (
    CheckpointMismatchError,
    checkpoint_filter_fn,
    convert_checkpoint,
    unwrap_state_dict,
)
from tests.helpers import to_numpy

torch = pytest.importorskip("torch")
from tests import torch_reference  # noqa: E402

TINY = dict(dim=32, depth=2, heads=2, mlp_dim=64)
TINY_KERAS = dict(hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64)
RNG = np.random.default_rng(7)
GLOBAL = RNG.normal(size=(2, 64, 32, 3)).astype("float32")  # a 256x128-like view
LOCAL = RNG.normal(size=(2, 32, 16, 3)).astype("float32")  # a region crop


def _pretraining_checkpoint(reference, path):
    """Saved like the official DINO-style release: wrapped, prefixed, heads."""
    teacher = {f"module.backbone.{k}": v for k, v in reference.state_dict().items()}
    teacher["module.head.mlp_cls.0.weight"] = torch.zeros(8, 32)
    teacher["module.head.last_layer_pt1.weight_g"] = torch.ones(16, 1)
    student = {k: torch.zeros_like(v) for k, v in teacher.items()}
    checkpoint = {"student": student, "teacher": teacher, "epoch": 3,
                  "args": argparse.Namespace(arch="vit_small")}
    torch.save(checkpoint, path)
    return str(path)


def _assert_parity(backbone, reference):
    for images, part_index in [(GLOBAL, None), (LOCAL, 1)]:
        cls, parts = torch_reference.run(reference, images, part_index)
        ours = backbone.encode(images, part_index=part_index)
        np.testing.assert_allclose(to_numpy(ours["cls"]), cls, atol=1e-4)
        np.testing.assert_allclose(to_numpy(ours["parts"]), parts, atol=1e-4)


def test_pretraining_checkpoint_parity(tmp_path):
    reference = torch_reference.ReferenceViT(**TINY, img_size=(64, 32), mode="always")
    path = _pretraining_checkpoint(reference, tmp_path / "pass.pth")
    _, report = convert_checkpoint(path, str(tmp_path / "preset"), arch="vit_tiny", **TINY_KERAS)
    assert report.wrappers == ["teacher"] and report.missing == []
    assert report.unused == ["head.last_layer_pt1.weight_g", "head.mlp_cls.0.weight"]
    backbone = PASSBackbone.from_preset(str(tmp_path / "preset"), pos_embed_interpolation="always")
    assert backbone.image_converter.mean == IMAGENET_MEAN  # pre-training's statistics
    _assert_parity(backbone, reference)
    with torch.no_grad():
        expected = reference.last_attention(torch.from_numpy(GLOBAL).permute(0, 3, 1, 2)).numpy()
    np.testing.assert_allclose(to_numpy(backbone.get_last_selfattention(GLOBAL)), expected, atol=1e-5)


def test_finetuned_checkpoint_parity_and_unused_necks():
    reference = torch_reference.ReferenceViT(**TINY, img_size=(64, 32), mode="resize_only")
    state = {f"base.{k}": v.numpy() for k, v in reference.state_dict().items()}
    state.update({"base.fc.weight": np.zeros((4, 32)), "bottleneck.weight": np.ones(32),
                  "bottleneck_1.running_var": np.ones(32), "classifier.weight": np.zeros((5, 64))})
    backbone, report = convert_checkpoint(state, arch="vit_tiny", **TINY_KERAS)
    assert report.unused == ["bottleneck.weight", "bottleneck_1.running_var",
                             "classifier.weight", "fc.weight"]
    assert backbone.image_converter.mean == (0.5, 0.5, 0.5)  # fine-tuning's statistics
    _assert_parity(backbone, reference)


def test_resize_to_new_grid_matches_pytorch_bilinear():
    reference = torch_reference.ReferenceViT(**TINY, img_size=(64, 32))
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    backbone, report = convert_checkpoint(state, arch="vit_tiny", image_size=(96, 32), **TINY_KERAS)
    assert report.resized == ((4, 2), (6, 2))
    grid = reference.pos_embed.detach().reshape(1, 4, 2, 32).permute(0, 3, 1, 2)
    expected = torch.nn.functional.interpolate(grid, size=(6, 2), mode="bilinear")
    expected = expected.permute(0, 2, 3, 1).reshape(12, 32).numpy()
    np.testing.assert_allclose(to_numpy(backbone.embeddings.pos_embed), expected, atol=1e-6)


def test_filter_maps_every_backbone_key():
    reference = torch_reference.ReferenceViT(**TINY, img_size=(64, 32))
    state, _ = unwrap_state_dict({"model": {f"module.{k}": v.numpy() for k, v in reference.state_dict().items()}})
    weights, unused = checkpoint_filter_fn(state)
    assert unused == []
    backbone = PASSBackbone(image_shape=(64, 32, 3), **TINY_KERAS)
    assert set(weights) == {v.path for v in backbone.weights}
    np.testing.assert_array_equal(weights["block_1/qkv/kernel"], state["blocks.1.attn.qkv.weight"].T)
    assert weights["patch_embedding/projection/kernel"].shape == (16, 16, 3, 32)


def test_shape_mismatch_and_missing_keys_refused():
    reference = torch_reference.ReferenceViT(**TINY, img_size=(64, 32))
    state = {k: v.numpy() for k, v in reference.state_dict().items()}
    with pytest.raises(CheckpointMismatchError, match="qkv"):
        convert_checkpoint(state, arch="vit_tiny", num_layers=2)  # 192-d model, 32-d weights
    del state["blocks.0.norm1.weight"]
    with pytest.raises(CheckpointMismatchError, match="block_0/norm1/gamma"):
        convert_checkpoint(state, arch="vit_tiny", **TINY_KERAS)
    _, report = convert_checkpoint(state, arch="vit_tiny", allow_missing=True, **TINY_KERAS)
    assert report.missing == ["block_0/norm1/gamma"]
    with pytest.raises(CheckpointMismatchError, match="pos_embed"):
        convert_checkpoint({"fc.weight": np.zeros((2, 2))}, arch="vit_tiny")


@pytest.mark.slow
def test_command_line(tmp_path, capsys):
    reference = torch_reference.ReferenceViT(
        dim=192, depth=12, heads=3, mlp_dim=768, img_size=(64, 32), mode="always"
    )
    path = _pretraining_checkpoint(reference, tmp_path / "pass_vit_tiny.pth")
    out = tmp_path / "preset"
    # no --arch: inferred from the shapes, as `extract` and `finetune` do
    assert cli_main(["convert", path, str(out), "--pos-embed-interpolation", "always"]) == 0
    assert "unused checkpoint keys (2)" in capsys.readouterr().out
    _assert_parity(PASSBackbone.from_preset(str(out)), reference)

    # in-process (a missing .pth: tests/cli/bad_inputs_test.py)
    assert cli_main(["convert", path, str(tmp_path / "bad"), "--arch", "vit_small"]) == 2
    refused = capsys.readouterr().err
    assert "error:" in refused and "mismatch" in refused
    assert "Traceback" not in refused and not (tmp_path / "bad").exists()
