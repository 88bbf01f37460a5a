"""TensorFlow multi-worker is refused with one line naming the JAX route
(measured: Keras 3.15's fit fails under MultiWorkerMirroredStrategy,
docs/experiments/multi_worker.md; tools/multi_worker_probe.py re-measures)."""

import pytest

from keras_pass.backend.distribution import distribution_scope
from keras_pass.cli.main import main


def test_multi_worker_mirrored_is_a_value_error_naming_the_jax_route():
    with pytest.raises(ValueError, match="data_parallel' on the JAX backend") as error:
        distribution_scope("multi_worker_mirrored")
    assert "Received: distribution=multi_worker_mirrored" in str(error.value)


def test_the_cli_refuses_in_one_line_with_exit_2(tmp_path, capsys):
    status = main(["pretrain", f"--data_dir={tmp_path}", f"--output_dir={tmp_path / 'out'}",
                   "--distribution=multi_worker_mirrored"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2
    assert lines[0].startswith("keras-pass pretrain: error: Expected distribution 'data_parallel'")
    assert "KERAS_BACKEND=jax" in lines[0] and len(lines) == 1


def test_keras_distribution_variables_without_data_parallel_are_refused(monkeypatch):
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    with pytest.raises(ValueError, match="distribution='data_parallel' with KERAS_DISTRIBUTION_"):
        distribution_scope("none")
