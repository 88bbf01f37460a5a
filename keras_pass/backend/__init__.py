"""Everything that differs between Keras backends, in one place.

- `kernels`: the fast paths the library's layers, optimizer and trainer ask
  for (one XLA kernel per element-wise chain on TensorFlow; the generic
  `keras.ops` code elsewhere), chosen here and nowhere else;
- `tensorflow_kernels`: the TensorFlow-only implementations;
- `train_steps`: PASSPretrainer's per-backend gradient step (JAX stateless,
  TensorFlow tape, torch autograd);
- `distribution`: multi-device scopes and the loss scaling they need.
"""
