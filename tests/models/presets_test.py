import json
import os

import keras
import keras_hub
import numpy as np
import pytest

from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.preset_io import list_presets
from keras_pass.models import preset_io
from keras_pass.models.configs import arch_config
from keras_pass.models.pos_embed import bilinear_matrix
from tests.helpers import (
    TINY_BACKBONE,
    other_backend,
    run_python,
    to_numpy,
    tree_to_numpy,
)

IMAGES = np.random.default_rng(3).normal(size=(2, 64, 32, 3)).astype("float32")


@pytest.fixture
def saved(tmp_path):
    backbone = PASSBackbone(**TINY_BACKBONE)
    preset_dir = str(tmp_path / "preset")
    backbone.save_to_preset(preset_dir)
    return backbone, preset_dir


def test_round_trip_keras_hub_format(saved):
    backbone, preset_dir = saved
    assert {"config.json", "metadata.json", "model.weights.h5"} <= set(os.listdir(preset_dir))
    with open(os.path.join(preset_dir, "metadata.json")) as f:
        assert json.load(f)["parameter_count"] == backbone.count_params()
    for loader in (PASSBackbone.from_preset, keras_hub.models.Backbone.from_preset):
        restored = loader(preset_dir)
        assert isinstance(restored, PASSBackbone)
        np.testing.assert_array_equal(
            to_numpy(restored(IMAGES)["tokens"]), to_numpy(backbone(IMAGES)["tokens"])
        )


def test_config_override_pos_embed_interpolation(saved):
    _, preset_dir = saved
    restored = PASSBackbone.from_preset(preset_dir, pos_embed_interpolation="always")
    assert restored.pos_embed_interpolation == "always"
    assert restored.embeddings.pos_embed_interpolation == "always"


@pytest.mark.parametrize("loader", ["pass", "keras_hub"])
def test_grid_changing_override_resizes_pos_embed_bilinearly(saved, loader):
    backbone, preset_dir = saved
    load = PASSBackbone.from_preset if loader == "pass" else keras_hub.models.Backbone.from_preset
    taller = load(preset_dir, image_shape=(96, 32, 3))
    assert taller.grid_shape == (6, 2)
    grid = to_numpy(backbone.embeddings.pos_embed).reshape(4, 2, -1)
    expected = np.einsum("ah,hwd->awd", bilinear_matrix(4, 6), grid)
    expected = np.einsum("bw,awd->abd", bilinear_matrix(2, 2), expected).reshape(12, -1)
    np.testing.assert_allclose(to_numpy(taller.embeddings.pos_embed), expected, atol=1e-6)
    np.testing.assert_array_equal(
        to_numpy(taller.blocks[1].qkv.kernel), to_numpy(backbone.blocks[1].qkv.kernel)
    )


def test_save_is_atomic_when_interrupted(saved, monkeypatch):
    backbone, preset_dir = saved
    before = sorted(os.listdir(preset_dir))

    def crash(self, filepath, *args, **kwargs):
        open(filepath, "w").write("partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(PASSBackbone, "save_weights", crash)
    with pytest.raises(KeyboardInterrupt):
        backbone.save_to_preset(preset_dir)
    assert sorted(os.listdir(preset_dir)) == before
    assert [p for p in os.listdir(os.path.dirname(preset_dir)) if p.startswith(".")] == []
    PASSBackbone.from_preset(preset_dir)


def test_named_preset_missing_explains_conversion(presets_home):
    with pytest.raises(ValueError) as error:
        PASSBackbone.from_preset("pass_vit_small_p16_lup")
    message = str(error.value)
    assert "keras-pass convert" in message and "--arch vit_small" in message
    assert "drive.google.com" in message and str(presets_home) in message


def test_named_preset_loads_from_local_home(presets_home):
    backbone = PASSBackbone(**TINY_BACKBONE)
    backbone.save_to_preset(str(presets_home / "pass_vit_small_p16_lup"))
    assert list_presets()["pass_vit_small_p16_lup"]["available"]
    for loader in (PASSBackbone.from_preset, keras_hub.models.Backbone.from_preset):
        restored = loader("pass_vit_small_p16_lup")
        np.testing.assert_array_equal(
            to_numpy(restored(IMAGES)["cls"]), to_numpy(backbone(IMAGES)["cls"])
        )


def test_named_presets_known_to_keras_hub(presets_home):
    assert set(PASSBackbone.presets) == set(list_presets())
    with pytest.raises(ValueError, match="keras-pass convert"):
        keras_hub.models.Backbone.from_preset("pass_vit_base_p16_lup")


def test_weights_without_saved_grid_must_match(saved, tmp_path):
    """A weights file of another grid and no saved grid cannot be resized
    silently: the error names the variable and the shapes."""
    backbone, _ = saved
    path = str(tmp_path / "old.weights.h5")
    backbone.save_weights(path)
    import h5py

    with h5py.File(path, "a") as f:
        names = []
        f.visit(names.append)
        saved_grids = [name for name in names if name.endswith("/grid_shape")]
        assert len(saved_grids) == 1
        del f[saved_grids[0]]
    taller = PASSBackbone(**{**TINY_BACKBONE, "image_shape": (96, 32, 3)})
    with pytest.raises(ValueError, match="pos_embed"):
        taller.load_weights(path)


@pytest.mark.parametrize("handle", ["pass_vit_giant", "/no/such/dir"])
def test_unknown_preset(handle, presets_home):
    with pytest.raises(ValueError, match="pass_vit_small_p16_lup"):
        PASSBackbone.from_preset(handle)


def test_directory_without_config(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        PASSBackbone.from_preset(str(tmp_path))


def test_registry_lists_official_models(presets_home):
    presets = list_presets()
    assert {"pass_vit_small_p16_lup", "pass_vit_base_p16_lup"} <= set(presets)
    assert sum("market1501" in name for name in presets) == 4
    assert sum("msmt17" in name for name in presets) == 4
    for meta in presets.values():
        assert meta["description"] and meta["official_url"].startswith("https://")
        assert not meta["available"]


@pytest.mark.slow
def test_registry_parameter_counts_match_built_models():
    # The 10 presets are 4 (architecture, image size) pairs: each backbone
    # is built once and its count checked against every preset of the pair.
    counts = {}
    for name, meta in list_presets().items():
        key = (meta["arch"], tuple(meta["image_size"]))
        if key not in counts:
            keras.backend.clear_session()
            counts[key] = PASSBackbone(**arch_config(meta["arch"], image_shape=(*key[1], 3))).count_params()
        assert counts[key] == meta["params"], name
    assert len(counts) == 4


@pytest.mark.slow
def test_preset_saved_under_other_backend_loads_here(tmp_path):
    preset_dir = tmp_path / "preset"
    np.save(tmp_path / "images.npy", IMAGES)
    run_python(
        "import numpy as np; from keras_pass import PASSBackbone;"
        "from keras import ops;"
        f"b = PASSBackbone(**{TINY_BACKBONE!r}); b.save_to_preset({str(preset_dir)!r});"
        f"x = np.load({str(tmp_path / 'images.npy')!r});"
        f"np.save({str(tmp_path / 'cls.npy')!r}, ops.convert_to_numpy(b(x)['cls']))",
        other_backend(),
    )
    restored = PASSBackbone.from_preset(str(preset_dir))
    np.testing.assert_allclose(
        to_numpy(restored(IMAGES)["cls"]), np.load(tmp_path / "cls.npy"), atol=1e-5
    )


def test_resolve_passes_remote_handles_through():
    assert preset_io.resolve_preset("hf://org/model") == "hf://org/model"
    assert tree_to_numpy  # helpers importable


def test_broken_preset_folders_name_their_file(tmp_path):
    """keras-hub's own messages name `model.weights.json` for a missing
    `model.weights.h5` and no file at all for a garbage config.json."""
    preset = tmp_path / "preset"
    PASSBackbone(**TINY_BACKBONE).save_to_preset(str(preset))
    os.remove(preset / "model.weights.h5")
    with pytest.raises(ValueError, match=r"model\.weights\.h5"):
        PASSBackbone.from_preset(str(preset))
    (preset / "config.json").write_text("{garbage")
    with pytest.raises(ValueError, match=r"config\.json"):
        PASSBackbone.from_preset(str(preset))
