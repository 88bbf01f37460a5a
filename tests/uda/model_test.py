import keras
import numpy as np
import tensorflow as tf

from keras_pass.models.backbone import PASSBackbone
from keras_pass.reid.optimizers import ReIDSGD
from keras_pass.uda.model import ClusterContrastModel
from tests.helpers import TINY_BACKBONE, to_numpy
from tests.uda.memory_test import reference_hard_update


def tiny_model(multi_neck=False, capacity=10):
    backbone = PASSBackbone(**TINY_BACKBONE, drop_path_rate=0.0)
    return ClusterContrastModel(backbone, capacity, multi_neck=multi_neck)


def test_inference_feature_is_the_normalised_neck_feature():
    model = tiny_model(multi_neck=True)
    images = np.random.default_rng(0).normal(size=(3, 64, 32, 3)).astype("float32")
    features = to_numpy(model.predict_on_batch(images))
    _, after = model.encoder.features(images)
    after = to_numpy(after)
    np.testing.assert_allclose(features, after / np.linalg.norm(after, axis=1, keepdims=True), atol=1e-5)
    assert features.shape == (3, 64)


def test_train_step_updates_the_memory_by_the_hard_rule():
    model = tiny_model()
    rng = np.random.default_rng(1)
    images = rng.normal(size=(8, 64, 32, 3)).astype("float32")
    labels = np.array([0, 0, 2, 2, 3, 3, 0, 2], "int32")
    centroids = rng.normal(size=(4, 64)).astype("float32")
    model.memory.reset(centroids)
    start = to_numpy(model.memory.centroids)[:4]
    # lr 0: the weights stay, so the step's training-mode features are these
    features = to_numpy(model(images, training=True))
    model.compile(optimizer=ReIDSGD(learning_rate=0.0, weight_decay=0.0))
    data = tf.data.Dataset.from_tensors((images, labels))
    history = model.fit(data, epochs=1, verbose=0, shuffle=False)
    expected = reference_hard_update(start, features, labels, 0.2)
    np.testing.assert_allclose(to_numpy(model.memory.centroids)[:4], expected, atol=1e-5)
    np.testing.assert_array_equal(to_numpy(model.memory.centroids)[1], start[1])  # absent
    assert history.history["loss"][0] > 0


def test_training_lowers_the_memory_loss():
    model = tiny_model()
    rng = np.random.default_rng(2)
    images = rng.normal(size=(16, 64, 32, 3)).astype("float32")
    labels = np.repeat(np.arange(4), 4).astype("int32")
    model.memory.reset(rng.normal(size=(4, 64)))
    model.compile(optimizer=keras.optimizers.Adam(1e-3))
    data = tf.data.Dataset.from_tensors((images, labels)).repeat()
    history = model.fit(data, epochs=2, steps_per_epoch=10, verbose=0, shuffle=False)
    assert history.history["loss"][-1] < history.history["loss"][0]


def test_config_round_trip():
    model = tiny_model(multi_neck=True, capacity=7)
    clone = ClusterContrastModel.from_config(model.get_config())
    assert clone.get_config() == model.get_config()
    assert clone.memory.capacity == 7 and clone.encoder.multi_neck
