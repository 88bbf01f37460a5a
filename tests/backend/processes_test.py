"""Two real local JAX processes (loopback, free port, bounded time) train
the pre-training and fine-tuning recipes to the same numbers as one
process: same global batch and seed, data-parallel over both processes'
devices, each process reading its slice of every global batch, process 0
alone writing the output folder."""

import json
import os
import socket
import subprocess
import sys

import keras
import numpy as np
import pytest

from tests.helpers import REPO_ROOT
from tests.state_files import interrupted_writes

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(keras.config.backend() != "jax", reason="multi-process runs are JAX's"),
]
TIMEOUT_S = 400  # ~60-100 s on 2 idle cores (both recipes); more when the cores are shared


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _launch(recipe, data, out_dir, result, process_id=None, port=None, devices=1):
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", "PYTHONPATH": REPO_ROOT, "KERAS_BACKEND": "jax"}
    for name in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                 "KERAS_DISTRIBUTION_PROCESS_ID"):
        env.pop(name, None)
    if process_id is not None:
        env.update(KERAS_DISTRIBUTION_JOB_ADDRESSES=f"127.0.0.1:{port}",
                   KERAS_DISTRIBUTION_NUM_PROCESSES="2", KERAS_DISTRIBUTION_PROCESS_ID=str(process_id))
    command = [sys.executable, "-m", "tests.backend.recipe_run", recipe, str(data), str(out_dir),
               str(result), "--devices", str(devices)]
    return subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)


def _run_one_and_two_processes(recipe, data, tmp_path, two_devices=False):
    """(one-process result, [result of process 0, of process 1] (+ that of
    1 process x 2 devices)): the processes start, the one-process reference
    runs here meanwhile; they are killed after TIMEOUT_S."""
    from tests.backend.recipe_run import run as run_here

    port = _free_port()
    runs = [_launch(recipe, data, tmp_path / "two", tmp_path / f"two_{i}.npz", i, port) for i in (0, 1)]
    if two_devices:
        runs.append(_launch(recipe, data, tmp_path / "devices", tmp_path / "devices.npz", devices=2))
    try:
        one = run_here(recipe, data, tmp_path / "one")
    finally:
        keras.distribution.set_distribution(None)
    for run in runs:
        try:
            output, _ = run.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:
            for other in runs:
                other.kill()
            pytest.fail(f"{recipe}: a process ran past {TIMEOUT_S} s")
        assert run.returncode == 0, output[-3000:]
    names = ["two_0", "two_1"] + (["devices"] if two_devices else [])
    return one, [np.load(tmp_path / f"{name}.npz") for name in names]


def _assert_only_the_writer_wrote(folder):
    record = json.load(open(os.path.join(folder, "run.json")))
    assert (record["num_processes"], record["num_devices"]) == (2, 2)
    assert interrupted_writes(folder) == []


def _write_data(data):
    from keras_pass.models.backbone import PASSBackbone
    from keras_pass.data.synthetic import write_unlabeled
    from tests.helpers import TINY_BACKBONE, make_market1501

    write_unlabeled(str(data / "lup"), num_identities=6, views=(1, 1), image_size=(64, 32), seed=5)
    make_market1501(data)
    PASSBackbone(**TINY_BACKBONE).save_to_preset(str(data / "preset"))


def _compare(one, two, recipe):
    """The keys of `recipe` compared: equal on both processes, and close to
    the one-process run on each multi-device configuration."""
    assert int(one["num_devices"]) == 1 and [int(t["num_devices"]) for t in two] == [2] * len(two)
    assert [int(t["num_processes"]) for t in two[:2]] == [2, 2]
    compared = [k for k in one if k.startswith(recipe + "/")]
    for key in compared:
        np.testing.assert_array_equal(two[0][key], two[1][key], err_msg=key)
        for other in [two[0]] + two[2:]:  # 2 processes x 1 device, 1 process x 2 devices
            np.testing.assert_allclose(other[key], one[key], atol=1e-5, rtol=0, err_msg=key)
    return compared


def test_pretraining_and_finetuning_on_two_processes_match_one(tmp_path):
    """One run of each configuration (the recipes one after the other in the
    same processes, as `recipe_run both`): pre-training's student, teacher,
    centers and loss after 2 steps of global batch 4, and fine-tuning's
    epoch losses after 2 epochs of 2 steps of global batch 8 (P x K = 4 x 2,
    triplets mined over the global batch) agree on 1 device, 2 processes x
    1 device and 1 process x 2 devices; so do fine-tuning's final metrics
    (the features of both processes gathered)."""
    _write_data(tmp_path / "data")
    one, two = _run_one_and_two_processes("both", tmp_path / "data", tmp_path, two_devices=True)
    compared = _compare(one, two, "pretrain")
    assert {"pretrain/centers", "pretrain/teacher_0", "pretrain/student_0", "pretrain/loss"} <= set(compared)
    assert _compare(one, two, "finetune") == ["finetune/loss"]
    results = [json.load(open(tmp_path / name / "finetune" / "results.json"))["final"] for name in ("one", "two")]
    np.testing.assert_allclose(results[0]["cmc"], results[1]["cmc"], atol=1e-6)
    assert results[0]["mAP"] == pytest.approx(results[1]["mAP"], abs=1e-6)
    for recipe in ("pretrain", "finetune"):
        _assert_only_the_writer_wrote(tmp_path / "two" / recipe)
