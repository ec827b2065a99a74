"""Where XLA pays off: accelerators yes, CPUs no.

Measured on a 2-core CPU (benchmarks/README.md): the tiny pretraining step ran 2.0 s with XLA
against 1.0 s without, and the Small fine-tuning step 14.6 s against 11.2 s. On GPUs and TPUs
XLA is the fast path, so "auto" turns it on only where one is visible, and always on JAX.
"""

from __future__ import annotations

JIT_CHOICES = ("auto", "on", "off")


def has_accelerator() -> bool:
    """A GPU or TPU that the Keras backend in use can see (JAX asks jax, not TensorFlow, which it may lack)."""
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return any(device.platform in ("gpu", "tpu", "cuda", "rocm") for device in jax.devices())
    import tensorflow as tf

    return bool(tf.config.list_logical_devices("GPU") or tf.config.list_logical_devices("TPU"))


def resolve_jit_compile(value: bool | str, replicas: int = 1) -> bool:
    """True/False pass through; "auto" means XLA on a GPU or TPU and off on CPUs, except on JAX,
    where XLA is the backend's only compiler (without it every op is dispatched alone): on there.

    Under a multi-replica tf.distribute strategy (Mirrored, MultiWorker) Keras cannot XLA-compile the
    step, which cannot place per-replica state: "auto" is then off, and an explicit on is an error
    rather than being turned off without a word. (JAX's DataParallel compiles one sharded step.)
    """
    if value not in (True, False, *JIT_CHOICES):
        raise ValueError(f"jit_compile must be True, False or one of {JIT_CHOICES}, got {value!r}")
    import keras

    if replicas > 1 and keras.backend.backend() == "tensorflow":
        if value is True or value == "on":
            from keras_electra.errors import ElectraError

            raise ElectraError(f"--jit on: XLA cannot compile the step under {replicas} replicas; "
                               "use --jit auto or off, or train on one device")
        return False
    if isinstance(value, bool):
        return value
    if value == "auto":
        return keras.backend.backend() == "jax" or has_accelerator()
    return value == "on"
