import numpy as np
import pytest
import tensorflow as tf
from PIL import Image

from keras_pass.deploy.embedder import Embedder
from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.image_converter import PASSImageConverter
from keras_pass.reid.model import ReIDModel
from tests.helpers import TINY_BACKBONE, to_numpy


@pytest.fixture(scope="module")
def pngs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("pngs")
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, size=(64 + 8 * i, 32 + 4 * i, 3)).astype("uint8") for i in range(5)]
    paths = []
    for i, image in enumerate(images):
        paths.append(str(folder / f"{i:02d}.png"))
        Image.fromarray(image).save(paths[-1])
    return folder, paths, images


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    backbone = PASSBackbone(**TINY_BACKBONE)
    path = str(tmp_path_factory.mktemp("preset") / "preset")
    backbone.save_to_preset(path, image_converter=PASSImageConverter.for_backbone(backbone, "half"))
    return backbone, path


def test_every_input_kind_gives_the_same_features(pngs, preset):
    folder, paths, images = pngs
    backbone, preset_dir = preset
    embedder = Embedder.from_preset(preset_dir, batch_size=2)
    assert embedder.image_converter.mean == (0.5, 0.5, 0.5)  # the preset's own statistics
    from_paths = embedder(paths)
    assert from_paths.shape == (5, 64) and from_paths.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(from_paths, axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(embedder(str(folder)), from_paths, atol=1e-6)
    np.testing.assert_allclose(embedder(images), from_paths, atol=1e-5)  # arrays of different sizes
    np.testing.assert_allclose(embedder(images[0]), from_paths[:1], atol=1e-5)
    dataset = tf.data.Dataset.from_generator(lambda: iter(images), output_signature=tf.TensorSpec((None, None, 3), tf.uint8))
    np.testing.assert_allclose(embedder(dataset), from_paths, atol=1e-5)
    # By hand: antialiased resize, (x / 255 - 0.5) / 0.5, concat(CLS, mean PART), L2.
    x = np.stack([to_numpy(tf.image.resize(image.astype("float32"), (64, 32), antialias=True)) for image in images])
    expected = to_numpy(backbone.reid_features((x / 255.0 - 0.5) / 0.5))
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(from_paths, expected, atol=1e-5)


def test_fine_tuned_model_and_progress_bar(pngs, capsys):
    _, paths, images = pngs
    model = ReIDModel(PASSBackbone(**TINY_BACKBONE), num_classes=3)
    embedder = Embedder.from_model(model)
    assert embedder.image_converter.std == (0.5, 0.5, 0.5)
    features = embedder(np.stack([images[0]] * 3), verbose=True)
    assert "images" in capsys.readouterr().out
    np.testing.assert_allclose(features[0], features[2], atol=1e-6)


@pytest.mark.parametrize("bad", [np.zeros((4, 4)), [np.zeros((8, 8, 4))], np.zeros((1, 2, 3, 4, 5))])
def test_bad_images(bad, preset):
    with pytest.raises(ValueError, match="Expected"):
        Embedder(preset[0])(bad)


def test_bad_batch_size(preset):
    with pytest.raises(ValueError, match="batch_size=0"):
        Embedder(preset[0], batch_size=0)
