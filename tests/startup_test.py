"""`keras_pass.startup`: what runs before Keras loads. The fresh-process view
(no TensorFlow line in a command's output) is in tests/cli/bad_inputs_test.py."""

import os

import pytest

from keras_pass import startup

# Lines TensorFlow 2.21 wrote on this machine while loading (copied from a terminal).
START_UP = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n",
    "I0000 00:00:1796684511.044675    6421 port.cc:153] oneDNN custom operations are on. You may see "
    "slightly different numerical results due to floating-point round-off errors from different "
    "computation orders. To turn them off, set the environment variable `TF_ENABLE_ONEDNN_OPTS=0`.\n",
    "I0000 00:00:1796684511.046237    6421 cudart_stub.cc:31] Could not find cuda drivers on your "
    "machine, GPU will not be used.\n",
    "I0000 00:00:1796684501.399034    6268 cpu_feature_guard.cc:227] This TensorFlow binary is optimized "
    "to use available CPU instructions in performance-critical operations.\n",
    "To enable the following instructions: AVX2 AVX512F FMA, in other operations, rebuild TensorFlow "
    "with the appropriate compiler flags.\n",
]
CU_INIT = ("E0000 00:00:1796684511.046237    6421 cuda_executor.cc:1228] failed call to cuInit: "
           "INTERNAL: CUDA error: Failed call to cuInit: UNKNOWN ERROR (303)\n")


def test_start_up_lines_are_dropped_below_the_level():
    assert all(startup.start_up_line(line, 3) for line in START_UP + [CU_INIT])
    assert startup.start_up_line(START_UP[1], 1) and not startup.start_up_line(CU_INIT, 2)
    for ours in ("keras-pass extract: error: Expected ...\n", "Epoch 1/2\n", "Traceback (most recent call last):\n",
                 "I0000 is not a log line\n"):
        assert not startup.start_up_line(ours, 3)


@pytest.mark.parametrize("backend", ["foo", "JAX", "tensorflow2"])
def test_unknown_backend_is_one_line_and_exit_2(backend, monkeypatch, capsys):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    with pytest.raises(SystemExit) as exit:
        startup.prepare()
    assert exit.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and f"KERAS_BACKEND={backend}" in lines[0]
    assert "jax, tensorflow" in lines[0]


@pytest.mark.parametrize("backend", ["jax", "tensorflow", ""])
def test_keras_backends_pass(backend, monkeypatch):
    monkeypatch.setenv("KERAS_BACKEND", backend)
    startup.check_backend()


def test_a_users_log_level_is_kept(monkeypatch):
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "0")
    startup.prepare()
    assert os.environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
