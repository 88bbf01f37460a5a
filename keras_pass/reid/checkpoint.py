"""Official fine-tuned `PASS_transreid` checkpoints -> `ReIDModel`.

Keys: `base.<backbone keys>` (mapped by `keras_pass.models.convert`),
`bottleneck` and `bottleneck_1..L` (BatchNorm1d weight, bias, running_mean,
running_var, num_batches_tracked) and `classifier.weight` (ids x feature).
One `bottleneck` of the fused width means a single neck (`multi_neck=False`).
"""

import numpy as np

from keras_pass.models import convert
from keras_pass.reid.model import ReIDModel

BATCHNORM_KEYS = {
    "weight": "gamma",
    "bias": "beta",
    "running_mean": "moving_mean",
    "running_var": "moving_variance",
}


def _assign_batchnorm(layer, state_dict, prefix):
    used = []
    for torch_name, keras_name in BATCHNORM_KEYS.items():
        key = f"{prefix}.{torch_name}"
        variable = getattr(layer, keras_name)
        if key not in state_dict:
            raise convert.CheckpointMismatchError(f"Expected '{key}' in the checkpoint. Received: missing")
        value = np.asarray(state_dict[key], dtype=np.float32)
        if value.shape != tuple(variable.shape):
            raise convert.CheckpointMismatchError(
                f"Expected '{key}' of shape {tuple(variable.shape)}. Received: {value.shape}"
            )
        variable.assign(value)
        used.append(key)
    batches = f"{prefix}.num_batches_tracked"
    return used + ([batches] if batches in state_dict else [])


def load_official_heads(model, state_dict):
    """Assigns BNNeck(s) and classifier from an unwrapped state dict.

    Returns the checkpoint keys that were used.
    """
    if not model.built:
        model.build()
    used = []
    if model.multi_neck:
        used += _assign_batchnorm(model.cls_neck, state_dict, "bottleneck")
        for index, neck in enumerate(model.part_necks, 1):
            used += _assign_batchnorm(neck, state_dict, f"bottleneck_{index}")
    else:
        used += _assign_batchnorm(model.neck, state_dict, "bottleneck")
    weight = state_dict.get("classifier.weight")
    if weight is not None:
        kernel = np.asarray(weight, dtype=np.float32).T
        expected = tuple(model.classifier.kernel.shape)
        if kernel.shape != expected:
            raise convert.CheckpointMismatchError(
                f"Expected classifier.weight of shape {expected[::-1]} (ids, feature). "
                f"Received: {kernel.shape[::-1]}; check feature_fusion"
            )
        model.classifier.kernel.assign(kernel)
        used.append("classifier.weight")
    return used


def from_official_checkpoint(checkpoint, arch=None, image_size=None, stride=16,
                             feature_fusion="cat", test_feature="before", **config_overrides):
    """Builds a `ReIDModel` from an official fine-tuned checkpoint.

    Args:
        checkpoint: a `.pth` path (needs torch) or an already loaded dict.
        arch, image_size, stride, config_overrides: backbone, as
            `keras_pass.models.convert.convert_checkpoint`.
        feature_fusion, test_feature: see `ReIDModel` (official: cat, before).

    Returns:
        `(model, report)`; `report.unused` lists keys that were not used.
    """
    if isinstance(checkpoint, str):
        checkpoint = convert.load_torch_checkpoint(checkpoint)
    state_dict, _ = convert.unwrap_state_dict(checkpoint)
    backbone, report = convert.convert_checkpoint(
        checkpoint, arch=arch, image_size=image_size, stride=stride, **config_overrides
    )
    if convert.checkpoint_kind(state_dict) != "fine-tuned":
        raise convert.CheckpointMismatchError(
            "Expected a fine-tuned checkpoint with 'bottleneck.*' BNNeck keys. Received: "
            "none (a pre-training checkpoint? convert_checkpoint gives its backbone)"
        )
    weight = state_dict.get("classifier.weight")
    num_classes = int(np.shape(weight)[0]) if weight is not None else 1
    model = ReIDModel(
        backbone, num_classes, feature_fusion=feature_fusion,
        multi_neck="bottleneck_1.weight" in state_dict, test_feature=test_feature,
    )
    used = set(load_official_heads(model, state_dict))
    report.unused = [key for key in report.unused if key not in used]
    return model, report
