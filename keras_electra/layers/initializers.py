"""Initialisers and activations shared by every layer."""

from __future__ import annotations

import keras
from keras import ops

from keras_electra.config import DEFAULT_INITIALIZERS


def truncated_normal(stddev: float = 0.02) -> keras.initializers.Initializer:
    """The official initialiser: truncated normal with std 0.02 (BERT/ELECTRA)."""
    return keras.initializers.TruncatedNormal(stddev=stddev)




def default_initializer(name: str, stddev: float = 0.02) -> keras.initializers.Initializer:
    """The initialiser of a layer the official code builds with `tf.layers.dense` and none given
    (`embeddings_project`, the RTD output `dense_1`, the task heads): "glorot_uniform", TF's
    default and so the official one, or "truncated_normal" (std `stddev`, like Hugging Face)."""
    if name == "glorot_uniform":
        return keras.initializers.GlorotUniform()
    if name == "truncated_normal":
        return truncated_normal(stddev)
    raise ValueError(f"unknown default_initializer {name!r}; choose from {', '.join(DEFAULT_INITIALIZERS)}")


def activation(name: str):
    """Activation by config name. `gelu` is the exact erf form, as in the official code."""
    if name == "gelu":
        return lambda x: ops.gelu(x, approximate=False)
    if name == "gelu_approximate":
        return lambda x: ops.gelu(x, approximate=True)
    if name == "relu":
        return ops.relu
    if name == "tanh":
        return ops.tanh
    raise ValueError(f"unknown activation {name!r}")
