"""A real pre-training run (`recipes.pretrain` on generated images, a
subprocess) killed inside a checkpoint's folder swap, then re-run, ends
bit-identical to the uninterrupted run:
weights, optimizer, teacher, centers, random state, epoch metrics and the
history file. Kills are `os._exit` from `tests.kill_points` (no cleanup,
no final save, like SIGKILL)."""


import pytest

from keras_pass import io
from keras_pass.data.synthetic import write_unlabeled
from keras_pass.recipes.pretrain import pretrain
from tests.kill_points import KILL_STATUS
from tests.pretraining.tiny_recipe_run import tiny_config
from tests.state_files import assert_same_numbers, assert_same_state_files, interrupted_writes, run_fresh

pytestmark = pytest.mark.slow


def _run(data, output_dir, expect=0, **kill):
    run_fresh("tests.pretraining.tiny_recipe_run", (data, output_dir), expect, **kill)


def test_pretraining_killed_inside_a_checkpoint_swap_resumes_bit_identical(tmp_path, capsys):
    data = str(tmp_path / "data")
    write_unlabeled(data, num_identities=4, views=(2, 2), image_size=(64, 32), seed=5)
    pretrain(tiny_config(data, tmp_path / "reference"))
    run = tmp_path / "killed"
    # Killed in the epoch-end checkpoint of step 3, between the swap's renames:
    # the step-2 checkpoint (mid fit epoch, mid data epoch) must come back,
    # and the history entry of epoch 1, already written, be written again.
    _run(data, run, KILL_STATUS, KERAS_PASS_KILL_AT="swap", KERAS_PASS_KILL_AT_COUNT="1")
    assert not (run / "checkpoint" / "latest").exists() and (run / "history.json").exists()
    assert not (run / "teacher_preset").exists()
    capsys.readouterr()
    pretrain(tiny_config(data, run))
    assert f"resuming pretrain from step 2 of 6 (epoch 1), {run}" in capsys.readouterr().out
    assert_same_numbers(io.read_json(run / "history.json"),
                        io.read_json(tmp_path / "reference" / "history.json"), "history.json")
    assert_same_state_files(tmp_path / "reference", run, ignore_files=("metadata.json",))
    assert interrupted_writes(run) == []
