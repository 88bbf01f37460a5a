"""`import keras_pass` alone registers every serialisable class."""

import keras

from keras_pass.models.backbone import PASSBackbone
from keras_pass.reid.model import ReIDModel
from tests.helpers import TINY_BACKBONE, run_python


def test_saved_models_load_after_a_bare_import(tmp_path):
    backbone = PASSBackbone(**TINY_BACKBONE)
    backbone.save_to_preset(str(tmp_path / "preset"))
    ReIDModel(backbone, num_classes=5).save(str(tmp_path / "reid.keras"))
    # A fresh interpreter that imports nothing but keras_pass, keras, keras_hub.
    out = run_python(
        "import keras_pass, keras, keras_hub;"
        f"m = keras.saving.load_model({str(tmp_path / 'reid.keras')!r});"
        f"b = keras_hub.models.Backbone.from_preset({str(tmp_path / 'preset')!r});"
        "print(type(m).__name__, type(b).__name__)",
        keras.config.backend(),
    )
    assert "ReIDModel PASSBackbone" in out
