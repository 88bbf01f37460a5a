"""`recipes.finetune`: a NaN stop that writes nothing, idempotent re-runs,
history rows logged once, interrupted writes cleaned at the next start."""

import hashlib
import os

import h5py
import numpy as np
import pytest

from keras_pass import io
from keras_pass.models.backbone import PASSBackbone
from keras_pass.cli.main import main as cli_main
from keras_pass.errors import EXIT_NON_FINITE_LOSS, NonFiniteLossError
from keras_pass.recipes.finetune import FinetuneConfig, finetune
from keras_pass.checkpoint import read_state
from tests.helpers import TINY_BACKBONE, make_market1501
from tests.kill_points import KILL_STATUS
from tests.recipes.tiny_finetune_run import tiny_config as tiny_run_config
from tests.state_files import (
    assert_same_numbers,
    assert_same_state_files,
    finish_fresh,
    interrupted_writes,
    run_fresh,
    start_fresh,
)


@pytest.fixture(scope="module")
def market(tmp_path_factory):
    root = tmp_path_factory.mktemp("finetune")
    make_market1501(root / "data", size=(64, 32))
    PASSBackbone(**TINY_BACKBONE).save_to_preset(str(root / "preset"))
    return str(root / "data"), str(root / "preset")


def tiny(market, output_dir, **kwargs):
    data, preset = market
    settings = dict(image_size=(64, 32), epochs=2, batch_size=8, num_instances=2, steps_per_epoch=2,
                    warmup_epochs=1, eval_every=2, verbose=0)
    return FinetuneConfig(data_root=data, output_dir=str(output_dir), preset=preset,
                          **{**settings, **kwargs})


def digests(folder):
    """{relative path: sha256} of every file under `folder`."""
    found = {}
    for root, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def all_finite(path):
    """True if every float array in an `.h5` file is finite."""
    arrays = []
    with h5py.File(path) as handle:
        handle.visititems(lambda _, item: arrays.append(np.asarray(item))
                          if isinstance(item, h5py.Dataset) and item.dtype.kind == "f" else None)
    return all(np.isfinite(a).all() for a in arrays)


@pytest.mark.slow
def test_huge_lr_stops_and_leaves_the_last_checkpoint_as_it_was(market, tmp_path):
    finetune(tiny(market, tmp_path, epochs=1, eval_every=1))
    os.remove(tmp_path / "results.json")  # not finished: the next run resumes from the checkpoint
    # The run continued with a huge lr, as if it had been recorded so (a changed lr is refused).
    record = io.read_json(tmp_path / "run.json")
    record["settings"]["base_lr"] = 1e9
    io.write_json(tmp_path / "run.json", record)
    before = digests(tmp_path)
    assert "checkpoint/latest/state.weights.h5" in before
    with pytest.raises(NonFiniteLossError, match="at step|Expected finite weights"):
        finetune(tiny(market, tmp_path, epochs=3, base_lr=1e9))
    after = digests(tmp_path)
    # history.csv: the epochs to redo are dropped; run.json: every start adds its record
    unchanged = [name for name in before if name not in ("history.csv", "run.json", "run.lock")]
    assert {k: after.get(k) for k in unchanged} == {k: before[k] for k in unchanged}
    assert all(all_finite(tmp_path / name) for name in after if name.endswith(".h5"))


@pytest.mark.slow
def test_huge_lr_through_the_cli_is_exit_3_and_writes_no_non_finite_file(market, tmp_path, capsys):
    data, preset = market
    out = tmp_path / "out"
    status = cli_main(["finetune", f"--data_root={data}", f"--preset={preset}", f"--output_dir={out}",
                       "--image_size=64,32", "--epochs=2", "--batch_size=8", "--num_instances=2",
                       "--steps_per_epoch=2", "--warmup_epochs=1", "--base_lr=1e9", "--verbose=0"])
    assert status == EXIT_NON_FINITE_LOSS
    err = capsys.readouterr().err
    assert err.startswith("keras-pass finetune: stopped: ") and "Traceback" not in err
    assert "nan" in err.splitlines()[0].lower()
    written = digests(out) if out.exists() else {}
    assert not {"final.keras", "results.json", "best.weights.h5"} & set(written)
    assert all(all_finite(out / name) for name in written if name.endswith(".h5"))


@pytest.mark.slow
def test_a_finished_run_is_not_redone_unless_overwrite(market, tmp_path, capsys):
    first = finetune(tiny(market, tmp_path))
    with open(tmp_path / "history.csv") as handle:
        rows = handle.read().splitlines()
    assert len(rows) == 3  # header + 2 epochs
    before = digests(tmp_path)
    capsys.readouterr()
    again = finetune(tiny(market, tmp_path))
    assert "nothing to do" in capsys.readouterr().out
    assert digests(tmp_path) == before
    assert again["mAP"] == pytest.approx(first["mAP"])
    redone = finetune(tiny(market, tmp_path, overwrite=True))
    with open(tmp_path / "history.csv") as handle:
        assert len(handle.read().splitlines()) == 3  # rows of the redone run only, once
    assert redone["mAP"] == pytest.approx(first["mAP"])  # same seed, same run


def test_interrupted_writes_are_cleaned_and_a_failed_run_leaves_no_folder(market, tmp_path):
    out = tmp_path / "out"
    (out / "checkpoint").mkdir(parents=True)
    stale = [out / ".kp-tmp-0a1b2c3d-final.keras", out / "checkpoint" / ".kp-tmp-0a1b2c3d-latest"]
    stale[0].write_bytes(b"half")
    stale[1].mkdir()
    with pytest.raises(ValueError):
        finetune(tiny(market, out, dataset="dukemtmc"))  # bad input: no DukeMTMC there
    assert not any(path.exists() for path in stale)
    fresh = tmp_path / "fresh"
    with pytest.raises(ValueError):
        finetune(tiny(market, fresh, dataset="dukemtmc"))
    assert not fresh.exists()


@pytest.mark.slow
def test_killed_finetuning_resumes_bit_identical(market, tmp_path):
    data, preset = market
    run = tmp_path / "killed"
    # killed in epoch 2 of 3, after its first step; the reference runs here meanwhile
    killed = start_fresh("tests.recipes.tiny_finetune_run", (data, preset, run), KERAS_PASS_KILL_AT_STEP="3")
    finetune(tiny_run_config(data, preset, tmp_path / "reference"))
    finish_fresh(killed, KILL_STATUS)
    assert read_state(run / "checkpoint")["epoch"] == 1
    # resumed, and killed again while writing epoch 2's checkpoint (its temporary complete)
    _run(data, preset, run, KILL_STATUS, KERAS_PASS_KILL_AT="write", KERAS_PASS_KILL_AT_FILE="latest")
    assert read_state(run / "checkpoint")["epoch"] == 1
    assert interrupted_writes(run / "checkpoint")
    finetune(tiny_run_config(data, preset, run))
    assert interrupted_writes(run) == []
    assert_same_state_files(tmp_path / "reference", run, ignore_files=("metadata.json",))
    with open(tmp_path / "reference" / "history.csv") as a, open(run / "history.csv") as b:
        expected, actual = a.read().splitlines(), b.read().splitlines()
    assert len(actual) == len(expected) and actual[0] == expected[0]  # every epoch once
    assert_same_numbers([_cells(row) for row in actual[1:]], [_cells(row) for row in expected[1:]],
                        "history.csv")


def _run(data, preset, output_dir, expect=0, **kill_at):
    run_fresh("tests.recipes.tiny_finetune_run", (data, preset, output_dir), expect, **kill_at)


def _cells(row):
    return [[float(v)] if v not in ("", "NA") else v for v in row.split(",")]
