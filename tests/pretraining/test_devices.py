"""`jit_compile="auto"`: XLA on accelerators only (it is slower on CPUs), always on JAX; explicit values pass
through."""

from __future__ import annotations

import keras
import pytest
import tensorflow as tf

from keras_electra.utils.devices import resolve_jit_compile

pytestmark = pytest.mark.backend_sensitive  # "auto" depends on the backend


def test_auto_follows_the_visible_devices():
    has_accelerator = bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))
    # On JAX, XLA is the only compiled path: "off" would run op by op.
    assert resolve_jit_compile("auto") is (keras.backend.backend() == "jax" or has_accelerator)


@pytest.mark.parametrize("value, expected", [(True, True), (False, False), ("on", True), ("off", False)])
def test_explicit_values_are_kept(value, expected):
    assert resolve_jit_compile(value) is expected


def test_unknown_value_is_refused():
    with pytest.raises(ValueError, match="jit_compile must be"):
        resolve_jit_compile("yes")


@pytest.mark.tensorflow_only  # tf.distribute replicas; JAX's DataParallel compiles one sharded step
@pytest.mark.parametrize("value", [True, "on"])
def test_explicit_jit_under_several_replicas_is_an_error_not_silently_off(value):
    from keras_electra.errors import ElectraError

    with pytest.raises(ElectraError, match="--jit on: XLA cannot compile the step under 2 replicas"):
        resolve_jit_compile(value, replicas=2)
    assert resolve_jit_compile("auto", replicas=2) is False
    assert resolve_jit_compile("off", replicas=2) is False
