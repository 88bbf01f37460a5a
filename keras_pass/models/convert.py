"""Official PyTorch PASS checkpoints -> keras-pass weights, as pure functions.

Handles the pre-training release (`{'teacher': {'module.backbone.*', ...}}`,
DINO style), plain state dicts and the fine-tuned TransReID checkpoints
(`base.*`, `bottleneck*`, `classifier.*`). Only backbone keys are mapped;
heads, necks and classifiers are reported as unused.
"""

import argparse
import dataclasses
import re

import numpy as np
from keras import ops

from keras_pass.models.backbone import PASSBackbone
from keras_pass.models.configs import ARCHITECTURES, arch_config
from keras_pass.models.image_converter import PASSImageConverter
from keras_pass.models.model_files import check_file, file_error
from keras_pass.models.pos_embed import resample_pos_embed

WRAPPER_KEYS = ("teacher", "model", "state_dict", "student")
PREFIXES = ("module.", "backbone.", "base.")

_TOP_LEVEL = {
    "patch_embed.proj.weight": "patch_embedding/projection/kernel",
    "patch_embed.proj.bias": "patch_embedding/projection/bias",
    "cls_token": "embeddings/cls_token",
    "cls_pos": "embeddings/cls_pos",
    "pos_embed": "embeddings/pos_embed",
    "norm.weight": "final_norm/gamma",
    "norm.bias": "final_norm/beta",
}
_IN_BLOCK = {
    "norm1.weight": "norm1/gamma",
    "norm1.bias": "norm1/beta",
    "attn.qkv.weight": "qkv/kernel",
    "attn.qkv.bias": "qkv/bias",
    "attn.proj.weight": "proj/kernel",
    "attn.proj.bias": "proj/bias",
    "norm2.weight": "norm2/gamma",
    "norm2.bias": "norm2/beta",
    "mlp.fc1.weight": "fc1/kernel",
    "mlp.fc1.bias": "fc1/bias",
    "mlp.fc2.weight": "fc2/kernel",
    "mlp.fc2.bias": "fc2/bias",
}
_PART = re.compile(r"^part_token(\d+)$|^part(\d+)_pos$")
_BLOCK = re.compile(r"^blocks\.(\d+)\.(.+)$")


class CheckpointMismatchError(ValueError):
    """The checkpoint does not fit the requested architecture."""


@dataclasses.dataclass
class ConversionReport:
    wrappers: list
    converted: int = 0
    unused: list = dataclasses.field(default_factory=list)
    missing: list = dataclasses.field(default_factory=list)
    resized: tuple = None

    def lines(self):
        yield f"unwrapped: {' -> '.join(self.wrappers) or '(plain state dict)'}"
        yield f"converted tensors: {self.converted}"
        if self.resized:
            yield f"pos_embed grid resized (bilinear): {self.resized[0]} -> {self.resized[1]}"
        yield f"unused checkpoint keys ({len(self.unused)}): {', '.join(self.unused) or '-'}"
        yield f"missing backbone weights ({len(self.missing)}): {', '.join(self.missing) or '-'}"


def unwrap_state_dict(checkpoint):
    """Descends into 'teacher'/'model'/'state_dict'/'student' wrappers and
    strips 'module.', 'backbone.' and 'base.' prefixes. Returns (dict, path)."""
    wrappers = []
    while isinstance(checkpoint, dict):
        key = next((k for k in WRAPPER_KEYS if isinstance(checkpoint.get(k), dict)), None)
        if key is None:
            break
        wrappers.append(key)
        checkpoint = checkpoint[key]
    if not isinstance(checkpoint, dict):
        raise CheckpointMismatchError(
            f"Expected a state dict (a dict of tensors). Received: {type(checkpoint).__name__}"
        )
    state_dict = {}
    for key, value in checkpoint.items():
        while key.startswith(PREFIXES):
            key = key.split(".", 1)[1]
        state_dict[key] = value
    return state_dict, wrappers


def checkpoint_kind(state_dict):
    """"fine-tuned" (a TransReID checkpoint: backbone and BNNeck), "pre-trained"
    (a backbone alone) or None (no PASS/ViT backbone) of an unwrapped state dict."""
    if "pos_embed" not in state_dict:
        return None
    return "fine-tuned" if "bottleneck.weight" in state_dict else "pre-trained"


def _to_keras_array(torch_key, value):
    value = np.asarray(value, dtype=np.float32)
    if torch_key.endswith("proj.weight") and value.ndim == 4:
        return value.transpose(2, 3, 1, 0)  # (out, in, kh, kw) -> (kh, kw, in, out)
    if value.ndim == 2 and torch_key.endswith("weight"):
        return value.T  # Linear (out, in) -> Dense kernel (in, out)
    if value.ndim == 3:
        return value.reshape(value.shape[1:])  # (1, n, D) tokens -> (n, D)
    return value


def checkpoint_filter_fn(state_dict):
    """Maps official backbone keys to keras-pass weight paths.

    Returns `(weights, unused)`: `{path: float32 array}` and the list of
    checkpoint keys that are not backbone weights (heads, necks, ...).
    """
    weights, parts, unused = {}, {}, []
    for key, value in state_dict.items():
        part, block = _PART.match(key), _BLOCK.match(key)
        if key in _TOP_LEVEL:
            weights[_TOP_LEVEL[key]] = _to_keras_array(key, value)
        elif part:
            kind = "part_tokens" if part.group(1) else "part_pos"
            index = int(part.group(1) or part.group(2))
            parts.setdefault(kind, {})[index] = _to_keras_array(key, value)
        elif block and block.group(2) in _IN_BLOCK:
            path = f"block_{block.group(1)}/{_IN_BLOCK[block.group(2)]}"
            weights[path] = _to_keras_array(key, value)
        else:
            unused.append(key)
    for kind, rows in parts.items():
        if sorted(rows) != list(range(1, len(rows) + 1)):
            raise CheckpointMismatchError(
                f"Expected {kind} numbered 1..L. Received indices {sorted(rows)}"
            )
        weights[f"embeddings/{kind}"] = np.concatenate([rows[i] for i in sorted(rows)])
    return weights, sorted(unused)


def infer_arch(weights):
    """The named architecture whose width and depth the backbone weights
    have (width from `pos_embed`, depth from the block indices)."""
    width = int(weights["embeddings/pos_embed"].shape[-1])
    depth = 1 + max((int(k.split("/")[0][len("block_"):]) for k in weights if k.startswith("block_")), default=-1)
    for name, sizes in ARCHITECTURES.items():
        if sizes["hidden_dim"] == width and sizes["num_layers"] == depth:
            return name
    raise CheckpointMismatchError(
        f"Expected the weights of a known architecture {sorted(ARCHITECTURES)}. Received: width {width}, "
        f"{depth} blocks; pass `arch` with matching `hidden_dim`/`num_layers` overrides")


def infer_num_parts(weights):
    tokens = weights.get("embeddings/part_tokens")
    return 3 if tokens is None else int(tokens.shape[0])


def _person_grid(num_positions, aspect=2):
    width = int(round((num_positions / aspect) ** 0.5))
    if aspect * width * width != num_positions:
        return None
    return (aspect * width, width)


def infer_source_grid(num_positions, target_grid):
    """The checkpoint's patch grid: the target one if sizes agree, else the
    person-shaped grid with height = 2 x width (128 positions -> 16x8)."""
    if num_positions == target_grid[0] * target_grid[1]:
        return tuple(target_grid)
    grid = _person_grid(num_positions)
    if grid is None:
        raise CheckpointMismatchError(
            f"Cannot infer the patch grid of a pos_embed with {num_positions} "
            f"positions. Expected {target_grid[0] * target_grid[1]} (the target "
            f"grid {tuple(target_grid)}) or a 2:1 grid; pass source_grid."
        )
    return grid


def infer_image_size(num_positions, patch_size=16):
    """Native image size of a checkpoint, assuming stride == patch size (as
    in every released model) and a 2:1 grid; ask for it otherwise."""
    grid = _person_grid(num_positions)
    if grid is None:
        raise CheckpointMismatchError(
            f"Cannot infer the image size of a pos_embed with {num_positions} "
            "positions. Expected a 2:1 patch grid; pass image_size (--image_size H,W)."
        )
    return tuple(g * patch_size for g in grid)


def assign_weights(backbone, weights, allow_missing=False, source_grid=None):
    """Assigns mapped weights to a backbone; returns (missing, resized)."""
    weights = dict(weights)
    resized = None
    pos_embed = weights.get("embeddings/pos_embed")
    target_grid = tuple(backbone.grid_shape)
    if pos_embed is not None and pos_embed.shape[0] != target_grid[0] * target_grid[1]:
        grid = tuple(source_grid or infer_source_grid(pos_embed.shape[0], target_grid))
        resampled = resample_pos_embed(pos_embed, grid, target_grid, "bilinear")
        weights["embeddings/pos_embed"] = ops.convert_to_numpy(resampled)
        resized = (grid, target_grid)
    variables = {v.path: v for v in backbone.weights}
    mismatched = [
        f"{path}: checkpoint {value.shape} vs model {tuple(variables[path].shape)}"
        for path, value in weights.items()
        if path in variables and tuple(value.shape) != tuple(variables[path].shape)
    ]
    extra = sorted(set(weights) - set(variables))
    missing = sorted(set(variables) - set(weights))
    if mismatched or extra:
        raise CheckpointMismatchError(
            "Expected checkpoint tensors to fit the architecture. Shape "
            f"mismatches: {mismatched or '-'}; weights the model does not have "
            f"(deeper checkpoint?): {extra or '-'}"
        )
    if missing and not allow_missing:
        raise CheckpointMismatchError(
            f"Expected every backbone weight in the checkpoint. Missing: {missing}"
        )
    for path, value in weights.items():
        variables[path].assign(value)
    return missing, resized


def load_torch_checkpoint(path):
    """Reads a `.pth` with torch (the optional `convert` extra): its dict of
    numpy arrays, or a ValueError naming the file (missing, unreadable,
    truncated or corrupt, not a dict)."""
    try:
        import torch
    except ImportError as error:
        raise ImportError(
            "Reading official .pth checkpoints needs PyTorch: "
            "pip install 'keras-pass[convert]'"
        ) from error
    expected = "an official PyTorch checkpoint (torch.save of a state dict)"
    check_file(path, expected)
    # Pre-training checkpoints carry the argparse Namespace of their run.
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises EOFError, RuntimeError, UnpicklingError...
        reason = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise file_error(path, expected, f"truncated or corrupt: {reason}") from None
    if not isinstance(checkpoint, dict):
        raise file_error(path, expected, f"wrong kind: a {type(checkpoint).__name__}")
    return _tensors_to_numpy(checkpoint)


def check_finite_weights(weights):
    """CheckpointMismatchError naming the first tensor with NaN or inf values."""
    for name, value in weights.items():
        value = np.asarray(value)
        if np.issubdtype(value.dtype, np.floating) and not np.all(np.isfinite(value)):
            bad = int(np.size(value) - np.count_nonzero(np.isfinite(value)))
            raise CheckpointMismatchError(
                f"Expected finite checkpoint weights. Received: tensor '{name}' with {bad} "
                f"NaN/inf values of {np.size(value)}")


def _tensors_to_numpy(obj):
    if isinstance(obj, dict):
        return {k: _tensors_to_numpy(v) for k, v in obj.items()}
    if hasattr(obj, "detach"):
        return obj.detach().cpu().float().numpy()
    return obj


def convert_checkpoint(
    checkpoint,
    output_dir=None,
    arch=None,
    image_size=None,
    stride=16,
    source_grid=None,
    allow_missing=False,
    **config_overrides,
):
    """Converts an official checkpoint (path or loaded dict) into a backbone.

    Writes a preset to `output_dir` when given. Returns (backbone, report).
    The backbone's preprocessing is the statistics of the recipe the weights
    came from: 0.5/0.5 for a fine-tuned checkpoint (it has a BNNeck), ImageNet
    for a pre-trained one.
    """
    if isinstance(checkpoint, str):
        checkpoint = load_torch_checkpoint(checkpoint)
    state_dict, wrappers = unwrap_state_dict(checkpoint)
    weights, unused = checkpoint_filter_fn(state_dict)
    check_finite_weights(weights)
    if "embeddings/pos_embed" not in weights:
        raise CheckpointMismatchError(
            "Expected a PASS/ViT backbone state dict with a 'pos_embed' key. "
            f"Received keys such as: {sorted(state_dict)[:8]}"
        )
    arch = arch or infer_arch(weights)  # None: the architecture the weights have
    patch_size = config_overrides.get("patch_size", 16)
    if image_size is None:
        num_positions = weights["embeddings/pos_embed"].shape[0]
        image_size = infer_image_size(num_positions, patch_size)
    config = arch_config(
        arch,
        image_shape=(*image_size, 3),
        stride=stride,
        num_parts=infer_num_parts(weights),
        **config_overrides,
    )
    backbone = PASSBackbone(**config)
    backbone.image_converter = PASSImageConverter.for_backbone(
        backbone, "half" if checkpoint_kind(state_dict) == "fine-tuned" else "imagenet")
    missing, resized = assign_weights(backbone, weights, allow_missing, source_grid)
    report = ConversionReport(wrappers, len(weights), unused, missing, resized)
    if output_dir is not None:
        backbone.save_to_preset(output_dir)
    return backbone, report

