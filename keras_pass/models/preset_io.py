"""Preset handles: named presets, grid-changing loads, atomic saves."""

import json
import os

import h5py
from keras import ops
from keras_hub.src.utils.preset_utils import CONFIG_FILE, MODEL_WEIGHTS_FILE, register_presets

from keras_pass import io
from keras_pass.models.model_files import check_file, file_error
from keras_pass.models.pos_embed import resample_pos_embed
from keras_pass.models.presets import PASS_PRESETS

def presets_home():
    home = os.environ.get("KERAS_PASS_HOME", os.path.join("~", ".keras", "keras_pass"))
    return os.path.join(os.path.expanduser(home), "presets")


def list_presets():
    """Named presets: `{name: metadata}` with `local_dir` and `available`."""
    return {
        name: {
            **meta,
            "local_dir": os.path.join(presets_home(), name),
            "available": os.path.isfile(os.path.join(presets_home(), name, CONFIG_FILE)),
        }
        for name, meta in PASS_PRESETS.items()
    }


def conversion_hint(name):
    meta = PASS_PRESETS[name]
    height, width = meta["image_size"]
    target = os.path.join(presets_home(), name)
    return (
        f"Preset '{name}' ({meta['description']}) is not available locally and "
        "keras-pass downloads nothing. Download the official PyTorch checkpoint "
        f"from {meta['official_url']} , then convert it once:\n"
        f"  keras-pass convert CHECKPOINT.pth {target} "
        f"--arch {meta['arch']} --image_size {height},{width} --stride {meta['stride']}\n"
        "(set KERAS_PASS_HOME to keep presets elsewhere)."
    )


class _LocalPreset(dict):
    """keras-hub's registry entry of a named preset. Its `kaggle_handle` is
    looked up at load time: the local converted folder (so KERAS_PASS_HOME is
    honoured), or a ValueError saying how to convert the official checkpoint."""

    def __init__(self, name):
        meta = PASS_PRESETS[name]
        super().__init__(metadata={"description": meta["description"], "params": meta["params"],
                                   "path": "pass", "official_url": meta["official_url"]})
        self.name = name

    def __missing__(self, key):
        if key != "kaggle_handle":
            raise KeyError(key)
        return resolve_preset(self.name)


def register_named_presets(backbone_cls):
    """Makes `keras_hub.models.Backbone.from_preset(name)` and
    `backbone_cls.presets` know the named presets."""
    register_presets({name: _LocalPreset(name) for name in PASS_PRESETS}, backbone_cls)


def resolve_preset(preset):
    """Maps a handle to something `keras_hub` can load, or explains why not."""
    if not isinstance(preset, (str, os.PathLike)):
        raise ValueError(f"Expected a preset name or directory. Received: preset={preset!r}")
    preset = os.fspath(preset)
    if "://" in preset:
        return preset  # kaggle://, hf://, gs:// handles go to keras_hub as is.
    if preset in PASS_PRESETS:
        local = os.path.join(presets_home(), preset)
        if os.path.isfile(os.path.join(local, CONFIG_FILE)):
            return check_preset_dir(local)
        raise ValueError(conversion_hint(preset))
    if os.path.isdir(preset):
        return check_preset_dir(preset)
    raise ValueError(
        "Expected an existing preset directory or one of the named presets "
        f"{sorted(PASS_PRESETS)}. Received: preset={preset}"
    )


def check_preset_dir(preset):
    """`preset` when it holds a parseable config and a complete weights file:
    a ValueError naming the file otherwise (keras-hub's own message for a
    missing weights file names the sharded `model.weights.json`)."""
    config_file = os.path.join(preset, CONFIG_FILE)
    if not os.path.isfile(config_file):
        raise ValueError(f"Expected a preset directory with {CONFIG_FILE} (written by "
                         f"`save_to_preset` or the converter). Received: preset={preset}")
    expected = "a preset's config (JSON written by `save_to_preset`)"
    check_file(config_file, expected)
    try:
        with open(config_file, encoding="utf-8") as handle:
            json.load(handle)
    except (ValueError, UnicodeDecodeError) as error:
        raise file_error(config_file, expected, f"truncated or corrupt: {error}") from None
    weights_file = os.path.join(preset, MODEL_WEIGHTS_FILE)
    expected = "a preset's weights (HDF5 written by `save_to_preset`)"
    check_file(weights_file, expected)
    try:
        with h5py.File(weights_file, "r"):
            pass
    except OSError as error:
        reason = str(error).split("(", 1)[-1].rstrip(")") if "(" in str(error) else str(error)
        raise file_error(weights_file, expected, f"truncated or corrupt: {reason}") from None
    return preset


def transfer_weights(source, target):
    """Copies weights between backbones, resizing `pos_embed` bilinearly.

    Bilinear, as the official fine-tuning loader resizes the grid once.
    """
    target_variables = {v.path: v for v in target.weights}
    for variable in source.weights:
        value = variable.value
        if variable.path.endswith("embeddings/pos_embed"):
            value = resample_pos_embed(
                value, source.grid_shape, target.grid_shape, "bilinear"
            )
        destination = target_variables.get(variable.path)
        if destination is None or tuple(destination.shape) != tuple(value.shape):
            raise ValueError(
                f"Expected weight '{variable.path}' of shape {tuple(value.shape)} "
                "to fit the new config; only the patch grid may change. "
                f"Received: {None if destination is None else tuple(destination.shape)}"
            )
        destination.assign(ops.cast(value, destination.dtype))


def save_preset_atomically(save, preset_dir, *args):
    """Runs `save(tmp_dir, *args)`, then swaps `tmp_dir` into `preset_dir`.

    An interrupted save leaves the previous preset untouched.
    """
    with io.atomic_directory(preset_dir) as staging:
        save(staging, *args)
