"""`keras_pass.runs`: the run folder of every recipe. The lock, run.json
and the settings check on a stand-in recipe (no training); the resume
line, a changed structural flag and a full disk on tiny real pre-training
runs, in-process; one real second process refused by the CLI."""

import dataclasses
import errno
import json
import os
import socket
import subprocess
import sys

import pytest

from keras_pass import io, runs
from keras_pass.checkpoint import LATEST, WEIGHTS_FILE, read_state
from keras_pass.cli.main import main as cli_main
from keras_pass.data.synthetic import write_unlabeled
from keras_pass.recipes.config import setting
from keras_pass.recipes.pretrain import pretrain
from tests.helpers import REPO_ROOT
from tests.recipes.tiny_pretrain_run import tiny_config


@dataclasses.dataclass
class StandIn:
    output_dir: str = setting()
    preset: str = setting(None)
    width: int = setting(8, flag="head_width")
    epochs: int = setting(1)
    verbose: int = setting(0)
    overwrite: bool = setting(False)
    distribution: str = setting("none")


def _run(config, train=None, finished=lambda: None):
    def default_train(run):
        run.record("data", 12)
        io.write_text(os.path.join(config.output_dir, "model.txt"), "trained")  # a state to resume from
        return "trained"

    return runs.run_recipe(config, "standin", train or default_train, finished, "model.txt", ("model.txt",))


def _dead_pid():
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_run_json_holds_the_settings_source_hash_and_data(tmp_path):
    preset = tmp_path / "preset"
    preset.mkdir()
    (preset / "config.json").write_text("{}")
    (preset / "metadata.json").write_text('{"date": "today"}')
    config = StandIn(output_dir=str(tmp_path / "run"), preset=str(preset), width=5)
    assert _run(config) == "trained"
    record = io.read_json(tmp_path / "run" / "run.json")
    assert record["settings"] == {"output_dir": config.output_dir, "preset": str(preset), "width": 5,
                                  "epochs": 1, "verbose": 0, "overwrite": False, "distribution": "none"}
    import hashlib

    expected = hashlib.sha256(b"config.json{}").hexdigest()  # metadata.json (a save date) left out
    assert record["source"] == {"preset": {"path": str(preset), "sha256": expected}}
    assert record["data"] == {"root": os.path.abspath("data"), "images": 12}
    assert record["recipe"] == "standin" and "versions" in record


def test_a_changed_structural_setting_is_refused_naming_the_flag(tmp_path):
    config = StandIn(output_dir=str(tmp_path))
    _run(config)
    with pytest.raises(runs.RunError, match=r"--head_width=16 \(was 8\)") as error:
        _run(dataclasses.replace(config, width=16))
    assert str(tmp_path) in str(error.value) and "--overwrite" in str(error.value)
    assert _run(dataclasses.replace(config, width=16, overwrite=True)) == "trained"


def test_continuable_settings_may_change_and_a_finished_run_says_which_differ(tmp_path, capsys):
    config = StandIn(output_dir=str(tmp_path))
    _run(config)
    assert _run(dataclasses.replace(config, epochs=3, verbose=1)) == "trained"
    done = _run(dataclasses.replace(config, verbose=2), finished=lambda: "done")
    assert done == "done"
    out = capsys.readouterr().out
    assert "nothing to do" in out and "--verbose=2 (was 1)" in out and "--epochs=1 (was 3)" in out


def test_changed_data_or_source_is_refused(tmp_path):
    config = StandIn(output_dir=str(tmp_path))
    _run(config)

    def fewer_images(run):
        run.record("data", 11)

    with pytest.raises(runs.RunError, match=r"data .*\"images\": 11.*was .*\"images\": 12"):
        _run(config, fewer_images)


def test_a_second_run_on_a_locked_folder_is_refused_naming_the_holder(tmp_path):
    lock = runs.RunLock(tmp_path)
    lock.acquire()  # a second open file description: flock refuses it even in this process
    try:
        with pytest.raises(runs.RunError, match=f"locked by pid {os.getpid()} on {socket.gethostname()}"):
            _run(StandIn(output_dir=str(tmp_path)))
    finally:
        lock.release()
    assert _run(StandIn(output_dir=str(tmp_path))) == "trained"


def test_a_stale_lock_of_a_dead_process_is_taken_over(tmp_path, capsys):
    pid = _dead_pid()
    (tmp_path / runs.LOCK_FILE).write_text(json.dumps(
        {"pid": pid, "host": socket.gethostname(), "started": "2026-01-01T00:00:00+00:00"}))
    assert _run(StandIn(output_dir=str(tmp_path))) == "trained"
    out = capsys.readouterr().out
    assert f"taking over the lock of {tmp_path} left by pid {pid}" in out and "no longer running" in out
    assert (tmp_path / runs.LOCK_FILE).read_text() == ""  # released


def test_a_second_process_exits_2_naming_the_folder_and_holder(tmp_path):
    """A real second process: `keras-pass pretrain` on a folder this test
    holds; refused before it reads any data."""
    lock = runs.RunLock(tmp_path / "run")
    lock.acquire()
    try:
        env = {**os.environ, "PYTHONPATH": REPO_ROOT, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run(
            [sys.executable, "-m", "keras_pass.cli.main", "pretrain", f"--data_dir={tmp_path / 'none'}",
             f"--output_dir={tmp_path / 'run'}"], cwd=REPO_ROOT, env=env, capture_output=True, text=True,
            timeout=600)
    finally:
        lock.release()
    assert result.returncode == 2, result.stderr[-2000:]
    line = result.stderr.strip().splitlines()[-1]
    assert line.startswith("keras-pass pretrain: error: Expected no other run in ")
    assert str(tmp_path / "run") in line and f"locked by pid {os.getpid()} on {socket.gethostname()}" in line


@pytest.fixture(scope="module")
def images(tmp_path_factory):
    data = str(tmp_path_factory.mktemp("lup") / "data")
    write_unlabeled(data, num_identities=4, views=(2, 2), image_size=(64, 32), seed=5)
    return data


def test_pretraining_resumes_saying_so_refuses_a_changed_flag_and_survives_a_full_disk(
        images, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    pretrain(dataclasses.replace(tiny_config(images, run), epochs=1))
    out = capsys.readouterr().out
    assert f"pretrain: trained on 16 images (0 skipped), 3 steps; outputs in {run}" in out
    record = io.read_json(run / "run.json")
    assert record["settings"]["head_hidden_dim"] == 16 and record["data"]["images"] == 16
    with pytest.raises(runs.RunError, match=r"--head_hidden_dim=32 \(was 16\)"):
        pretrain(dataclasses.replace(tiny_config(images, run), head_hidden_dim=32))
    assert cli_main(["pretrain", f"--data_dir={images}", f"--output_dir={run}", "--arch=vit_tiny",
                     "--head_hidden_dim=32"]) == 2
    assert "--head_hidden_dim=32 (was 16)" in capsys.readouterr().err

    # A full disk at the next checkpoint: one RunError naming the folder, the last checkpoint intact.
    weights = (run / "checkpoint" / LATEST / WEIGHTS_FILE).read_bytes()
    fsync = io._fsync

    def full_disk(path):
        if LATEST in path:
            raise OSError(errno.ENOSPC, "No space left on device")
        fsync(path)

    monkeypatch.setattr(io, "_fsync", full_disk)
    with pytest.raises(runs.RunError, match=f"Expected to be able to write in {run}. Received: no space left"):
        pretrain(tiny_config(images, run))
    assert "resuming pretrain from step 3 of 6 (epoch 2), " + str(run) in capsys.readouterr().out
    assert read_state(run / "checkpoint")["step"] == 3
    assert (run / "checkpoint" / LATEST / WEIGHTS_FILE).read_bytes() == weights
    from tests.state_files import interrupted_writes

    assert interrupted_writes(run) == []
