"""The backend-specific half of `ElectraPretrainer`'s train and test steps.

The objective (`ElectraPretrainer._forward`) and the metric updates (`_update_metrics`) are
written once in `keras.ops`; these functions only turn them into gradients and state updates:

- TensorFlow: `tf.GradientTape` under `tf.distribute` (each replica scales its mean loss by
  the number of replicas, since gradients are summed across replicas).
- JAX: Keras' stateless signature, `train_step(state, data) -> (logs, state)`: `_forward` runs in a
  `keras.StatelessScope` over the given variable values, `jax.value_and_grad` differentiates it
  and `optimizer.stateless_apply` updates. The seed generators' states are non-trainable
  variables, so the new masking/sampling/dropout RNG state comes back in `state` (stateful
  RNG, like TensorFlow). Under `keras.distribution.DataParallel` the batch is sharded and the
  loss is the global batch's mean: no per-replica scaling.

TensorFlow and JAX are each imported only when their step runs.
"""

from __future__ import annotations

from typing import Any

import keras


def _unpack(data):
    if isinstance(data, tuple):  # (x,) or (x, y, sample_weight) from keras adapters
        data = data[0]
    return data


def train_step(model, *args):
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return tensorflow_train_step(model, *args)
    if backend == "jax":
        return jax_train_step(model, *args)
    raise NotImplementedError(f"ElectraPretrainer trains on the tensorflow and jax backends, not {backend}")


def test_step(model, *args):
    backend = keras.backend.backend()
    if backend == "jax":
        return jax_test_step(model, *args)
    (data,) = args
    losses, outputs = model._forward(_unpack(data), training=False)
    return _tensorflow_logs(model._update_metrics(losses, outputs))


def _tensorflow_logs(logs: dict) -> dict:
    """The step's logs; under MultiWorkerMirroredStrategy each becomes shape [1].

    Keras (3.15) reduces a multi-worker step's outputs with `strategy.reduce("MEAN", v, axis=0)`, which
    fails on a scalar; over [1] per replica it is the mean of the replicas' values, a scalar again, as
    MirroredStrategy's `reduce_mean` over the local results gives.
    """
    import tensorflow as tf

    if not tf.distribute.get_strategy().extended._in_multi_worker_mode():
        return logs
    return {key: tf.reshape(value, [1]) for key, value in logs.items()}


# --------------------------------------------------------------------------- TensorFlow
def tensorflow_train_step(model, data) -> dict[str, Any]:
    import tensorflow as tf

    batch = _unpack(data)
    with tf.GradientTape() as tape:
        losses, outputs = model._forward(batch, training=True)
        # Gradients are summed across replicas, so each replica scales its mean.
        replica_loss = losses["loss"] / tf.distribute.get_strategy().num_replicas_in_sync
        scaled = model.optimizer.scale_loss(replica_loss)
    variables = model.trainable_variables
    grads = tape.gradient(scaled, variables)
    model.optimizer.apply_gradients(zip(grads, variables))
    return _tensorflow_logs(model._update_metrics(losses, outputs))


# --------------------------------------------------------------------------------- JAX
def _values(scope, variables, fallback) -> list:
    """The values `variables` hold at the end of `scope` (unchanged ones: `fallback`)."""
    values = []
    for variable, old in zip(variables, fallback):
        new = scope.get_current_value(variable)
        values.append(old if new is None else new)
    return values


def jax_loss_and_gradients(model, trainable, non_trainable, optimizer_variables, batch, training: bool = True):
    """((scaled loss, (losses, outputs, new non-trainable values)), gradients) of `_forward`.

    Stateless: nothing is assigned; the non-trainable values (seed states) come back.
    """
    import jax

    def loss_fn(trainable_values, non_trainable_values):
        mapping = [*zip(model.trainable_variables, trainable_values),
                   *zip(model.non_trainable_variables, non_trainable_values),
                   *zip(model.optimizer.variables, optimizer_variables)]
        with keras.StatelessScope(state_mapping=mapping) as scope:
            losses, outputs = model._forward(batch, training=training)
            scaled = model.optimizer.scale_loss(losses["loss"])  # mixed_float16: loss scaling
        new_non_trainable = _values(scope, model.non_trainable_variables, non_trainable_values)
        return scaled, (losses, outputs, new_non_trainable)

    return jax.value_and_grad(loss_fn, has_aux=True)(trainable, non_trainable)


def _jax_metrics(model, metrics_variables, losses, outputs):
    with keras.StatelessScope(state_mapping=list(zip(model.metrics_variables, metrics_variables))) as scope:
        logs = model._update_metrics(losses, outputs)
    return logs, _values(scope, model.metrics_variables, metrics_variables)


def jax_train_step(model, state, data):
    trainable, non_trainable, optimizer_variables, metrics_variables = state
    (_, (losses, outputs, non_trainable)), grads = jax_loss_and_gradients(
        model, trainable, non_trainable, optimizer_variables, _unpack(data), training=True
    )
    # Global-norm clipping, loss-scale handling and the schedule all live in the optimizer.
    trainable, optimizer_variables = model.optimizer.stateless_apply(optimizer_variables, grads, trainable)
    logs, metrics_variables = _jax_metrics(model, metrics_variables, losses, outputs)
    return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def jax_test_step(model, state, data):
    trainable, non_trainable, metrics_variables = state
    mapping = [*zip(model.trainable_variables, trainable), *zip(model.non_trainable_variables, non_trainable)]
    with keras.StatelessScope(state_mapping=mapping) as scope:
        losses, outputs = model._forward(_unpack(data), training=False)
    non_trainable = _values(scope, model.non_trainable_variables, non_trainable)
    logs, metrics_variables = _jax_metrics(model, metrics_variables, losses, outputs)
    return logs, (trainable, non_trainable, metrics_variables)
