import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _seed_and_policy():
    keras.utils.set_random_seed(0)
    yield
    keras.config.set_dtype_policy("float32")


@pytest.fixture
def presets_home(tmp_path, monkeypatch):
    home = tmp_path / "keras_pass_home"
    monkeypatch.setenv("KERAS_PASS_HOME", str(home))
    return home / "presets"
