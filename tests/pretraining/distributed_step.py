"""One ELECTRA train step on one global batch, on 1 replica and on 2 (MirroredStrategy over two logical
CPU devices): prints the loss and the weight change of each as JSON.

    python -m tests.pretraining.distributed_step OUT.npz [-- keras-electra arguments]

With CLI arguments, it then runs `keras-electra ARGS` in the same process (same two logical devices), which
saves the test a second TensorFlow start.

Run in its own process: the two logical devices must be set before TensorFlow starts. Everything random is
keyed by each row's tokens (masking, replacement choice, Gumbel sampling) and dropout is off, so a row
draws the same numbers whichever replica holds it and however the batch is split. The optimiser is SGD
with learning rate 1, so the weight change is minus the gradient that `train_step` applied, after the
cross-replica reduction (Adam's first step would hide a wrong scale).
"""

from __future__ import annotations

import sys

import numpy as np
import tensorflow as tf

SEQ_LENGTH, BATCH = 64, 8
_STATE: dict = {}
_REAL: list = []


def _keyed_uniform(shape, seed=None, minval=0.0, maxval=1.0, dtype="float32"):
    _STATE["calls"] += 1
    salt = _STATE["calls"]

    def row(key):
        return tf.random.stateless_uniform(shape[1:], tf.stack([key, salt]), minval, maxval, dtype=dtype, alg="philox")

    return tf.map_fn(row, _STATE["keys"], fn_output_signature=tf.as_dtype(dtype))


def _keyed_randint(shape, seed, minval, maxval):
    return _keyed_uniform(shape, seed, minval, maxval, dtype="int32")


def install_row_keyed_randomness() -> None:
    from keras_electra.pretraining import masking, pretrainer

    real_mask_tokens = pretrainer.mask_tokens
    _REAL[:] = [masking.uniform, masking.randint, real_mask_tokens]

    def mask_tokens(token_ids, padding_mask, **kwargs):
        length = tf.shape(token_ids)[1]
        _STATE["keys"] = tf.reduce_sum(tf.cast(token_ids, tf.int32) * (tf.range(length) + 1), axis=1)
        _STATE["calls"] = 0
        return real_mask_tokens(token_ids, padding_mask, **kwargs)

    pretrainer.mask_tokens = mask_tokens
    masking.uniform, masking.randint = _keyed_uniform, _keyed_randint


def main(out: str, cli_args: list[str]) -> int:
    cpu = tf.config.list_physical_devices("CPU")[0]
    tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
    import keras

    from keras_electra.data.pretraining_data import pretraining_dataset
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.pretraining.trainer import PretrainingOptions, build_pretrainer
    from tests.conftest import NOVELS, VOCAB_UNCASED

    install_row_keyed_randomness()
    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    # Full-length rows only: every replica then averages over as many masked slots and tokens as the whole
    # batch does per row, so the mean of the replicas' means is the global mean (as on the official TPUs).
    rows = pretraining_dataset([NOVELS / "Doyle_Hound_1902.txt"], tokenizer, seq_length=SEQ_LENGTH, batch_size=32,
                               shuffle_buffer=0).unbatch().filter(lambda e: tf.reduce_all(e["padding_mask"] == 1))
    batch = next(iter(rows.batch(BATCH)))
    batch = {k: v.numpy() for k, v in batch.items()}
    options = PretrainingOptions(preset="tiny", sources=[], vocab=str(VOCAB_UNCASED), seq_length=SEQ_LENGTH,
                                 model_overrides={"hidden_dropout": 0.0, "attention_dropout": 0.0}).resolved()

    results, initial = {}, None
    for name, strategy in (("one", tf.distribute.get_strategy()),
                           ("two", tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"]))):
        with strategy.scope():
            keras.utils.set_random_seed(0)
            model = build_pretrainer(options, tokenizer)
            if initial is None:
                initial = [w.copy() for w in model.get_weights()]
            model.set_weights(initial)
            model.compile(optimizer=keras.optimizers.SGD(learning_rate=1.0), jit_compile=False)
        logs = model.train_on_batch(batch, return_dict=True)
        results[f"{name}_replicas"] = np.asarray(strategy.num_replicas_in_sync)
        for key in ("loss", "gen_loss", "disc_loss"):
            results[f"{name}_{key}"] = np.asarray(float(logs[key]))
        for i, (after, before) in enumerate(zip(model.get_weights(), initial)):
            results[f"{name}_delta_{i}"] = after - before
    # Without row keys: each replica draws its own masking and sampling noise from the mirrored generator.
    from keras_electra.layers.random import uniform

    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    with mirrored.scope():
        generator = keras.random.SeedGenerator(0)
    draws = mirrored.experimental_local_results(tf.function(lambda: mirrored.run(lambda: uniform((64,), generator)))())
    results["replica_draws"] = np.stack([d.numpy() for d in draws])
    np.savez(out, **results)
    if not cli_args:
        return 0
    from keras_electra import cli
    from keras_electra.pretraining import masking, pretrainer

    masking.uniform, masking.randint, pretrainer.mask_tokens = _REAL  # the CLI run draws as usual
    return cli.main(cli_args)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[3:] if sys.argv[2:3] == ["--"] else []))
