"""Random numbers that stay fast under XLA on CPU, and the dropout layer built on them.

`keras.random` lets TensorFlow pick the RNG algorithm; inside an XLA cluster on CPU
that choice is ThreeFry, which made a tiny ELECTRA train step 8× slower than
without XLA. Philox is fast everywhere, so on TensorFlow we ask for it by name.
Other backends fall back to `keras.random`.
"""

from __future__ import annotations

import keras
from keras import ops


def _tf_seed(seed_generator: keras.random.SeedGenerator):
    import tensorflow as tf

    state = seed_generator.next()
    seed = tf.cast(tf.math.floormod(state, tf.int32.max - 1), tf.int32)
    # Under MirroredStrategy every replica reads the same (mirrored) generator state, so without this
    # the replicas would mask the same positions and draw the same samples and dropout.
    context = tf.distribute.get_replica_context()
    if context is not None and context.num_replicas_in_sync > 1:
        replica = tf.cast(context.replica_id_in_sync_group, tf.int32)
        seed = tf.stack([tf.bitwise.bitwise_xor(seed[0], replica * 1_000_003), seed[1]])
    return seed


def uniform(shape, seed_generator: keras.random.SeedGenerator, minval=0.0, maxval=1.0, dtype="float32"):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_uniform(
            shape, _tf_seed(seed_generator), minval, maxval, dtype=dtype, alg="philox"
        )
    return keras.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed_generator)


def randint(shape, seed_generator: keras.random.SeedGenerator, minval: int, maxval: int):
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_uniform(
            shape, _tf_seed(seed_generator), minval, maxval, dtype=tf.int32, alg="philox"
        )
    return keras.random.randint(shape, minval, maxval, dtype="int32", seed=seed_generator)


@keras.saving.register_keras_serializable(package="keras_electra")
class Dropout(keras.layers.Layer):
    """Inverted dropout, numerically the same as `keras.layers.Dropout`, on the fast RNG."""

    def __init__(self, rate: float, seed: int | None = None, **kwargs) -> None:
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"dropout rate must be in [0, 1), got {rate}")
        self.rate = rate
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self.built = True

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep = ops.cast(uniform(ops.shape(inputs), self.seed_generator) >= self.rate, inputs.dtype)
        return inputs * keep / ops.cast(1.0 - self.rate, inputs.dtype)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self) -> dict:
        return {**super().get_config(), "rate": self.rate, "seed": self.seed}
