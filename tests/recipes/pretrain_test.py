"""`recipes.pretrain`: fit, resume, the example script, and a kill inside a
checkpoint write (below)."""

import dataclasses
import json
import os

import numpy as np
import pytest

from keras_pass import io
from keras_pass.models.backbone import PASSBackbone
from keras_pass.data.synthetic import write_unlabeled
from keras_pass.backend.distribution import distribution_scope
from keras_pass.recipes.pretrain import PretrainConfig, pretrain
from tests.helpers import TINY_BACKBONE, once_under_tensorflow, run_script, to_numpy
from tests.kill_points import KILL_STATUS
from tests.recipes.tiny_pretrain_run import tiny_config
from tests.state_files import assert_same_numbers, assert_same_state_files, finish_fresh, interrupted_writes, start_fresh

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
def test_example_script_runs_and_resumes(unlabeled, tmp_path, capsys):
    out = tmp_path / "cli"
    args = ["--data_dir", unlabeled, "--output_dir", out, "--arch=vit_tiny", "--image_size=64,32",
            "--local_size=32,16", "--local_crops_per_part=1", "--epochs=1", "--batch_size=4",
            "--steps_per_epoch=2", "--warmup_epochs=0", "--out_dim=16", "--verbose=0"]
    run_script("examples/pretrain_luperson.py", *args)
    assert (out / "teacher_preset" / "config.json").exists() and (out / "logs").exists()
    capsys.readouterr()
    run_script("examples/pretrain_luperson.py", "--output_dir=x", status=2)
    assert "Expected --data_dir (required)" in capsys.readouterr().err


@pytest.mark.slow
def test_pretraining_killed_inside_a_checkpoint_swap_resumes_bit_identical(tmp_path, capsys):
    """A real pre-training run (`recipes.pretrain` on generated images, a
    subprocess) killed inside a checkpoint's folder swap, then re-run, ends
    bit-identical to the uninterrupted run: weights, optimizer, teacher,
    centers, random state, epoch metrics and the history file. Kills are
    `os._exit` from `tests.kill_points` (no cleanup, no final save, like
    SIGKILL)."""
    data = str(tmp_path / "data")
    write_unlabeled(data, num_identities=4, views=(2, 2), image_size=(64, 32), seed=5)
    run = tmp_path / "killed"
    # Killed in the epoch-end checkpoint of step 3, between the swap's renames:
    # the step-2 checkpoint (mid fit epoch, mid data epoch) must come back,
    # and the history entry of epoch 1, already written, be written again.
    # The reference runs here meanwhile.
    killed = start_fresh("tests.recipes.tiny_pretrain_run", (data, run), KERAS_PASS_KILL_AT="swap",
                         KERAS_PASS_KILL_AT_COUNT="1")
    pretrain(tiny_config(data, tmp_path / "reference"))
    finish_fresh(killed, KILL_STATUS)
    assert not (run / "checkpoint" / "latest").exists() and (run / "history.json").exists()
    assert not (run / "teacher_preset").exists()
    capsys.readouterr()
    pretrain(tiny_config(data, run))
    assert f"resuming pretrain from step 2 of 6 (epoch 1), {run}" in capsys.readouterr().out
    assert_same_numbers(io.read_json(run / "history.json"),
                        io.read_json(tmp_path / "reference" / "history.json"), "history.json")
    assert_same_state_files(tmp_path / "reference", run, ignore_files=("metadata.json",))
    assert interrupted_writes(run) == []
