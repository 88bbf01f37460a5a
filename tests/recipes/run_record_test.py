"""run.json: every recipe records backend, processes, devices, batch, seed,
precision and versions in its output folder."""

import json
import os

import keras
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.data.synthetic import write_unlabeled
from keras_pass.recipes import cluster_contrast, demo, finetune
from keras_pass.recipes.pretrain import PretrainConfig, pretrain
from keras_pass.pretraining.shards import write_shards
from keras_pass.runs import write_run_record
from tests.helpers import TINY_BACKBONE, make_market1501

TINY = {k: v for k, v in TINY_BACKBONE.items() if k != "image_shape"}
FIELDS = ("backend", "num_processes", "num_devices", "global_batch_size", "seed", "precision", "versions")


def _read(folder):
    with open(os.path.join(folder, "run.json")) as handle:
        return json.load(handle)


def test_pretrain_writes_run_json_and_keeps_earlier_runs(tmp_path):
    """(On a TFRecord shard folder: the recipe reads `keras-pass shard` output.)"""
    images, data = str(tmp_path / "lup"), str(tmp_path / "shards")
    write_unlabeled(images, num_identities=4, views=(1, 1), image_size=(64, 32), seed=5)
    write_shards(images, data, 3, verbose=False)
    config = PretrainConfig(
        data=data, output_dir=str(tmp_path / "run"), arch="vit_tiny", backbone_overrides=TINY,
        image_size=(64, 32), local_size=(32, 16), local_crops_per_part=1, epochs=1, batch_size=2,
        steps_per_epoch=1, warmup_epochs=0, out_dim=16, head_hidden_dim=16, bottleneck_dim=8,
        verbose=0, seed=7, dtype="mixed_bfloat16",
    )
    pretrain(config)
    record = _read(config.output_dir)
    assert all(field in record for field in FIELDS)
    assert record["recipe"] == "pretrain"
    assert record["backend"] == keras.config.backend()
    assert (record["num_processes"], record["num_devices"]) == (1, 1)
    assert (record["global_batch_size"], record["seed"]) == (2, 7)
    assert record["precision"] == "mixed_bfloat16"
    assert record["versions"]["keras"] == keras.__version__
    import tensorflow as tf

    assert record["versions"]["tensorflow"] == tf.__version__
    assert "earlier_runs" not in record
    write_run_record(config.output_dir, config, "pretrain")  # as a resumed run: the first kept
    record = _read(config.output_dir)
    assert len(record["earlier_runs"]) == 1 and record["earlier_runs"][0]["seed"] == 7


class _Stop(Exception):
    pass


def _stop(*args, **kwargs):
    raise _Stop


@pytest.fixture
def market_and_preset(tmp_path):
    make_market1501(tmp_path)
    preset = str(tmp_path / "preset")
    PASSBackbone(**TINY_BACKBONE).save_to_preset(preset)
    return str(tmp_path), preset


def test_finetune_and_usl_write_run_json_once_the_model_is_built(market_and_preset, tmp_path, monkeypatch):
    """Each recipe records its run before training: stopped right after
    (in folders that existed before, which a failed run keeps)."""
    data, preset = market_and_preset
    for name in ("ft", "usl", "uda"):
        os.makedirs(tmp_path / name)
    monkeypatch.setattr(finetune, "make_train_dataset", _stop)
    with pytest.raises(_Stop):
        finetune.finetune(finetune.FinetuneConfig(data_root=data, output_dir=str(tmp_path / "ft"),
                                                  preset=preset, batch_size=8, seed=3, verbose=0))
    record = _read(tmp_path / "ft")
    assert (record["recipe"], record["global_batch_size"], record["seed"]) == ("finetune", 8, 3)
    assert record["precision"] == keras.config.dtype_policy().name
    monkeypatch.setattr(cluster_contrast, "_resume", _stop)
    for cls, name in ((cluster_contrast.USLConfig, "usl"), (cluster_contrast.UDAConfig, "uda")):
        with pytest.raises(_Stop):
            cluster_contrast.train_uda(cls(data_root=data, output_dir=str(tmp_path / name), preset=preset,
                                           batch_size=16, seed=4, verbose=0))
        record = _read(tmp_path / name)
        assert (record["recipe"], record["global_batch_size"], record["seed"]) == (name, 16, 4)


def test_demo_records_both_stage_batches(tmp_path):
    record = demo._record_run(str(tmp_path), demo.DEMO_CONFIGS["quick"], seed=2)
    assert _read(tmp_path) == record
    assert record["global_batch_size"] == {"pretrain": 32, "finetune": 32} and record["seed"] == 2


def test_only_the_writer_process_writes(tmp_path, monkeypatch):
    from keras_pass.backend import processes

    monkeypatch.setattr(processes, "process_index", lambda: 1)
    write_run_record(str(tmp_path), {"batch_size": 4, "seed": 0}, "test")
    assert os.listdir(tmp_path) == []  # not even a temporary left behind
    monkeypatch.setattr(processes, "process_index", lambda: 0)
    write_run_record(str(tmp_path), {"batch_size": 4, "seed": 0}, "test")
    assert os.listdir(tmp_path) == ["run.json"]
