"""Kill-and-resume tests: tiny recipe runs in fresh processes, and
comparing the saved training state of two runs, file by file."""

import io
import json
import os
import subprocess
import sys
import tempfile
import zipfile

import h5py
import keras
import numpy as np

# TensorFlow on CPU does not promise bit-identical float reductions from one
# run to the next, not even between fresh processes; JAX does. So JAX is
# compared bit for bit, TF to a bound relative to each array's largest
# magnitude (TF_DETERMINISTIC_OPS=1 does not make it exact either). Measured
# differences, float32 rounding grown over a few steps: fine-tuning's Adam
# moments 1.8e-6 of their largest value, USL's weights 1.04e-5, pre-training's
# qkv bias 4.5e-5 (in CI); the bound leaves 4x. Arrays far smaller than the
# rest of their file are held to NOISE_SHARE of the file's largest magnitude
# instead: where a gradient is zero in exact arithmetic (the backbone's last
# LayerNorm bias, followed by BNNeck's BatchNorm), weights and moments hold
# rounding noise only (measured: moments at 4.8e-8 off by 8.3e-8 in a file
# whose largest value is about 1), which no relative bound fits.
RESUME_TOLERANCE = None if keras.config.backend() == "jax" else 2e-4
NOISE_SHARE = 1e-2

STATE_SUFFIXES = (".h5", ".npz", ".json", ".keras")
IGNORED = ("logs",)  # TensorBoard event files carry wall-clock times
RUN_RECORD = "run.json"  # the record of each start: a resumed run adds its own


def start_fresh(module, args, **environment):
    """Starts `python -m module args` in a fresh process (`environment`: the
    kill hooks' variables); `finish_fresh` waits for it. Meanwhile this
    process can run the uninterrupted reference: the cores do both. Its
    output goes to a file (a pipe nobody reads could fill and stall it)."""
    from tests.helpers import REPO_ROOT

    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO_ROOT, **environment}
    log = tempfile.TemporaryFile("w+")
    process = subprocess.Popen([sys.executable, "-m", module, *map(str, args)], cwd=REPO_ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT, text=True)
    process.log = log
    return process


def finish_fresh(process, expect=0):
    """Waits for a `start_fresh` process; asserts its exit status."""
    try:
        process.wait(timeout=600)
    finally:
        process.kill()
    process.log.seek(0)
    output = process.log.read()
    process.log.close()
    assert process.returncode == expect, output[-3000:]


def run_fresh(module, args, expect=0, **environment):
    """`python -m module args` in a fresh process; asserts its exit status."""
    finish_fresh(start_fresh(module, args, **environment), expect)


def interrupted_writes(folder):
    """Names of the temporaries and retired folders of atomic writes left
    anywhere under `folder` (none once a run has started and finished)."""
    from keras_pass.io import OLD_PREFIX, TEMP_PREFIX

    return [name for _, dirs, files in os.walk(folder) for name in dirs + files
            if name.startswith((TEMP_PREFIX, OLD_PREFIX))]


def _h5_arrays(path):
    arrays = {}
    with h5py.File(path) as handle:
        handle.visititems(lambda name, item: arrays.__setitem__(name, np.asarray(item))
                          if isinstance(item, h5py.Dataset) else None)
    return arrays


def _contents(path):
    if path.endswith(".h5"):
        return _h5_arrays(path)
    if path.endswith(".keras"):  # a zip: the weights inside
        with zipfile.ZipFile(path) as archive, archive.open("model.weights.h5") as handle:
            return _h5_arrays(io.BytesIO(handle.read()))
    if path.endswith(".npz"):
        return dict(np.load(path))
    with open(path) as handle:
        data = json.load(handle)
    # A second model in one process is "name_1"; runs compared sit in two folders.
    dropped = ("name", "output_dir") if path.endswith(("config.json", "image_converter.json")) else ("output_dir",)
    return {"json": _without(data, dropped)}


def _without(data, keys):
    if isinstance(data, dict):
        return {k: _without(v, keys) for k, v in data.items() if k not in keys}
    return [_without(v, keys) for v in data] if isinstance(data, list) else data


def state_files(folder):
    """Relative paths of the weights, arrays and JSON files under `folder`."""
    found = []
    for root, dirs, files in os.walk(folder):
        dirs[:] = [d for d in dirs if d not in IGNORED]
        found += [os.path.relpath(os.path.join(root, f), folder) for f in files
                  if f.endswith(STATE_SUFFIXES) and f != RUN_RECORD]
    return sorted(found)


def assert_same_state_files(expected_dir, actual_dir, ignore_keys=(), ignore_files=()):
    """Every state file of both folders, value for value (bit-identical);
    `ignore_files`: base names not compared (KerasHub's metadata.json holds
    the save date)."""
    names = [n for n in state_files(expected_dir) if os.path.basename(n) not in ignore_files]
    assert names == [n for n in state_files(actual_dir) if os.path.basename(n) not in ignore_files]
    for name in names:
        expected = _contents(os.path.join(expected_dir, name))
        actual = _contents(os.path.join(actual_dir, name))
        assert sorted(expected) == sorted(actual), name
        floor = NOISE_SHARE * _largest_magnitude(expected.values())
        for key in expected:
            if key in ignore_keys:
                continue
            assert_same_numbers(actual[key], expected[key], f"{name}: {key}", floor)


def _largest_magnitude(arrays):
    floats = [a for a in arrays if isinstance(a, np.ndarray) and a.dtype.kind == "f" and a.size]
    return max((float(np.max(np.abs(a))) for a in floats), default=0.0)


def assert_same_numbers(actual, expected, where, floor=0.0):
    """Equal (JAX), or within RESUME_TOLERANCE (TensorFlow) of the larger of
    the array's largest magnitude and `floor`, nested."""
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), where
        for key in expected:
            assert_same_numbers(actual[key], expected[key], f"{where}.{key}", floor)
    elif isinstance(expected, list) and not all(isinstance(v, (int, float)) for v in expected):
        assert len(actual) == len(expected), where
        for a, e in zip(actual, expected):
            assert_same_numbers(a, e, where, floor)
    elif RESUME_TOLERANCE and np.issubdtype(np.asarray(expected).dtype, np.floating):
        _assert_close_to_scale(actual, expected, where, floor)
    elif isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        assert actual == expected, where


def _assert_close_to_scale(actual, expected, where, floor):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, where
    if expected.size == 0:
        return
    scale = max(float(np.max(np.abs(expected))), floor, np.finfo(np.float32).tiny)
    difference = float(np.max(np.abs(actual - expected))) / scale
    assert difference <= RESUME_TOLERANCE, (
        f"{where}: differs by {difference:.2e} of {scale:.2e} (bound {RESUME_TOLERANCE})")
