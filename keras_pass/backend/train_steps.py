"""The backend-specific part of the PASS train step: gradients + optimizer.

Everything else (schedules, loss, clipping, EMA, centers, metrics) is
backend-agnostic code on `PASSPretrainer`. The EMA needs the student weights AFTER the
optimizer step, hence one small step function per backend:

- JAX: stateless; forward passes and updates run inside `StatelessScope`s
  over the step's state and the new values are returned (a plain
  `variable.assign` would fail under `jit`).
- TensorFlow: `GradientTape`. Under a `tf.distribute` strategy the gradients
  are averaged across replicas BEFORE per-parameter clipping (DDP semantics
  of the release), then divided by the replica count because Keras'
  optimizer sums them again.
- PyTorch: `backward()`.

With `mixed_float16` the loss is scaled by the optimizer; gradients are
unscaled for clipping and scaled back for the (loss-scale) optimizer.
"""

import keras


def _loss_scale(optimizer):
    scale = getattr(optimizer, "dynamic_scale", None)
    if scale is None:
        scale = optimizer.loss_scale_factor
    return 1.0 if scale is None else keras.ops.cast(scale, "float32")


def _prepared(model, grads):
    scale = _loss_scale(model.optimizer)
    grads = model.prepare_gradients([g / scale for g in grads])
    return grads, scale


def train_step(model, *args):
    backend = keras.config.backend()
    step = {"jax": _jax_train_step, "tensorflow": _tensorflow_train_step, "torch": _torch_train_step}
    if backend not in step:
        raise ValueError(f"Expected backend jax, tensorflow or torch. Received: backend={backend}")
    return step[backend](model, *args)


def _jax_train_step(model, state, data):
    import jax

    groups = (
        model.trainable_variables,
        model.non_trainable_variables,
        model.optimizer.variables,
        model.metrics_variables,
    )

    def scope(values):
        mapping = [pair for group, vals in zip(groups, values) for pair in zip(group, vals)]
        return keras.StatelessScope(state_mapping=mapping)

    def current(scope_, group):
        return [scope_.get_current_value(v) for v in group]

    trainable, non_trainable, optimizer_vars, metrics_vars = state
    with scope(state) as s:
        scheduled = model.apply_schedules()
        non_trainable, optimizer_vars = current(s, groups[1]), current(s, groups[2])

    def loss_fn(trainable_values):
        with scope((trainable_values, non_trainable, optimizer_vars, metrics_vars)) as s:
            loss, aux = model.compute_pass_loss(data, training=True)
            scaled = model.optimizer.scale_loss(loss)
        return scaled, (loss, aux, current(s, groups[1]))  # drop-path seeds

    grads, (loss, aux, non_trainable) = jax.grad(loss_fn, has_aux=True)(trainable)
    with scope((trainable, non_trainable, optimizer_vars, metrics_vars)):
        grads, scale = _prepared(model, grads)
        grads = [g * scale for g in grads]
    trainable, optimizer_vars = model.optimizer.stateless_apply(optimizer_vars, grads, trainable)
    with scope((trainable, non_trainable, optimizer_vars, metrics_vars)) as s:
        logs = {**model.finish_step(loss, aux), **scheduled}
        new_state = (trainable, current(s, groups[1]), optimizer_vars, current(s, groups[3]))
    return logs, new_state


def _tensorflow_train_step(model, data):
    import tensorflow as tf

    variables = model.trainable_variables
    scheduled = model.apply_schedules()
    with tf.GradientTape() as tape:
        loss, aux = model.compute_pass_loss(data, training=True)
        scaled = model.optimizer.scale_loss(loss)
    grads = tape.gradient(scaled, variables)
    replica = tf.distribute.get_replica_context()
    replicas = replica.num_replicas_in_sync if replica is not None else 1
    if replicas > 1:
        grads = replica.all_reduce(tf.distribute.ReduceOp.MEAN, grads)
    grads, scale = _prepared(model, grads)
    model.optimizer.apply([g * scale / replicas for g in grads], variables)
    return {**model.finish_step(loss, aux), **scheduled}


def _torch_train_step(model, data):
    import torch

    variables = model.trainable_variables
    scheduled = model.apply_schedules()
    model.zero_grad()
    loss, aux = model.compute_pass_loss(data, training=True)
    model.optimizer.scale_loss(loss).backward()
    grads = [v.value.grad for v in variables]
    with torch.no_grad():
        grads, scale = _prepared(model, grads)
        model.optimizer.apply([g * scale for g in grads], variables)
        logs = model.finish_step(loss.detach(), {k: v.detach() for k, v in aux.items()})
        return {**logs, **scheduled}


def sync_state_for_callbacks(model):
    """Makes variables readable and assignable from a callback during fit.

    JAX's trainer keeps the state outside the variables between steps; after
    `jax_state_sync()` the next step re-reads it from the variables, so an
    assignment made by a callback takes effect. Other backends need nothing.
    """
    if keras.config.backend() == "jax":
        model.jax_state_sync()
