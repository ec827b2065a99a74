"""Random numbers that stay fast under XLA on CPU, and the dropout layer built on them.

`keras.random` lets TensorFlow pick the RNG algorithm; inside an XLA cluster on CPU
that choice is ThreeFry, which made a tiny ELECTRA train step 8× slower than
without XLA. Philox is fast everywhere, so on TensorFlow we ask for it by name.
Other backends fall back to `keras.random`.

`FixedNoise` stands in for a seed generator where a test needs the same random numbers on
every backend (numpy draws, replayed in call order).
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


class FixedNoise:
    """Numpy uniforms in place of a `SeedGenerator`: the same numbers on every backend.

    Draw i of a pass has the shape asked for and comes from `np.random.default_rng([seed, i])`;
    `restart()` begins a pass again, so a step traced twice still sees the same constants.
    Only for tests that compare backends (`ElectraPretrainer.fixed_noise`).
    """

    def __init__(self, seed: int = 0) -> None:
        self.seed = int(seed)
        self.draws = 0

    def restart(self) -> None:
        self.draws = 0

    def uniform(self, shape) -> np.ndarray:
        rng = np.random.default_rng([self.seed, self.draws])
        self.draws += 1
        return rng.random(tuple(int(d) for d in shape), dtype=np.float64).astype("float32")


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
    if isinstance(seed_generator, FixedNoise):
        values = seed_generator.uniform(shape) * (maxval - minval) + minval
        return ops.convert_to_tensor(np.maximum(values, minval).astype(dtype))
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.random.stateless_uniform(
            shape, _tf_seed(seed_generator), minval, maxval, dtype=dtype, alg="philox"
        )
    return keras.random.uniform(shape, minval, maxval, dtype=dtype, seed=seed_generator)


def randint(shape, seed_generator: keras.random.SeedGenerator, minval: int, maxval: int):
    if isinstance(seed_generator, FixedNoise):
        values = np.floor(seed_generator.uniform(shape) * (maxval - minval)).astype("int32") + minval
        return ops.convert_to_tensor(np.minimum(values, maxval - 1))
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
