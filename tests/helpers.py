"""Shared test helpers: one check of shape, config round trip and saving."""

import os
import subprocess
import sys

import keras
import numpy as np

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY_BACKBONE = dict(
    image_shape=(64, 32, 3), hidden_dim=32, num_layers=2, num_heads=2, mlp_dim=64
)


def to_numpy(x):
    return keras.ops.convert_to_numpy(x)


def tree_to_numpy(outputs):
    return {k: to_numpy(v) for k, v in outputs.items()}


def run_model_test(cls, init_kwargs, input_data, expected_output_shape, tmp_path):
    """Builds `cls(**init_kwargs)`, checks output shapes, that
    `from_config(get_config())` rebuilds an identical model, and that a
    `.keras` save/load round trip gives identical outputs."""
    model = cls(**init_kwargs)
    outputs = model(input_data)
    shapes = keras.tree.map_structure(lambda x: tuple(x.shape), outputs)
    assert shapes == expected_output_shape

    config = model.get_config()
    clone = cls.from_config(config)
    assert clone.get_config() == config
    clone.set_weights(model.get_weights())
    _assert_trees_close(clone(input_data), outputs)

    path = os.path.join(str(tmp_path), "model.keras")
    model.save(path)
    restored = keras.saving.load_model(path)
    assert isinstance(restored, cls)
    _assert_trees_close(restored(input_data), outputs)
    return model


def _assert_trees_close(actual, expected, atol=1e-6):
    keras.tree.map_structure(
        lambda a, e: np.testing.assert_allclose(to_numpy(a), to_numpy(e), atol=atol),
        actual,
        expected,
    )


def run_python(code, backend, cwd=REPO_ROOT, timeout=600):
    """Runs `code` in a fresh interpreter under `backend`; returns stdout."""
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True,
        text=True, timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return result.stdout


def other_backend():
    return "tensorflow" if keras.config.backend() == "jax" else "jax"


TINY_HEAD = dict(out_dim=64, head_hidden_dim=32, bottleneck_dim=16)


def tiny_pretrainer(**kwargs):
    from keras_pass import PASSBackbone
    from keras_pass.pretraining import PASSPretrainer

    backbone = PASSBackbone(
        **TINY_BACKBONE, drop_path_rate=kwargs.pop("drop_path_rate", 0.0),
        pos_embed_interpolation="always", dtype=kwargs.pop("dtype", None),
    )
    return PASSPretrainer(backbone, **{**TINY_HEAD, **kwargs})


def tiny_crops(batch=4, seed=0, num_parts=3, crops_per_part=2):
    rng = np.random.default_rng(seed)
    return {
        "global_crops": rng.normal(size=(batch, 2, 64, 32, 3)).astype("float32"),
        "local_crops": rng.normal(size=(batch, num_parts, crops_per_part, 32, 16, 3)).astype("float32"),
    }


def repeated_dataset(data, batch_size):
    import tensorflow as tf

    return tf.data.Dataset.from_tensor_slices(data).batch(batch_size).repeat()
