"""Initialisers and activations shared by every layer."""

from __future__ import annotations

import keras
from keras import ops


def truncated_normal(stddev: float = 0.02) -> keras.initializers.Initializer:
    """The official initialiser: truncated normal with std 0.02 (BERT/ELECTRA)."""
    return keras.initializers.TruncatedNormal(stddev=stddev)


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
