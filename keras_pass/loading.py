"""The one model loader: a preset (name or folder), an official `.pth` or a
`.keras` file in, a `PASSBackbone` or a model out, for every recipe and
command.

It sits at the top of the library, above `models`, `reid` and `uda` and
below `recipes`, `deploy` and `cli` (which call it): an official fine-tuned
`.pth` becomes a `ReIDModel` (reid), and a `.keras` file may hold a
`ClusterContrastModel` (uda), whose class must be registered before Keras
reads the file.

Each file is read once: a `.pth` is loaded, its kind told from its keys
(`convert.checkpoint_kind`) and converted from the same dict. A file that
is missing, unreadable, truncated or corrupt, or of the wrong kind is one
ValueError line naming it.

Overrides (`image_size`, `stride`, `drop_path_rate`, ...) are applied only
when given (not None): a preset keeps its own patch size, stride and size
otherwise. A changed patch grid resizes `pos_embed` bilinearly, as the
official fine-tuning loader does.
"""

import os
import zipfile

import keras

from keras_pass.models import preset_io
from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.convert import checkpoint_kind, convert_checkpoint, load_torch_checkpoint, unwrap_state_dict
from keras_pass.models.model_files import check_file, file_error
from keras_pass.models.presets import PASS_PRESETS
from keras_pass.reid.checkpoint import from_official_checkpoint
from keras_pass.reid.model import ReIDModel
from keras_pass.uda.model import ClusterContrastModel

KINDS = ("preset", "pth", "keras")
PTH_SUFFIXES = (".pth", ".pt", ".pth.tar")
MODEL_CLASSES = (PASSBackbone, ReIDModel, ClusterContrastModel)
EXPECTED_KERAS = "a .keras file holding a PASSBackbone, ReIDModel or ClusterContrastModel (model.save)"


def source_kind(source):
    """"keras", "pth" or "preset" (a folder or a registered name); a
    ValueError naming `source` when it is none of them."""
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
        raise ValueError("Expected a preset name or folder, an official .pth or a .keras file. "
                         f"Received: source={source!r}")
    source = os.fspath(source)
    if source.endswith(".keras"):
        check_file(source, EXPECTED_KERAS)
        return "keras"
    if source.endswith(PTH_SUFFIXES):
        check_file(source, "an official PyTorch checkpoint (torch.save of a state dict)")
        return "pth"
    if os.path.isfile(source):
        raise file_error(source, "a preset folder or name, an official .pth or a .keras file",
                         "a file of neither kind")
    if not os.path.isdir(source) and source not in PASS_PRESETS and "://" not in source:
        raise file_error(source, f"a preset folder, a named preset {sorted(PASS_PRESETS)}, an official "
                         ".pth or a .keras file", "no such file or folder")
    return "preset"


def _given(**overrides):
    return {k: v for k, v in overrides.items() if v is not None}


def _backbone_overrides(image_size, stride, drop_path_rate, pos_embed_interpolation, dtype):
    return _given(image_shape=None if image_size is None else (*tuple(image_size), 3), stride=stride,
                  drop_path_rate=drop_path_rate, pos_embed_interpolation=pos_embed_interpolation,
                  dtype=dtype)


def reconfigure(backbone, **overrides):
    """`backbone` with config `overrides` (a new grid resizes `pos_embed`);
    the same object when nothing changes."""
    config = backbone.get_config()
    if all(_same(config.get(k), v) for k, v in overrides.items()):
        return backbone
    target = backbone.__class__.from_config({**config, **overrides})
    preset_io.transfer_weights(backbone, target)
    target.image_converter = backbone.image_converter
    return target


def _same(current, value):
    if isinstance(current, (list, tuple)) and isinstance(value, (list, tuple)):
        return list(current) == list(value)
    return current == value


def read_checkpoint(source):
    """`(checkpoint, kind)` of an official `.pth`, read once: kind is
    "fine-tuned" or "pre-trained"; a ValueError naming the file when it
    holds no PASS/ViT backbone."""
    checkpoint = load_torch_checkpoint(os.fspath(source))
    state_dict, _ = unwrap_state_dict(checkpoint)
    kind = checkpoint_kind(state_dict)
    if kind is None:
        raise file_error(source, "an official PASS checkpoint (a state dict with 'pos_embed')",
                         f"wrong kind: keys such as {sorted(state_dict)[:4]}")
    return checkpoint, kind


def _converted_backbone(checkpoint, verbose, **kwargs):
    backbone, report = convert_checkpoint(checkpoint, **kwargs)
    if verbose:
        for line in report.lines():
            print(line)
    return backbone


def load_backbone(source, *, image_size=None, stride=None, drop_path_rate=None,
                  pos_embed_interpolation=None, dtype=None, arch=None, verbose=False):
    """The `PASSBackbone` of `source` (a `.keras` model gives its backbone);
    `arch` names the architecture of a `.pth` (inferred from its shapes
    when None)."""
    overrides = _backbone_overrides(image_size, stride, drop_path_rate, pos_embed_interpolation, dtype)
    kind = source_kind(source)
    if kind == "preset":
        return PASSBackbone.from_preset(source, **overrides)
    if kind == "pth":
        checkpoint, _ = read_checkpoint(source)
        backbone = _converted_backbone(
            checkpoint, verbose, **_given(arch=arch, stride=stride, drop_path_rate=drop_path_rate,
                                                  image_size=None if image_size is None else tuple(image_size),
                                                  dtype=dtype))
        rest = _given(pos_embed_interpolation=pos_embed_interpolation)
        return reconfigure(backbone, **rest) if rest else backbone
    model = _load_keras(source)
    return reconfigure(model if isinstance(model, PASSBackbone) else model.backbone, **overrides)


def _load_keras(source, weights=None):
    """The model of a `.keras` file, or a ValueError naming the file."""
    source = os.fspath(source)
    if not zipfile.is_zipfile(source):
        raise file_error(source, EXPECTED_KERAS, "truncated or corrupt: not a complete zip archive")
    try:
        model = keras.saving.load_model(source)
    except Exception as error:  # zip members, JSON and HDF5 each raise their own errors
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise file_error(source, EXPECTED_KERAS, f"truncated or corrupt: {reason}") from None
    if not isinstance(model, MODEL_CLASSES):
        raise file_error(source, EXPECTED_KERAS, f"wrong kind: a {type(model).__name__}")
    if weights:
        model.load_weights(weights)
    return model


def load_model(source, *, weights=None, test_feature=None, image_size=None, stride=None, arch=None):
    """What feature extraction runs: a `.keras` model as saved (with
    `weights` loaded into it), an official fine-tuned `.pth` as its BNNeck
    `ReIDModel`, a pre-trained `.pth` or a preset as its `PASSBackbone`."""
    kind = source_kind(source)
    if kind == "keras":
        return _load_keras(source, weights)
    if weights:
        raise ValueError(f"Expected `weights` only with a .keras model. Received: weights={weights}, "
                         f"source={source}")
    sizes = _given(arch=arch, stride=stride, image_size=None if image_size is None else tuple(image_size))
    if kind == "preset":
        return load_backbone(source, image_size=image_size, stride=stride)
    checkpoint, kind = read_checkpoint(source)
    if kind == "fine-tuned":
        return from_official_checkpoint(checkpoint, **sizes, **_given(test_feature=test_feature))[0]
    return _converted_backbone(checkpoint, False, **sizes)


def config_source(config):
    """The one of `config.preset` and `config.checkpoint` that is given."""
    preset, checkpoint = getattr(config, "preset", None), getattr(config, "checkpoint", None)
    if (preset is None) == (checkpoint is None):
        raise ValueError("Expected exactly one of `preset` and `checkpoint`. Received: "
                         f"preset={preset}, checkpoint={checkpoint}")
    return preset if preset is not None else checkpoint


def load_training_backbone(config):
    """The backbone a fine-tuning or cluster-contrast config starts from,
    with fine-tuning position semantics; size and stride only when given."""
    return load_backbone(config_source(config), image_size=config.image_size, stride=config.stride,
                         drop_path_rate=config.drop_path_rate, pos_embed_interpolation="resize_only",
                         arch=config.arch if config.checkpoint else None, verbose=config.verbose > 0)
