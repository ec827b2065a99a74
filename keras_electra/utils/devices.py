"""Where XLA pays off: accelerators yes, CPUs no.

Measured on a 2-core CPU (benchmarks/README.md): the tiny pretraining step ran 2.0 s with XLA
against 1.0 s without, and the Small fine-tuning step 14.6 s against 11.2 s. On GPUs and TPUs
XLA is the fast path, so "auto" turns it on only where one is visible. On Keras' JAX backend
XLA is the only compiled path (off means op-by-op eager execution), so "auto" is always on there.
"""

from __future__ import annotations

JIT_CHOICES = ("auto", "on", "off")


def has_accelerator() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def resolve_jit_compile(value: bool | str) -> bool:
    """True/False pass through; "auto" means XLA on a GPU or TPU and off on CPUs (always on under JAX)."""
    if isinstance(value, bool):
        return value
    if value == "auto":
        import keras

        return keras.backend.backend() == "jax" or has_accelerator()
    if value in ("on", "off"):
        return value == "on"
    raise ValueError(f"jit_compile must be True, False or one of {JIT_CHOICES}, got {value!r}")
