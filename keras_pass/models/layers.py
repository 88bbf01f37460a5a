"""Layers of the PASS ViT backbone, each serialisable with `get_config`.

Initialisation as the release. A Keras initializer instance without a seed
draws the same values at every call, so each weight gets its own instance
(seeded from Keras' global generator: `keras.utils.set_random_seed` makes a
model reproducible).
"""

import keras
import numpy as np
from keras import ops

from keras_pass.backend.kernels import dense_gelu, fast_paths_enabled, fused
from keras_pass.models.pos_embed import grid_size, resample_pos_embed

INTERPOLATION_MODES = ("resize_only", "always")
GRID_KEY = "grid_shape"  # saved beside the embedding's variables


def release_normal(stddev=0.02):
    """The release's `trunc_normal_(std=0.02)` (Linear weights, tokens,
    position embeddings). It cuts at +-2 in absolute value, i.e. at 100
    standard deviations: a plain normal (Keras' `TruncatedNormal` cuts at 2
    standard deviations, a 12% smaller spread)."""
    return keras.initializers.RandomNormal(stddev=stddev)


def torch_default_uniform(fan_in):
    """PyTorch's default Conv2d/Linear init of a weight or bias with `fan_in`
    inputs: uniform in +-1/sqrt(fan_in)."""
    bound = 1.0 / np.sqrt(fan_in)
    return keras.initializers.RandomUniform(-bound, bound)


@keras.saving.register_keras_serializable(package="keras_pass")
class LayerNorm(keras.layers.LayerNormalization):
    """`keras.layers.LayerNormalization` over the last axis (same weights and
    config); on TensorFlow one XLA kernel instead of eight ops and two casts."""

    def call(self, inputs):
        if not fast_paths_enabled() or self.axis not in (-1, [-1]):
            return super().call(inputs)
        return fused(_layer_norm, inputs, self.gamma, self.beta, self.epsilon, self.compute_dtype)


def _layer_norm(x, gamma, beta, epsilon, dtype):
    """What `LayerNormalization.call` computes (statistics in float32)."""
    return ops.cast(ops.layer_normalization(x, gamma, beta, epsilon=epsilon), dtype)


@keras.saving.register_keras_serializable(package="keras_pass")
class DropPath(keras.layers.Layer):
    """Stochastic depth: drops the whole residual branch per sample."""

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)

    def call(self, x, training=None):
        if not training or self.rate == 0.0:
            return x
        keep = 1.0 - self.rate
        shape = (ops.shape(x)[0],) + (1,) * (len(x.shape) - 1)
        mask = keras.random.uniform(shape, seed=self.seed_generator) < keep
        return x * ops.cast(mask, x.dtype) / keep

    def get_config(self):
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}


@keras.saving.register_keras_serializable(package="keras_pass")
class PatchEmbedding(keras.layers.Layer):
    """Conv patchify to a (B, grid_h, grid_w, D) grid; stride may overlap."""

    def __init__(self, hidden_dim, patch_size=16, stride=16, **kwargs):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.patch_size = patch_size
        self.stride = stride
        self.projection = keras.layers.Conv2D(
            hidden_dim,
            kernel_size=patch_size,
            strides=stride,
            padding="valid",
            dtype=self.dtype_policy,
            name="projection",
        )

    def build(self, input_shape):
        # PyTorch's default Conv2d init, the bias too: both uniform in
        # +-1/sqrt(fan_in), fan_in = channels x patch area (known here).
        fan_in = input_shape[-1] * self.patch_size**2
        self.projection.kernel_initializer = torch_default_uniform(fan_in)
        self.projection.bias_initializer = torch_default_uniform(fan_in)
        self.projection.build(input_shape)

    def call(self, images):
        return self.projection(images)

    def compute_output_shape(self, input_shape):
        batch, height, width, _ = input_shape
        grid = [grid_size(s, self.patch_size, self.stride) for s in (height, width)]
        return (batch, *grid, self.hidden_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "patch_size": self.patch_size,
            "stride": self.stride,
        }


@keras.saving.register_keras_serializable(package="keras_pass")
class PartTokenEmbedding(keras.layers.Layer):
    """Prepends `[CLS]` and `[PART]` tokens and adds position embeddings.

    Every token has its own learned position (`cls_pos`, `part_pos[i]`); the
    patch grid has `pos_embed` of shape `(grid_h * grid_w, D)` with no class
    slot. `pos_embed_interpolation="always"` resamples the grid on every call
    (the official pre-training model, DINO bicubic, not the identity even at
    the native size); `"resize_only"` adds it unchanged at the native grid and
    resamples the same way otherwise (the official fine-tuning model).
    Deviation: at the native grid the release's `pos_embed` gets PyTorch's
    bicubic backward, which ignores the scale factor when the sizes are
    equal (the identity's gradient, 2-10% off the exact one); here the
    gradient is the exact one of the same forward (demo_diagnosis.md, 9).

    Call with `part_index=None` for a global view (`[CLS, PART_1..L, ...]`) or
    `part_index=i` for a local view of region i (`[CLS, PART_i, ...]`); `i` may
    be a Python int, a scalar integer tensor (e.g. traced under jit) or a
    `(B,)` vector giving each sample its own region, so local crops of all
    regions can share one batch.
    """

    def __init__(
        self,
        hidden_dim,
        grid_shape,
        num_parts=3,
        pos_embed_interpolation="resize_only",
        **kwargs,
    ):
        super().__init__(**kwargs)
        if pos_embed_interpolation not in INTERPOLATION_MODES:
            raise ValueError(
                f"Expected `pos_embed_interpolation` in {INTERPOLATION_MODES}. "
                f"Received: pos_embed_interpolation={pos_embed_interpolation}"
            )
        self.hidden_dim = hidden_dim
        self.grid_shape = tuple(grid_shape)
        self.num_parts = num_parts
        self.pos_embed_interpolation = pos_embed_interpolation

    def build(self, input_shape):
        d = self.hidden_dim
        n = self.grid_shape[0] * self.grid_shape[1]
        self.cls_token = self.add_weight((1, d), release_normal(), name="cls_token")
        self.part_tokens = self.add_weight((self.num_parts, d), release_normal(), name="part_tokens")
        # The official model never initialises cls_pos: it stays at zero.
        self.cls_pos = self.add_weight((1, d), "zeros", name="cls_pos")
        self.part_pos = self.add_weight((self.num_parts, d), release_normal(), name="part_pos")
        self.pos_embed = self.add_weight((n, d), release_normal(), name="pos_embed")

    def patch_positions(self, grid_shape):
        grid_shape = tuple(grid_shape)
        if grid_shape == self.grid_shape and self.pos_embed_interpolation == "resize_only":
            return self.pos_embed
        return resample_pos_embed(self.pos_embed, self.grid_shape, grid_shape)

    def call(self, patch_grid, part_index=None):
        batch = ops.shape(patch_grid)[0]
        grid_shape = patch_grid.shape[1:3]
        patches = ops.reshape(patch_grid, (batch, -1, self.hidden_dim))
        patches = patches + self.patch_positions(grid_shape)
        parts = self.part_tokens + self.part_pos
        if part_index is not None:
            index = ops.cast(part_index, "int32")
            if len(index.shape) == 1:  # one region per sample: (B, 1, D)
                parts = ops.take(parts, index, axis=0)[:, None]
            else:
                parts = ops.take(parts, ops.reshape(index, (1,)), axis=0)
        if len(parts.shape) == 2:
            parts = ops.broadcast_to(parts[None], (batch, *parts.shape))
        cls = ops.broadcast_to((self.cls_token + self.cls_pos)[None], (batch, 1, self.hidden_dim))
        special = ops.cast(ops.concatenate([cls, parts], axis=1), patches.dtype)
        return ops.concatenate([special, patches], axis=1)

    def compute_output_shape(self, input_shape):
        batch, grid_h, grid_w, _ = input_shape
        return (batch, 1 + self.num_parts + grid_h * grid_w, self.hidden_dim)

    def save_own_variables(self, store):
        super().save_own_variables(store)
        # The saved grid lets a load at another image size or stride resize.
        store[GRID_KEY] = np.array(self.grid_shape, "int32")

    def load_own_variables(self, store):
        """Loads weights saved at any patch grid: `pos_embed` is resized
        bilinearly when the saved grid differs (the official fine-tuning
        loader's resize), so `from_preset(..., image_shape=...)` and
        `keras_hub.models.Backbone.from_preset` work at any size."""
        variables = self._trainable_variables + self._non_trainable_variables
        keys = [key for key in store.keys() if key != GRID_KEY]
        if len(keys) != len(variables):
            raise ValueError(f"Expected {len(variables)} saved variables for layer '{self.name}'. "
                             f"Received: {len(keys)}")
        saved_grid = self.grid_shape
        if GRID_KEY in store.keys():
            saved_grid = tuple(int(s) for s in np.asarray(store[GRID_KEY]))
        for index, variable in enumerate(variables):
            value = np.asarray(store[f"{index}"])
            if variable is self.pos_embed and saved_grid != self.grid_shape:
                value = ops.convert_to_numpy(
                    resample_pos_embed(value, saved_grid, self.grid_shape, "bilinear"))
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"Expected saved '{variable.path}' of shape {tuple(variable.shape)}. "
                    f"Received: shape={tuple(value.shape)} (saved grid {saved_grid})")
            variable.assign(value)

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "grid_shape": list(self.grid_shape),
            "num_parts": self.num_parts,
            "pos_embed_interpolation": self.pos_embed_interpolation,
        }


@keras.saving.register_keras_serializable(package="keras_pass")
class TransformerBlock(keras.layers.Layer):
    """Pre-norm ViT block: fused qkv attention and a GELU MLP, drop path."""

    def __init__(
        self,
        hidden_dim,
        num_heads,
        mlp_dim,
        drop_path_rate=0.0,
        dropout_rate=0.0,
        layer_norm_epsilon=1e-6,
        qkv_init_std=0.02,
        **kwargs,
    ):
        super().__init__(**kwargs)
        self.hidden_dim = hidden_dim
        self.num_heads = num_heads
        self.mlp_dim = mlp_dim
        self.qkv_init_std = qkv_init_std
        self.drop_path_rate = drop_path_rate
        self.dropout_rate = dropout_rate
        self.layer_norm_epsilon = layer_norm_epsilon
        self.head_dim = hidden_dim // num_heads

        def dense(units, name, stddev=0.02):
            return keras.layers.Dense(
                units,
                kernel_initializer=release_normal(stddev),
                dtype=self.dtype_policy,
                name=name,
            )

        def norm(name):
            return LayerNorm(
                epsilon=layer_norm_epsilon, dtype=self.dtype_policy, name=name
            )

        self.norm1 = norm("norm1")
        self.qkv = dense(3 * hidden_dim, "qkv", qkv_init_std)  # rows [q; k; v] like PyTorch
        self.proj = dense(hidden_dim, "proj")
        self.norm2 = norm("norm2")
        self.fc1 = dense(mlp_dim, "fc1")
        self.fc2 = dense(hidden_dim, "fc2")
        self.dropout = keras.layers.Dropout(dropout_rate, dtype=self.dtype_policy)
        self.drop_path = DropPath(drop_path_rate, dtype=self.dtype_policy)

    def build(self, input_shape):
        mlp_shape = (*input_shape[:-1], self.mlp_dim)
        for layer, shape in [
            (self.norm1, input_shape),
            (self.qkv, input_shape),
            (self.proj, input_shape),
            (self.norm2, input_shape),
            (self.fc1, input_shape),
            (self.fc2, mlp_shape),
        ]:
            layer.build(shape)

    def _rows(self, layer, x):
        """`layer` on (B * T, C) rows: on 2-D inputs TensorFlow fuses a Dense's
        bias add into its oneDNN matmul (no separate pass over the output)."""
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        y = layer(ops.reshape(x, (-1, x.shape[-1])))
        return ops.reshape(y, (batch, length, y.shape[-1]))

    def _split_heads(self, x):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        qkv = ops.reshape(self._rows(self.qkv, x), (batch, length, 3, self.num_heads, self.head_dim))
        return ops.unstack(qkv, 3, axis=2)  # (B, T, H, hd) each; no slice gradients

    def _mlp(self, rows, training):
        y = self.dropout(dense_gelu(self.fc1, rows, training), training=training)
        return self.dropout(self.fc2(y), training=training)

    def attention_weights(self, x):
        """Softmax attention of this block for the input `x`: (B, H, T, T)."""
        query, key, _ = self._split_heads(self.norm1(x))
        logits = ops.einsum("bqhd,bkhd->bhqk", query, key) * self.head_dim**-0.5
        return ops.softmax(ops.cast(logits, "float32"), axis=-1)

    def call(self, x, training=None):
        batch, length = ops.shape(x)[0], ops.shape(x)[1]
        query, key, value = self._split_heads(self.norm1(x))
        attended = ops.dot_product_attention(query, key, value)
        attended = ops.reshape(attended, (batch, length, self.hidden_dim))
        y = self.dropout(self._rows(self.proj, attended), training=training)
        x = x + self.drop_path(y, training=training)
        y = self._rows(lambda rows: self._mlp(rows, training), self.norm2(x))
        return x + self.drop_path(y, training=training)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        return {
            **super().get_config(),
            "hidden_dim": self.hidden_dim,
            "num_heads": self.num_heads,
            "mlp_dim": self.mlp_dim,
            "drop_path_rate": self.drop_path_rate,
            "dropout_rate": self.dropout_rate,
            "layer_norm_epsilon": self.layer_norm_epsilon,
            "qkv_init_std": self.qkv_init_std,
        }
