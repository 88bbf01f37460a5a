import json
import os

import keras
import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.reid.callbacks import ReIDEvaluation
from keras_pass.reid.datasets import market1501
from keras_pass.reid.features import evaluate_model
from keras_pass.reid.model import ReIDModel
from keras_pass.reid.optimizers import make_optimizer
from tests.helpers import TINY_BACKBONE, make_market1501

RNG = np.random.default_rng(0)
IMAGES = RNG.normal(size=(16, 64, 32, 3)).astype("float32")
LABELS = np.repeat([0, 1, 2, 3], 4)


def tiny_model(seed=0):
    keras.utils.set_random_seed(seed)
    model = ReIDModel(PASSBackbone(**TINY_BACKBONE), 4)
    model.compile(optimizer=make_optimizer(steps_per_epoch=2, epochs=4, warmup_epochs=1,
                                           base_lr=0.05))
    return model


@pytest.fixture(scope="module")
def mini_market(tmp_path_factory):
    root = tmp_path_factory.mktemp("market")
    make_market1501(root, size=(64, 32))
    return market1501(str(root))


class TestReIDEvaluation:
    def test_logs_metrics_and_keeps_the_best_weights(self, tmp_path, mini_market):
        model = tiny_model()
        best = str(tmp_path / "out" / "best.weights.h5")
        callback = ReIDEvaluation(mini_market.query, mini_market.gallery, every_n_epochs=2,
                                  best_checkpoint=best, verbose=0)
        history = model.fit(IMAGES, LABELS, batch_size=8, epochs=3, verbose=0, callbacks=[callback])
        logs = history.history
        assert len(logs["mAP"]) == 2  # epochs 2 and 3 (the last)
        final = evaluate_model(model, mini_market.query, mini_market.gallery, verbose=False)
        assert logs["mAP"][-1] == pytest.approx(final["mAP"])
        assert logs["rank1"][-1] == pytest.approx(final["cmc"][0])
        with open(best + ".json") as handle:
            saved = json.load(handle)
        assert saved["mAP"] == pytest.approx(max(logs["mAP"]))
        restored = tiny_model(seed=3)
        restored.optimizer.build(restored.trainable_variables)
        restored.load_weights(best)
        again = evaluate_model(restored, mini_market.query, mini_market.gallery, verbose=False)
        assert again["mAP"] == pytest.approx(saved["mAP"])
        assert sorted(os.listdir(tmp_path / "out")) == ["best.weights.h5", "best.weights.h5.json"]

    def test_best_so_far_is_read_back_on_resume(self, tmp_path, mini_market):
        best = str(tmp_path / "best.weights.h5")
        with open(best + ".json", "w") as handle:
            json.dump({"mAP": 2.0, "epoch": 7}, handle)  # unbeatable
        callback = ReIDEvaluation(mini_market.query, mini_market.gallery, best_checkpoint=best,
                                  verbose=0)
        tiny_model().fit(IMAGES, LABELS, batch_size=8, epochs=1, verbose=0, callbacks=[callback])
        assert not os.path.exists(best)
        assert callback.best["epoch"] == 7
