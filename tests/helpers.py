"""Shared test helpers: tiny configurations and data sets, fresh and\nin-process runs of scripts, simulated devices."""

import contextlib
import io
import os
import runpy
import subprocess
import sys
from unittest import mock

import keras
import pytest
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_BACKBONE = dict(
    image_shape=(64, 32, 3), hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64
)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def tree_to_numpy(outputs):
    return {k: to_numpy(v) for k, v in outputs.items()}


def run_python(code, backend, cwd=REPO_ROOT, timeout=600):
    """Runs `code` in a fresh interpreter under `backend`; returns stdout."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def run_script(script, *args, status=0):
    """`python SCRIPT ARGS...` in this process (`runpy`: the script's own
    `__main__` block, as users run it): its stdout; it exits `status`."""
    path = os.path.join(REPO_ROOT, script)
    stdout = io.StringIO()
    with mock.patch.object(sys, "argv", [path, *map(str, args)]), contextlib.redirect_stdout(stdout):
        with pytest.raises(SystemExit) as exit:
            runpy.run_path(path, run_name="__main__")
    assert exit.value.code == status, stdout.getvalue()[-4000:]
    return stdout.getvalue()


def other_backend():
    return "tensorflow" if keras.config.backend() == "jax" else "jax"


TINY_HEAD = dict(out_dim=64, head_hidden_dim=32, bottleneck_dim=16)


def tiny_pretrainer(**kwargs):
    from keras_pass.models.backbone import PASSBackbone
    from keras_pass.pretraining.trainer import PASSPretrainer

    backbone = PASSBackbone(
        **TINY_BACKBONE, drop_path_rate=kwargs.pop("drop_path_rate", 0.0),
        pos_embed_interpolation="always", dtype=kwargs.pop("dtype", None),
    )
    return PASSPretrainer(backbone, **{**TINY_HEAD, **kwargs})


def tiny_crops(batch=4, seed=0, num_parts=3, crops_per_part=2):
    rng = np.random.default_rng(seed)
    return {
        "global_crops": rng.normal(size=(batch, 2, 64, 32, 3)).astype("float32"),
        "local_crops": rng.normal(size=(batch, num_parts, crops_per_part, 32, 16, 3)).astype("float32"),
    }


def repeated_dataset(data, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size).repeat()


# === Miniature ReID datasets with the real file naming (tests/reid) ===

def write_image(path, seed, size=(48, 24), identity=None):
    """A small random JPEG (or PNG by extension): a base colour drawn from
    `identity` (or `seed`) plus per-image noise drawn from `seed`."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    base = np.random.default_rng(seed if identity is None else identity).integers(0, 256, size=3)
    noise = rng.integers(-40, 40, size=(*size, 3))
    pixels = np.clip(base + noise, 0, 255).astype("uint8")
    os.makedirs(os.path.dirname(path), exist_ok=True)
    Image.fromarray(pixels).save(path)


# Market-1501 layout: (folder, pid, camera 1-based, count). pid -1 = junk,
# 0 = distractor. Train ids are not consecutive (relabelling is tested) and
# id 11 has 2 images (fewer than K=4: sampled with replacement).
MINI_MARKET = {
    "bounding_box_train": [(2, 1, 3), (2, 2, 2), (7, 1, 2), (7, 3, 3), (11, 2, 2),
                           (15, 1, 3), (15, 3, 3), (-1, 1, 2)],
    "query": [(1, 1, 1), (1, 2, 1), (3, 1, 1), (3, 3, 1), (5, 2, 1), (9, 1, 1)],
    "bounding_box_test": [(1, 1, 2), (1, 2, 1), (1, 3, 2), (3, 1, 1), (3, 2, 2),
                          (5, 2, 2), (5, 3, 1), (9, 1, 2), (0, 1, 2), (0, 3, 1),
                          (-1, 2, 2)],
}


def garble_image(path):
    """Keeps a JPEG's start and end markers, zeroes what is between: the
    file passes the header checks and fails only at full decode."""
    with open(path, "rb") as handle:
        data = bytearray(handle.read())
    data[4:len(data) - 2] = b"\x00" * (len(data) - 6)  # after SOI + a marker's first bytes
    with open(path, "wb") as handle:
        handle.write(bytes(data))


def make_market1501(root, layout=None, size=(48, 24), name="Market-1501-v15.09.15"):
    """Writes a miniature Market-1501 folder `root/name` with real names
    `PPPP_cCsS_FFFFFF_NN.jpg` (junk `-1_...`, distractors `0000_...`, a
    Thumbs.db). Query id 9 has gallery images only from its own camera, so
    it has no valid match. Returns (dataset_dir, {folder: [(file, pid, cam0)]})."""
    layout = layout or MINI_MARKET
    directory = os.path.join(str(root), name)
    truth = {}
    seed = 0
    for folder, groups in layout.items():
        truth[folder] = []
        for pid, camera, count in groups:
            for n in range(count):
                seed += 1
                pid_text = "-1" if pid == -1 else f"{pid:04d}"
                file_name = f"{pid_text}_c{camera}s1_{1000 * camera + 7 * n + pid + 10:06d}_0{n}.jpg"
                write_image(os.path.join(directory, folder, file_name), seed, size,
                            identity=None if pid <= 0 else 5000 + pid)
                truth[folder].append((file_name, pid, camera - 1))
    with open(os.path.join(directory, "bounding_box_test", "Thumbs.db"), "wb") as handle:
        handle.write(b"\0" * 8)
    return directory, truth


def make_dukemtmc(root, size=(48, 24)):
    """Miniature DukeMTMC-reID: names `0001_c2_f0046182.jpg`."""
    directory = os.path.join(str(root), "DukeMTMC-reID")
    layout = {"bounding_box_train": [(5, 1, 2), (8, 2, 2)],
              "query": [(1, 1, 1)], "bounding_box_test": [(1, 2, 2), (4, 3, 1)]}
    seed = 0
    for folder, groups in layout.items():
        for pid, camera, count in groups:
            for n in range(count):
                seed += 1
                name = f"{pid:04d}_c{camera}_f{46000 + seed:07d}.jpg"
                write_image(os.path.join(directory, folder, name), seed, size)
    return directory


def make_msmt17(root, version="MSMT17_V1", size=(48, 24), with_val=True):
    """Miniature MSMT17 with list files `PID/PID_IDX_CC_TIME_NNNN_N.jpg PID`."""
    train_dir, test_dir = {"MSMT17_V1": ("train", "test"),
                           "MSMT17_V2": ("mask_train_v2", "mask_test_v2")}[version]
    directory = os.path.join(str(root), version)
    lists = {"train": [(0, 1), (0, 2), (1, 3), (1, 3)], "val": [(0, 5), (1, 3)],
             "query": [(0, 1), (1, 2)], "gallery": [(0, 2), (0, 1), (1, 1), (2, 4)]}
    if not with_val:
        del lists["val"]
    seed = 0
    for split, items in lists.items():
        folder = train_dir if split in ("train", "val") else test_dir
        lines = []
        for pid, camera in items:
            seed += 1
            relative = f"{pid:04d}/{pid:04d}_{seed:03d}_{camera:02d}_0303morning_{seed:04d}_0.jpg"
            write_image(os.path.join(directory, folder, relative), seed, size)
            lines.append(f"{relative} {pid}\n")
        with open(os.path.join(directory, f"list_{split}.txt"), "w") as handle:
            handle.writelines(lines)
    return directory


def make_generic(root, size=(48, 24)):
    """`root/{train,query,gallery}/<pid>/<camid>_*.jpg` plus `gallery.csv`."""
    layout = {"train": [(30, 0, 2), (40, 1, 2)], "query": [(7, 0, 1)],
              "gallery": [(7, 1, 2), (8, 0, 1)]}
    seed = 0
    rows = []
    for split, groups in layout.items():
        for pid, camera, count in groups:
            for n in range(count):
                seed += 1
                relative = os.path.join(split, str(pid), f"{camera}_{n:03d}.jpg")
                write_image(os.path.join(str(root), relative), seed, size)
                if split == "gallery":
                    rows.append(f"{relative},{pid},{camera}\n")
    return rows


def simulated_devices_scope(num_devices):
    """Data parallelism over `num_devices` simulated CPU devices: JAX
    `DataParallel` (needs XLA_FLAGS=--xla_force_host_platform_device_count
    set before JAX starts) or a TF `MirroredStrategy` scope."""
    import contextlib

    if num_devices == 1:
        return contextlib.nullcontext()
    if keras.config.backend() == "jax":
        devices = keras.distribution.list_devices("cpu")
        keras.distribution.set_distribution(keras.distribution.DataParallel(devices=devices))
        return contextlib.nullcontext()
    import tensorflow as tf

    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * num_devices)
    return tf.distribute.MirroredStrategy([f"/cpu:{i}" for i in range(num_devices)]).scope()


# Tests of backend-independent code (tf.data pipelines, files) and the
# end-to-end demo (each of its stages is tested on both backends) run once,
# under TensorFlow (Keras's default backend): CI's time on 2 cores.
once_under_tensorflow = pytest.mark.skipif(
    keras.config.backend() != "tensorflow",
    reason="backend-independent or covered per stage: run once, under the TensorFlow backend",
)


# === The release's initialisation (tests/models) ===

def assert_independent_with_spreads(weights, expected_std):
    """`weights`: {name: array}; `expected_std`: {name: the release's std}
    (0 for constants). Every weight's sample std is within a few percent (or
    5 sampling standard errors for small weights) of the expected one, and
    no two random weights are copies or scaled copies of each other (the
    flattened prefixes of any two are uncorrelated)."""
    random = {}
    for name, value in weights.items():
        std = expected_std[name]
        if std == 0:
            assert np.all(value == value.flat[0]), name
            continue
        tolerance = max(0.03, 5 / np.sqrt(2 * value.size))
        assert abs(value.std() / std - 1) < tolerance, (name, value.std(), std)
        random[name] = value.ravel()
    names = sorted(random)
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            n = min(len(random[first]), len(random[second]), 4096)
            correlation = np.corrcoef(random[first][:n], random[second][:n])[0, 1]
            assert abs(correlation) < 6 / np.sqrt(n) + 0.05, (first, second, correlation)
