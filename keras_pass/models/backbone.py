"""The PASS ViT backbone: `[CLS]` + L `[PART]` tokens, KerasHub presets."""

import keras
from keras import ops
from keras_hub.models import Backbone

from keras_pass import io
from keras_pass.models import preset_io
from keras_pass.models.configs import arch_config
from keras_pass.models.image_converter import PASSImageConverter, load_image_converter, sized_image_converter
from keras_pass.models.layers import (
    LayerNorm,
    PartTokenEmbedding,
    PatchEmbedding,
    TransformerBlock,
)
from keras_pass.models.pos_embed import grid_size
from keras_pass.models.validation import validate_backbone_args, validate_images


@keras.saving.register_keras_serializable(package="keras_pass")
class PASSBackbone(Backbone):
    """ViT with one `[CLS]` and `num_parts` `[PART]` tokens (PASS, ECCV 2022).

    `backbone(images)` runs the functional graph at `image_shape` and returns
    `{"cls": (B, D), "parts": (B, L, D), "tokens": (B, 1 + L + N, D)}`;
    `backbone.encode(images, part_index)` does the same for any image size and
    for local views of one region (then `parts` is `(B, 1, D)`).

    Args:
        image_shape: native `(H, W, 3)`; fixes the `pos_embed` grid.
        patch_size: patch kernel size (16 in every released model).
        stride: patch stride; smaller than `patch_size` overlaps patches.
        hidden_dim, num_layers, num_heads, mlp_dim: transformer sizes.
        num_parts: number of `[PART]` tokens L (3 in PASS).
        drop_path_rate: stochastic depth of the last block (linear rule).
        dropout_rate: dropout after attention/MLP projections.
        layer_norm_epsilon: LayerNorm epsilon (1e-6 as released).
        pos_embed_interpolation: `"resize_only"` (fine-tuning semantics) or
            `"always"` (pre-training semantics); see `PartTokenEmbedding`.
        qkv_init_std: std of the qkv kernels' truncated-normal init (0.02 as
            released). At a small width the released init gives near-uniform
            attention (logits scale with the width), which a short run never
            leaves; the demo's 96-wide ViT uses 0.1.
    """

    def __init__(
        self,
        image_shape=(256, 128, 3),
        patch_size=16,
        stride=16,
        hidden_dim=384,
        num_layers=12,
        num_heads=6,
        mlp_dim=1536,
        num_parts=3,
        drop_path_rate=0.0,
        dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        pos_embed_interpolation="resize_only",
        qkv_init_std=0.02,
        dtype=None,
        **kwargs,
    ):
        image_shape = tuple(image_shape)
        validate_backbone_args(
            image_shape, patch_size, stride, hidden_dim, num_heads, num_parts
        )
        grid_shape = tuple(grid_size(s, patch_size, stride) for s in image_shape[:2])

        # === Layers ===
        self.patch_embedding = PatchEmbedding(
            hidden_dim, patch_size, stride, dtype=dtype, name="patch_embedding"
        )
        self.embeddings = PartTokenEmbedding(
            hidden_dim,
            grid_shape,
            num_parts,
            pos_embed_interpolation,
            dtype=dtype,
            name="embeddings",
        )
        self.embedding_dropout = keras.layers.Dropout(dropout_rate, dtype=dtype)
        self.blocks = [
            TransformerBlock(
                hidden_dim,
                num_heads,
                mlp_dim,
                drop_path_rate * i / max(num_layers - 1, 1),
                dropout_rate,
                layer_norm_epsilon,
                qkv_init_std,
                dtype=dtype,
                name=f"block_{i}",
            )
            for i in range(num_layers)
        ]
        self.final_norm = LayerNorm(
            epsilon=layer_norm_epsilon, dtype=dtype, name="final_norm"
        )

        # === Functional Model ===
        images = keras.Input(shape=image_shape, name="images")
        outputs = self._forward(images)
        super().__init__(inputs=images, outputs=outputs, dtype=dtype, **kwargs)

        # === Config ===
        self.image_shape = image_shape
        self.patch_size = patch_size
        self.stride = stride
        self.hidden_dim = hidden_dim
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.num_parts = num_parts
        self.drop_path_rate = drop_path_rate
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.pos_embed_interpolation = pos_embed_interpolation
        self.qkv_init_std = qkv_init_std
        self.grid_shape = grid_shape
        # Preprocessing of the weights (a `PASSImageConverter`), kept with
        # the preset; None until loaded or set (ImageNet is then assumed).
        self.image_converter = None

    def _tokens(self, images, part_index=None, training=None):
        x = self.embeddings(self.patch_embedding(images), part_index=part_index)
        return self.embedding_dropout(x, training=training)

    def _forward(self, images, part_index=None, training=None):
        x = self._tokens(images, part_index, training)
        for block in self.blocks:
            x = block(x, training=training)
        x = self.final_norm(x)
        num_parts = self.embeddings.num_parts if part_index is None else 1
        return {"cls": x[:, 0], "parts": x[:, 1 : 1 + num_parts], "tokens": x}

    def encode(self, images, part_index=None, training=False):
        """Encodes NHWC images (already normalised) of any valid size.

        Args:
            images: `(B, H, W, 3)` floats; `(H - patch_size)` and
                `(W - patch_size)` divisible by `stride`.
            part_index: `None` for a global view (all part tokens), or the
                0-based region `i` a local view was cut from (only `[PART_i]`).
            training: enables dropout and drop path.

        Returns:
            Dict with `cls` (B, D), `parts` (B, L or 1, D), `tokens`.
        """
        validate_images(images, self, part_index)
        return self._forward(images, part_index, training)

    def reid_features(self, images, training=False):
        """concat(CLS, mean(PART)): the (B, 2D) fine-tuning/retrieval feature."""
        return reid_feature(self.encode(images, training=training))

    def get_last_selfattention(self, images, part_index=None):
        """Attention probabilities of the last block: (B, heads, T, T).

        Token order is `[CLS, PART_1..L, patches]` (or `[CLS, PART_i, ...]`).
        """
        validate_images(images, self, part_index)
        x = self._tokens(images, part_index)
        for block in self.blocks[:-1]:
            x = block(x)
        return self.blocks[-1].attention_weights(x)

    @classmethod
    def from_arch(cls, arch, **overrides):
        """A randomly initialised backbone of a named architecture."""
        return cls(**arch_config(arch, **overrides))

    @classmethod
    def from_preset(cls, preset, load_weights=True, **kwargs):
        """Loads a preset: a local directory or a registered preset name.

        Overrides of `image_shape`, `patch_size` or `stride` that change the
        patch grid resize `pos_embed` bilinearly (as the official fine-tuning
        loader does); other keyword arguments override the config. The
        preset's preprocessing comes along as `backbone.image_converter`.
        """
        handle = preset_io.resolve_preset(preset)
        backbone = super(PASSBackbone, cls).from_preset(handle, load_weights=load_weights, **kwargs)
        backbone.image_converter = load_image_converter(handle, backbone)
        return backbone

    def save_to_preset(self, preset_dir, max_shard_size=10, image_converter=None):
        """Writes a KerasHub preset directory atomically (temp dir + rename),
        with `image_converter.json`: `image_converter`, else the backbone's
        own (`self.image_converter`), else ImageNet statistics (what a
        backbone is pre-trained with), at the backbone's image size."""
        io.check_finite_weights(self, preset_dir)  # never a preset of NaN weights
        converter = sized_image_converter(image_converter or self.image_converter, self)

        def save(staging):
            super(PASSBackbone, self).save_to_preset(staging, max_shard_size)
            converter.save_to_preset(staging)

        preset_io.save_preset_atomically(save, preset_dir)

    def get_config(self):
        config = super().get_config()
        config.update(
            {
                "image_shape": list(self.image_shape),
                "patch_size": self.patch_size,
                "stride": self.stride,
                "hidden_dim": self.hidden_dim,
                "num_layers": self.num_layers,
                "num_heads": self.num_heads,
                "mlp_dim": self.mlp_dim,
                "num_parts": self.num_parts,
                "drop_path_rate": self.drop_path_rate,
                "dropout_rate": self.dropout_rate,
                "layer_norm_epsilon": self.layer_norm_epsilon,
                "pos_embed_interpolation": self.pos_embed_interpolation,
                "qkv_init_std": self.qkv_init_std,
            }
        )
        return config


preset_io.register_named_presets(PASSBackbone)
# keras-hub finds a preset's converter class by its `backbone_cls`; set here
# because the backbone loads and saves its converter (see PASSImageConverter).
PASSImageConverter.backbone_cls = PASSBackbone


def reid_feature(outputs):
    """concat(CLS, mean(PART)) of the backbone's `{"cls", "parts"}` outputs:
    the release's test feature of a pre-trained backbone."""
    return ops.concatenate([outputs["cls"], ops.mean(outputs["parts"], axis=1)], -1)
