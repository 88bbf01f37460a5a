"""DINO projection head used by PASS (one per token type)."""

import keras
from keras import ops

from keras_pass.models.layers import gelu


RELEASE_OUT_DIM = 65536  # prototypes per head in every released PASS/DINO model


@keras.saving.register_keras_serializable(package="keras_pass")
class DINOHead(keras.layers.Layer):
    """MLP -> L2 normalise -> weight-normalised linear layer without bias.

    `in -> hidden -> hidden -> bottleneck` (GELU, no BN), then
    `last_layer`: its kernel `v` is used as `v / ||v||` per output unit with
    the gain frozen at 1 (`norm_last_layer=True` of the release), so only the
    direction of each prototype is learned. The trainer builds heads in
    float32 whatever the backbone's policy: the 65,536-way softmax at
    temperature 0.04 needs the precision.
    """

    def __init__(
        self,
        out_dim=RELEASE_OUT_DIM,
        hidden_dim=2048,
        bottleneck_dim=256,
        num_layers=3,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if num_layers < 1:
            raise ValueError(f"Expected `num_layers` >= 1. Received: num_layers={num_layers}")
        self.out_dim = out_dim
        self.hidden_dim = hidden_dim
        self.bottleneck_dim = bottleneck_dim
        self.num_layers = num_layers
        widths = [hidden_dim] * (num_layers - 1) + [bottleneck_dim]
        self.mlp = [
            keras.layers.Dense(
                width,
                kernel_initializer=keras.initializers.TruncatedNormal(stddev=0.02),
                dtype=self.dtype_policy,
                name=f"mlp_{i}",
            )
            for i, width in enumerate(widths)
        ]

    def build(self, input_shape):
        shape = input_shape
        for dense in self.mlp:
            dense.build(shape)
            shape = (*shape[:-1], dense.units)
        # PyTorch's default Linear init; only the direction matters here.
        self.last_layer = self.add_weight(
            (self.bottleneck_dim, self.out_dim),
            keras.initializers.VarianceScaling(1.0 / 3.0, "fan_in", "uniform"),
            name="last_layer",
        )

    def call(self, x):
        for i, dense in enumerate(self.mlp):
            x = dense(x)
            if i < len(self.mlp) - 1:
                x = gelu(x)
        x = x / ops.maximum(ops.norm(x, axis=-1, keepdims=True), 1e-12)
        # x @ (v / ||v||) computed as (x @ v) / ||v||: the same logits, but
        # XLA on CPU turns the normalised kernel feeding a matmul into a naive
        # loop (19 s for 256 x 65,536), and column norms as a matmul because
        # its column reductions are slow too.
        kernel = self.last_layer
        squared_norms = ops.matmul(ops.ones((1, self.bottleneck_dim), kernel.dtype), ops.square(kernel))
        return ops.matmul(x, kernel) / ops.maximum(ops.sqrt(squared_norms), 1e-12)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.out_dim)

    def get_config(self):
        return {
            **super().get_config(),
            "out_dim": self.out_dim,
            "hidden_dim": self.hidden_dim,
            "bottleneck_dim": self.bottleneck_dim,
            "num_layers": self.num_layers,
        }
