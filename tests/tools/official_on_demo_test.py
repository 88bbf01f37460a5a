"""The pieces of `tools/official_on_demo.py --same-start` that need no clone
of the authors' code (nor torch): the weight mapping, the loss split and the
measures. The lockstep run itself needs the clone: its commands and results
are in docs/experiments/demo_diagnosis.md, section 9."""

import os
import sys

import numpy as np
import pytest

from tests.helpers import REPO_ROOT

sys.path.insert(0, os.path.join(REPO_ROOT, "tools"))
pytest.importorskip("torch")  # official_on_demo imports benchmark_official's torch helpers
import official_on_demo  # noqa: E402
import official_same_start  # noqa: E402

from keras_pass.models.backbone import PASSBackbone  # noqa: E402
from keras_pass.pretraining.loss import pass_loss_terms  # noqa: E402
from keras_pass.pretraining.trainer import PASSPretrainer  # noqa: E402

DIM, MLP, HIDDEN, BOTTLENECK, OUT = 12, 24, 8, 4, 16


def _release_state_dict(rng):
    """A `MultiCropWrapper(VisionTransformer, DINOHead)` state dict of the
    release (PASS/vision_transformer.py names and torch layouts), depth 1,
    patch 8 at 64x32."""
    state = {"backbone.patch_embed.proj.weight": rng.normal(size=(DIM, 3, 8, 8)),
             "backbone.patch_embed.proj.bias": rng.normal(size=DIM),
             "backbone.pos_embed": rng.normal(size=(1, 32, DIM)),
             "backbone.norm.weight": rng.normal(size=DIM), "backbone.norm.bias": rng.normal(size=DIM)}
    for name in ("cls_token", "cls_pos", "part_token1", "part_token2", "part_token3",
                 "part1_pos", "part2_pos", "part3_pos"):
        state[f"backbone.{name}"] = rng.normal(size=(1, 1, DIM))
    for name, shape in (("norm1", (DIM,)), ("norm2", (DIM,)), ("attn.qkv", (3 * DIM, DIM)),
                        ("attn.proj", (DIM, DIM)), ("mlp.fc1", (MLP, DIM)), ("mlp.fc2", (DIM, MLP))):
        state[f"backbone.blocks.0.{name}.weight"] = rng.normal(size=shape)
        state[f"backbone.blocks.0.{name}.bias"] = rng.normal(size=shape[0])
    for token in official_same_start.TOKENS:
        for index, shape in zip((0, 2, 4), ((HIDDEN, DIM), (HIDDEN, HIDDEN), (BOTTLENECK, HIDDEN))):
            state[f"head.mlp_{token}.{index}.weight"] = rng.normal(size=shape)
            state[f"head.mlp_{token}.{index}.bias"] = rng.normal(size=shape[0])
        state[f"head.last_layer_{token}.weight_g"] = np.ones((OUT, 1))
        state[f"head.last_layer_{token}.weight_v"] = rng.normal(size=(OUT, BOTTLENECK))
    return {k: v.astype("float32") for k, v in state.items()}


def test_release_weights_map_onto_every_trainable_weight_of_the_pretrainer():
    state = _release_state_dict(np.random.default_rng(0))
    weights = official_same_start.torch_to_keras(state)
    backbone = PASSBackbone(hidden_dim=DIM, num_layers=1, num_heads=3, mlp_dim=MLP, patch_size=8, stride=8,
                            image_shape=(64, 32, 3))
    model = PASSPretrainer(backbone, out_dim=OUT, head_hidden_dim=HIDDEN, bottleneck_dim=BOTTLENECK)
    trainable = {v.path: tuple(v.shape) for v in model.trainable_variables}
    assert {k: v.shape for k, v in weights.items()} == trainable
    np.testing.assert_array_equal(weights["part2_head/last_layer"], state["head.last_layer_pt2.weight_v"].T)
    np.testing.assert_array_equal(weights["cls_head/mlp_1/kernel"], state["head.mlp_cls.2.weight"].T)
    np.testing.assert_array_equal(weights["embeddings/part_tokens"][2], state["backbone.part_token3"][0, 0])


def test_loss_split_is_the_pass_loss_split_by_token():
    rng = np.random.default_rng(1)
    batch, num_parts, crops, k = 5, 3, 3, 7
    teacher = rng.normal(size=(2, batch, 1 + num_parts, k)).astype("float32")
    student = rng.normal(size=(2, batch, 1 + num_parts, k)).astype("float32")
    local = rng.normal(size=(num_parts, crops, batch, 2, k)).astype("float32")
    centers = rng.normal(size=(1 + num_parts, k)).astype("float32")
    split = official_same_start.loss_split(teacher, student, local, centers, 0.04)
    cls_sum, cls_count, part_sum, part_count = (float(np.asarray(x)) for x in pass_loss_terms(
        teacher, student, local, centers, 0.04))
    assert (cls_count, part_count) == (20, 24)
    assert split["cls"] == pytest.approx(cls_sum / cls_count, rel=1e-4)
    parts = [split[f"part{i + 1}"] for i in range(num_parts)]
    assert np.mean(parts) == pytest.approx(part_sum / part_count, rel=1e-4)
    assert split["total"] == pytest.approx((cls_sum + part_sum) / (cls_count + part_count), rel=1e-4)


def test_token_cosines():
    cls = np.array([[1.0, 0.0], [0.0, 2.0]])
    parts = np.stack([cls * 3, np.array([[0.0, 1.0], [1.0, 0.0]])], axis=1)
    cosines = official_same_start.token_cosines(cls, parts)
    assert cosines == pytest.approx({"cls-part1": 1.0, "cls-part2": 0.0, "part1-part2": 0.0})


def test_batch_views_are_the_release_crop_order():
    batch = {"global_crops": np.zeros((2, 2, 8, 4, 3), "float32"),
             "local_crops": np.zeros((2, 3, 3, 4, 2, 3), "float32")}
    batch["global_crops"][:, 1] = 1.0
    for p in range(3):
        for c in range(3):
            batch["local_crops"][:, p, c] = 10 * p + c
    views = official_on_demo.batch_views(batch)
    assert [v.shape for v in views] == [(2, 3, 8, 4)] * 2 + [(2, 3, 4, 2)] * 9
    assert [float(v[0, 0, 0, 0]) for v in views] == [0, 1, 0, 1, 2, 10, 11, 12, 20, 21, 22]
