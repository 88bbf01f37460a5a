"""keras_pass.io: the one atomic writer, killed mid-write."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from keras_pass import io
from tests.helpers import REPO_ROOT

_SLOW_WRITER = r"""
import sys, time
from keras_pass import io
with io.atomic_path(sys.argv[1]) as temporary:
    with open(temporary, "w") as handle:
        handle.write("new-partial")
        handle.flush()
        print("writing", flush=True)
        time.sleep(60)
        handle.write("-rest")
"""


def test_a_writer_killed_mid_write_leaves_the_old_file_intact(tmp_path):
    target = tmp_path / "results.json"
    io.write_json(target, {"old": True})
    writer = subprocess.Popen([sys.executable, "-c", _SLOW_WRITER, str(target)], cwd=REPO_ROOT,
                              stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONPATH": REPO_ROOT})
    try:
        assert writer.stdout.readline().strip() == "writing"
        leftovers = [n for n in os.listdir(tmp_path) if n.startswith(io.TEMP_PREFIX)]
        assert len(leftovers) == 1  # the partial file exists beside the target
        writer.send_signal(signal.SIGKILL)
        writer.wait(timeout=30)
    finally:
        writer.kill()
    assert json.loads(target.read_text()) == {"old": True}
    assert io.remove_stale_temps(tmp_path) == leftovers
    assert os.listdir(tmp_path) == ["results.json"]


def test_a_failed_write_keeps_the_old_file_and_no_temporary(tmp_path):
    target = tmp_path / "a.txt"
    io.write_text(target, "old")
    with pytest.raises(RuntimeError):
        with io.atomic_path(target) as temporary:
            open(temporary, "w").write("half")
            raise RuntimeError("disk full")
    assert target.read_text() == "old" and os.listdir(tmp_path) == ["a.txt"]


def test_directory_swap_and_recovery_of_an_interrupted_swap(tmp_path):
    target = tmp_path / "preset"
    with io.atomic_directory(target) as staging:
        open(os.path.join(staging, "config.json"), "w").write("1")
    with io.atomic_directory(target) as staging:
        open(os.path.join(staging, "config.json"), "w").write("2")
    assert (target / "config.json").read_text() == "2"
    assert sorted(os.listdir(tmp_path)) == ["preset"]
    # A swap killed between its two renames: only the retired folder is left.
    os.rename(target, tmp_path / f"{io.OLD_PREFIX}1234abcd-preset")
    assert io.recover_directory(target)
    assert (target / "config.json").read_text() == "2"


def test_formats_and_clear_errors(tmp_path):
    io.write_json(tmp_path / "d.json", {"t": (1, 2), "a": np.arange(2), "s": np.float32(0.5)})
    assert io.read_json(tmp_path / "d.json") == {"t": [1, 2], "a": [0, 1], "s": 0.5}
    io.save_npy(tmp_path / "x.npy", np.eye(2))
    np.testing.assert_array_equal(np.load(tmp_path / "x.npy"), np.eye(2))
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="bad.json"):
        io.read_json(tmp_path / "bad.json")
    with pytest.raises(ValueError, match="no such file"):
        io.read_json(tmp_path / "missing.json")
    (tmp_path / "file").write_text("")
    with pytest.raises(ValueError, match="is a file"):
        io.write_text(tmp_path / "file" / "sub" / "x.txt", "")
    with pytest.raises(ValueError, match="weights.h5"):
        io.save_weights(None, tmp_path / "w.h5")


def test_figure_into_a_folder_is_refused_and_leaves_nothing(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    target = tmp_path / "pictures"
    target.mkdir()
    with pytest.raises(ValueError, match="pictures"):
        io.save_figure(plt.figure(), str(target))
    with pytest.raises(ValueError, match="pictures"):
        io.save_figure(plt.figure(), f"{target}/")
    assert sorted(os.listdir(tmp_path)) == ["pictures"] and os.listdir(target) == []


def test_interrupted_writes_are_finished_or_removed_at_the_next_start(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoint" / ".kp-old-0a1b2c3d-latest").mkdir(parents=True)  # swap killed between renames
    (run / "checkpoint" / ".kp-old-0a1b2c3d-latest" / "state.json").write_text("{}")
    (run / "checkpoint" / ".kp-tmp-0a1b2c3d-latest").mkdir()
    (run / ".kp-tmp-99999999-final.keras").write_bytes(b"half")
    (run / "keep.txt").write_text("kept")
    removed = io.clean_interrupted_writes(run)
    assert (run / "checkpoint" / "latest" / "state.json").read_text() == "{}"  # brought back
    assert sorted(os.path.basename(p) for p in removed) == [".kp-tmp-0a1b2c3d-latest",
                                                           ".kp-tmp-99999999-final.keras"]
    assert sorted(os.listdir(run)) == ["checkpoint", "keep.txt"]
    assert os.listdir(run / "checkpoint") == ["latest"]


def test_a_failed_run_leaves_no_folder_it_created_and_keeps_an_existing_one(tmp_path):
    with pytest.raises(RuntimeError):
        with io.run_folder(tmp_path / "new"):
            os.makedirs(tmp_path / "new" / "backup")
            (tmp_path / "new" / "run.json").write_text("{}")  # describes the run: nothing to resume
            raise RuntimeError("failed")
    assert not (tmp_path / "new").exists()
    with pytest.raises(RuntimeError):
        with io.run_folder(tmp_path / "resumable"):
            os.makedirs(tmp_path / "resumable" / "backup")
            (tmp_path / "resumable" / "backup" / "state.json").write_text("{}")
            raise RuntimeError("failed")
    assert (tmp_path / "resumable" / "backup" / "state.json").is_file()
    (tmp_path / "old").mkdir()
    with pytest.raises(RuntimeError):
        with io.run_folder(tmp_path / "old"):
            raise RuntimeError("failed")
    assert (tmp_path / "old").is_dir()


def test_writers_refuse_non_finite_weights(tmp_path):
    import keras

    from keras_pass.errors import NonFiniteLossError

    model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2)])
    io.save_weights(model, tmp_path / "good.weights.h5")
    before = (tmp_path / "good.weights.h5").read_bytes()
    model.layers[0].kernel.assign(np.full((3, 2), np.nan, "float32"))
    for writer, name in ((io.save_weights, "good.weights.h5"), (io.save_model, "model.keras")):
        with pytest.raises(NonFiniteLossError, match="6 of 8 values"):
            writer(model, tmp_path / name)
    assert (tmp_path / "good.weights.h5").read_bytes() == before
    assert sorted(os.listdir(tmp_path)) == ["good.weights.h5"]


def test_preset_writer_refuses_non_finite_weights(tmp_path):
    from keras_pass.models.backbone import PASSBackbone
    from keras_pass.errors import NonFiniteLossError
    from tests.helpers import TINY_BACKBONE

    backbone = PASSBackbone(**TINY_BACKBONE)
    backbone.embeddings.cls_pos.assign(np.full(backbone.embeddings.cls_pos.shape, np.inf, "float32"))
    with pytest.raises(NonFiniteLossError, match="Expected finite weights to write to"):
        backbone.save_to_preset(str(tmp_path / "preset"))
    assert os.listdir(tmp_path) == []


def test_a_failed_write_closes_what_h5py_held_open_on_its_temporary(tmp_path):
    """A Keras save that fails mid-write (a full disk) leaves its HDF5 file
    open; closed only at exit, its flush fails again and the interpreter
    crashes (measured: `finetune` onto a full tmpfs, exit 139)."""
    import h5py

    held = []
    with pytest.raises(OSError):
        with io.atomic_path(tmp_path / "w.weights.h5", ".weights.h5") as temporary:
            held.append(h5py.File(temporary, "w"))
            held[0].create_dataset("x", data=[1.0, 2.0])
            raise OSError(28, "No space left on device")
    assert not held[0].id.valid
    assert os.listdir(tmp_path) == []


def test_weights_are_not_started_on_a_disk_without_room_for_them(tmp_path, monkeypatch):
    import collections
    import errno

    import keras

    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(1000)])  # 20 KB of float32
    usage = collections.namedtuple("usage", "total used free")
    monkeypatch.setattr(io.shutil, "disk_usage", lambda folder: usage(2 << 20, 2 << 20, 1 << 20))
    with pytest.raises(OSError) as error:
        io.save_weights(model, tmp_path / "w.weights.h5")
    assert error.value.errno == errno.ENOSPC and "w.weights.h5" in str(error.value)
    assert os.listdir(tmp_path) == []
    monkeypatch.setattr(io.shutil, "disk_usage", lambda folder: usage(4 << 20, 0, 4 << 20))
    io.save_weights(model, tmp_path / "w.weights.h5")
    assert os.listdir(tmp_path) == ["w.weights.h5"]
