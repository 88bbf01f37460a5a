import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT, once_under_tensorflow

# The command line's parsing and messages do not depend on the backend.
pytestmark = once_under_tensorflow


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "keras_pass", *args], capture_output=True, text=True,
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT}, timeout=600,
    )


def test_help_lists_every_command():
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("convert", "presets", "pretrain", "finetune", "usl", "uda", "evaluate", "extract",
                    "attention"):
        assert command in result.stdout


def test_unknown_command_is_a_usage_error():
    result = _cli("fly")
    assert result.returncode == 2 and "invalid choice: 'fly'" in result.stderr


@pytest.mark.slow
def test_bad_dataset_folder_is_one_line_without_traceback(tmp_path):
    result = _cli("finetune", f"--data_root={tmp_path / 'missing'}", "--preset=x")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: Expected a dataset folder" in result.stderr
    assert "Traceback" not in result.stderr


def test_presets_lists_the_registry(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "keras_pass", "presets"], capture_output=True, text=True, cwd=REPO_ROOT,
        env={**os.environ, "PYTHONPATH": REPO_ROOT, "KERAS_PASS_HOME": str(tmp_path)}, timeout=600,
    )
    assert result.returncode == 0
    assert "pass_vit_small_p16_lup" in result.stdout and "not converted" in result.stdout


@pytest.mark.slow
@pytest.mark.parametrize("command, flag_names", [
    ("usl", ("--eps", "--k1", "--memory_momentum", "--iters", "--stride", "--optimizer", "--padding")),
    ("uda", ("--eps", "multi_neck", "--preset")),
    ("finetune", ("--data_root", "--feature_fusion", "rerank")),
    ("pretrain", ("--data_dir", "--out_dim", "--local_crops_per_part")),
])
def test_recipe_help_lists_the_command_flags(command, flag_names):
    result = _cli(command, "--help")
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.startswith(f"usage: keras-pass {command}")
    for flag in flag_names:
        assert flag in result.stdout


@pytest.mark.slow
def test_uda_without_a_source_model_is_one_line(tmp_path):
    from keras_pass.data.synthetic import write_market1501

    write_market1501(str(tmp_path), num_train_ids=2, num_test_ids=2, num_distractors=0,
                     num_junk=0, image_size=(32, 16))
    result = _cli("uda", f"--data_root={tmp_path}")
    assert result.returncode == 2, result.stderr[-2000:]
    assert "error: Expected the source-domain model" in result.stderr
    assert "Traceback" not in result.stderr
