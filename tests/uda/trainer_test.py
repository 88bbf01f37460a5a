import json
import os

import numpy as np
import pytest

from keras_pass import PASSBackbone
from keras_pass.data.synthetic import write_market1501
from keras_pass.uda.trainer import UDAConfig, USLConfig, train_uda, train_usl
from tests.helpers import TINY_BACKBONE


@pytest.fixture(scope="module")
def target(tmp_path_factory):
    root = tmp_path_factory.mktemp("uda")
    data = str(root / "market")
    write_market1501(data, num_train_ids=16, num_test_ids=8, num_cameras=3, cameras_per_id=(2, 3),
                     views_per_camera=(2, 3), num_distractors=4, num_junk=2, image_size=(64, 32))
    preset = str(root / "preset")
    PASSBackbone(**TINY_BACKBONE).save_to_preset(preset)
    return data, preset


def tiny_config(config_class, data, preset, output_dir, **kwargs):
    settings = dict(image_size=(64, 32), iters=2, batch_size=8, num_instances=2, k1=10, k2=3,
                    eps=0.6, min_samples=2, drop_path_rate=0.0, verbose=0)
    return config_class(data_root=data, output_dir=str(output_dir), preset=preset,
                        **{**settings, **kwargs})


@pytest.mark.slow
def test_usl_runs_writes_metrics_and_resumes(target, tmp_path):
    data, preset = target
    history = train_usl(tiny_config(USLConfig, data, preset, tmp_path, epochs=2))
    assert [e["epoch"] for e in history] == [0, 1, 2]
    with open(tmp_path / "metrics.json") as handle:
        saved = json.load(handle)
    assert saved["epochs"] == history and saved["best"]["epoch"] in (1, 2)
    for entry in history[1:]:
        assert entry["clusters"] >= 4 and 0 <= entry["pseudo_label_nmi"] <= 1
        assert np.isfinite(entry["loss"]) and 0 <= entry["mAP"] <= 1
    for name in ("best.weights.h5", "latest.weights.h5", "backbone_preset"):
        assert os.path.exists(tmp_path / name)
    # resume: the two finished epochs are kept, one more is trained
    resumed = train_usl(tiny_config(USLConfig, data, preset, tmp_path, epochs=3))
    assert resumed[:3] == history and resumed[3]["epoch"] == 3


@pytest.mark.slow
def test_uda_uses_fresh_multi_necks(target, tmp_path):
    data, preset = target
    config = tiny_config(UDAConfig, data, preset, tmp_path, epochs=1, feature_fusion="mean")
    assert config.multi_neck
    history = train_uda(config)
    assert history[-1]["epoch"] == 1 and "mAP" in history[-1]


def test_uda_needs_a_source_model(tmp_path):
    with pytest.raises(ValueError, match="source-domain model"):
        train_uda(UDAConfig(data_root=str(tmp_path), output_dir=str(tmp_path)))


def test_too_few_clusters_for_a_batch_is_a_clear_error(target, tmp_path):
    data, preset = target
    config = tiny_config(USLConfig, data, preset, tmp_path, epochs=1, batch_size=128, num_instances=2)
    with pytest.raises(ValueError, match="clusters"):
        train_usl(config)
