import os
import subprocess
import sys

import pytest

from tests.helpers import REPO_ROOT


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "keras_pass", *args], capture_output=True, text=True,
        cwd=REPO_ROOT, env={**os.environ, "PYTHONPATH": REPO_ROOT}, timeout=600,
    )


def test_help_lists_every_command():
    result = _cli("--help")
    assert result.returncode == 0
    for command in ("convert", "presets", "pretrain", "finetune", "evaluate", "extract", "attention"):
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
