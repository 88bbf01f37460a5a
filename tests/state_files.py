"""Comparing the saved training state of two runs, file by file."""

import io
import json
import os
import zipfile

import h5py
import keras
import numpy as np

# TensorFlow on CPU does not promise bit-identical float reductions from one
# run to the next (measured in CI: a resumed fine-tuning run's Adam moments
# off by 1.3e-6 where the array's largest value is 0.73, float32 rounding
# grown over a few steps); JAX does. So TF is compared to a bound relative to
# each array's largest magnitude, JAX bit for bit.
RESUME_TOLERANCE = None if keras.config.backend() == "jax" else 1e-5

STATE_SUFFIXES = (".h5", ".npz", ".json", ".keras")
IGNORED = ("logs",)  # TensorBoard event files carry wall-clock times
RUN_RECORD = "run.json"  # the record of each start: a resumed run adds its own


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
        for key in expected:
            if key in ignore_keys:
                continue
            assert_same_numbers(actual[key], expected[key], f"{name}: {key}")


def assert_same_numbers(actual, expected, where):
    """Equal (JAX), or within RESUME_TOLERANCE (TensorFlow), nested."""
    if isinstance(expected, dict):
        assert sorted(actual) == sorted(expected), where
        for key in expected:
            assert_same_numbers(actual[key], expected[key], f"{where}.{key}")
    elif isinstance(expected, list) and not all(isinstance(v, (int, float)) for v in expected):
        assert len(actual) == len(expected), where
        for a, e in zip(actual, expected):
            assert_same_numbers(a, e, where)
    elif RESUME_TOLERANCE and np.issubdtype(np.asarray(expected).dtype, np.floating):
        _assert_close_to_scale(actual, expected, where)
    elif isinstance(expected, np.ndarray):
        np.testing.assert_array_equal(actual, expected, err_msg=where)
    else:
        assert actual == expected, where


def _assert_close_to_scale(actual, expected, where):
    actual, expected = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    assert actual.shape == expected.shape, where
    if expected.size == 0:
        return
    scale = max(float(np.max(np.abs(expected))), np.finfo(np.float32).tiny)
    difference = float(np.max(np.abs(actual - expected))) / scale
    assert difference <= RESUME_TOLERANCE, (
        f"{where}: differs by {difference:.2e} of its largest magnitude (bound {RESUME_TOLERANCE})")
