import dataclasses
import json
import os
import subprocess
import sys

import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.data.synthetic import write_unlabeled
from keras_pass.backend.distribution import distribution_scope
from keras_pass.recipes.pretrain import PretrainConfig, pretrain
from tests.helpers import REPO_ROOT, TINY_BACKBONE, once_under_tensorflow, to_numpy

TINY = {k: v for k, v in TINY_BACKBONE.items() if k != "image_shape"}


@pytest.fixture(scope="module")
def unlabeled(tmp_path_factory):
    root = tmp_path_factory.mktemp("lup")
    write_unlabeled(str(root), num_identities=6, views=(1, 1), image_size=(64, 32), seed=5)
    return str(root)


def _config(data, output_dir, **kwargs):
    return PretrainConfig(
        data=data, output_dir=output_dir, arch="vit_tiny", backbone_overrides=TINY,
        image_size=(64, 32), local_size=(32, 16), local_crops_per_part=2, epochs=2,
        batch_size=4, steps_per_epoch=2, warmup_epochs=1, out_dim=32, head_hidden_dim=16,
        bottleneck_dim=8, save_freq=1, verbose=0, **kwargs,
    )


def test_fit_on_generated_images_and_resume(unlabeled, tmp_path):
    out = str(tmp_path / "run")
    model, history = pretrain(_config(unlabeled, out))
    assert len(history.history["loss"]) == 2 and np.all(np.isfinite(history.history["loss"]))
    assert int(to_numpy(model.optimizer.iterations)) == 4
    teacher = PASSBackbone.from_preset(os.path.join(out, "teacher_preset"))
    np.testing.assert_array_equal(
        to_numpy(teacher.embeddings.pos_embed), to_numpy(model.teacher_backbone.embeddings.pos_embed)
    )
    assert teacher.pos_embed_interpolation == "always"
    # A longer schedule in the same folder resumes from step 4 and epoch 2.
    model, history = pretrain(dataclasses.replace(_config(unlabeled, out), epochs=3))
    assert int(to_numpy(model.optimizer.iterations)) == 6
    with open(os.path.join(out, "history.json")) as f:
        assert len(json.load(f)["loss"]) == 3


def test_bad_distribution_for_backend():
    with pytest.raises(ValueError, match="distribution"):
        distribution_scope("everywhere")


@pytest.mark.slow
@once_under_tensorflow  # a wrapper of the recipe, which runs on both backends above
def test_example_script_runs_and_resumes(unlabeled, tmp_path):
    out = tmp_path / "cli"
    args = [sys.executable, os.path.join(REPO_ROOT, "examples", "pretrain_luperson.py"),
            f"--data_dir={unlabeled}", f"--output_dir={out}", "--arch=vit_tiny",
            "--image_size=64,32", "--local_size=32,16", "--local_crops_per_part=1", "--epochs=1",
            "--batch_size=4", "--steps_per_epoch=2", "--warmup_epochs=0", "--out_dim=16", "--verbose=0"]
    env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(args, capture_output=True, text=True, env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    assert (out / "teacher_preset" / "config.json").exists() and (out / "logs").exists()
    missing = subprocess.run(args[:2] + ["--output_dir=x"], capture_output=True, text=True, env=env)
    assert missing.returncode == 2 and "Expected --data_dir (required)" in missing.stderr
