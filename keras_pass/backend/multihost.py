"""What a multi-process JAX run needs beyond `keras.distribution`:
inference whose features every process gets whole (evaluation gathers
them; the training streams slice their batches themselves, before
decoding: `data_shard`).

Single-process runs pass through unchanged.
"""

import numpy as np

from keras_pass.backend import processes

_FORWARDS = {}


def _forward(model):
    """A jitted `model(x, training=False)` on global arrays (cached)."""
    import jax

    if id(model) not in _FORWARDS:
        def forward(trainable, non_trainable, images):
            outputs, _ = model.stateless_call(trainable, non_trainable, images, training=False)
            return outputs

        _FORWARDS[id(model)] = (model, jax.jit(forward))
    return _FORWARDS[id(model)][1]


def predict_on_batch(model, images):
    """`model.predict_on_batch(images)`. Multi-process: every
    process passes the same whole batch; each runs the forward pass on its
    slice (padded to equal slices) and the outputs are gathered, so every
    process returns the whole batch's outputs."""
    count = processes.process_count()
    if count == 1:
        return model.predict_on_batch(images)
    import jax
    import keras
    from jax.experimental import multihost_utils

    images = np.asarray(images)
    rows = -(-len(images) // count)
    padded = np.concatenate([images, np.repeat(images[-1:], rows * count - len(images), axis=0)])
    local = padded[processes.process_index() * rows:(processes.process_index() + 1) * rows]
    layout = keras.distribution.distribution().get_data_layout(local.shape).backend_layout
    outputs = _forward(model)(
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        jax.make_array_from_process_local_data(layout, local),
    )
    gathered = jax.tree.map(lambda x: np.asarray(multihost_utils.process_allgather(x, tiled=True)), outputs)
    return jax.tree.map(lambda x: x[:len(images)], gathered)
