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
