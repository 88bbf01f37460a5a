"""The one model loader: a preset (name or folder), an official `.pth` or a
`.keras` file, for every recipe and command.

Overrides (`image_size`, `stride`, `drop_path_rate`, ...) are applied only
when given (not None): a preset keeps its own patch size, stride and size
otherwise. A changed patch grid resizes `pos_embed` bilinearly, as the
official fine-tuning loader does.
"""

import os

KINDS = ("preset", "pth", "keras")


def source_kind(source):
    """"keras", "pth" or "preset" (a folder or a registered name)."""
    if not isinstance(source, (str, os.PathLike)) or not os.fspath(source):
        raise ValueError("Expected a preset name or folder, an official .pth or a .keras file. "
                         f"Received: source={source!r}")
    source = os.fspath(source)
    if source.endswith(".keras"):
        kind = "keras"
    elif source.endswith((".pth", ".pt", ".pth.tar")):
        kind = "pth"
    else:
        return "preset"
    if not os.path.isfile(source):
        raise ValueError(f"Expected an existing {kind} file. Received: source={source} (no such file)")
    return kind


def _given(**overrides):
    return {k: v for k, v in overrides.items() if v is not None}


def _backbone_overrides(image_size, stride, drop_path_rate, pos_embed_interpolation, dtype):
    return _given(image_shape=None if image_size is None else (*tuple(image_size), 3), stride=stride,
                  drop_path_rate=drop_path_rate, pos_embed_interpolation=pos_embed_interpolation,
                  dtype=dtype)


def reconfigure(backbone, **overrides):
    """`backbone` with config `overrides` (a new grid resizes `pos_embed`);
    the same object when nothing changes."""
    from keras_pass.models import preset_io

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


def load_backbone(source, *, image_size=None, stride=None, drop_path_rate=None,
                  pos_embed_interpolation=None, dtype=None, arch=None, verbose=False):
    """The `PASSBackbone` of `source` (a `.keras` `ReIDModel` gives its
    backbone); `arch` names the architecture of a `.pth` (inferred from its
    shapes when None)."""
    from keras_pass.models.backbone import PASSBackbone

    overrides = _backbone_overrides(image_size, stride, drop_path_rate, pos_embed_interpolation, dtype)
    kind = source_kind(source)
    if kind == "preset":
        return PASSBackbone.from_preset(source, **overrides)
    if kind == "pth":
        from keras_pass.models.convert import convert_checkpoint

        backbone, report = convert_checkpoint(
            os.fspath(source), **_given(arch=arch, image_size=None if image_size is None else tuple(image_size),
                                        stride=stride, drop_path_rate=drop_path_rate, dtype=dtype))
        if verbose:
            for line in report.lines():
                print(line)
        rest = _given(pos_embed_interpolation=pos_embed_interpolation)
        return reconfigure(backbone, **rest) if rest else backbone
    model = _load_keras(source)
    backbone = model if isinstance(model, PASSBackbone) else getattr(model, "backbone", None)
    if not isinstance(backbone, PASSBackbone):
        raise ValueError("Expected a .keras file holding a PASSBackbone or a ReIDModel. "
                         f"Received: source={source} ({type(model).__name__})")
    return reconfigure(backbone, **overrides)


def _load_keras(source, weights=None):
    import keras

    model = keras.saving.load_model(os.fspath(source))
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
    if kind == "pth":
        from keras_pass.models.convert import load_torch_checkpoint, unwrap_state_dict
        from keras_pass.reid.checkpoint import from_official_checkpoint

        checkpoint = load_torch_checkpoint(os.fspath(source))
        if "bottleneck.weight" in unwrap_state_dict(checkpoint)[0]:
            kwargs = _given(arch=arch, stride=stride, image_size=None if image_size is None else tuple(image_size),
                            test_feature=test_feature)
            return from_official_checkpoint(checkpoint, **kwargs)[0]
    return load_backbone(source, image_size=image_size, stride=stride, arch=arch)


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
