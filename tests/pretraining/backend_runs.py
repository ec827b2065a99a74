"""Child processes for tests/pretraining/test_backends.py (the Keras backend is fixed per process).

    python -m tests.pretraining.backend_runs first_step DIR          # KERAS_BACKEND=tensorflow or jax
    python -m tests.pretraining.backend_runs data_parallel DIR       # JAX, 2 host devices
    python -m tests.pretraining.backend_runs pretrain SHARDS OUT STEPS [KILL_AT]   # TensorFlow blocked

`first_step`: one training step from DIR/initial.npz (written by the first backend that runs, with
the batch) under fixed masking and sampling noise; losses, updated weights and Adam's first moments
go to DIR/<backend>.npz.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import numpy as np

SEQ = 32
BATCH = 4


def _block_tensorflow() -> None:
    """tests/tf_blocked.py's sys.meta_path finder: TensorFlow is refused, not just uninstalled."""
    from tests.tf_blocked import prelude

    exec(prelude(), {"__name__": "tf_blocked_prelude"})


def _pretrainer(vocab_size: int, special_ids: dict[str, int]):
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.layers.random import FixedNoise
    from keras_electra.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    keras.utils.set_random_seed(1)
    # Dropout draws from each backend's own RNG: off, so that only the fixed noise is random.
    config = ElectraConfig.from_preset("tiny", vocab_size=vocab_size, num_layers=1, hidden_dropout=0.0,
                                       attention_dropout=0.0)
    pretrainer = ElectraPretrainer(config, special_ids, seq_length=SEQ, seed=1)
    pretrainer.build()
    pretrainer.fix_noise(FixedNoise(seed=7))
    pretrainer.compile(optimizer=create_optimizer(1e-3, total_steps=10, warmup_steps=0))
    pretrainer.optimizer.build(pretrainer.trainable_variables)
    return pretrainer


def _step_results(pretrainer, batch: dict) -> dict[str, np.ndarray]:
    import keras

    logs = pretrainer.train_on_batch(batch, return_dict=True)
    out = {f"loss/{k}": np.float32(v) for k, v in logs.items() if k in ("loss", "gen_loss", "disc_loss")}
    for i, variable in enumerate(pretrainer.trainable_variables):
        out[f"weight/{i}"] = keras.ops.convert_to_numpy(variable.value)
    # Adam's first moment after one step is 0.1 x the (clipped) gradient.
    for i, variable in enumerate(pretrainer.optimizer._momentums):
        out[f"momentum/{i}"] = keras.ops.convert_to_numpy(variable.value)
    return out


def first_step(directory: Path) -> None:
    import keras

    from keras_electra.data.vocabulary import Vocabulary
    from tests.conftest import NOVELS, VOCAB_UNCASED

    vocabulary = Vocabulary(VOCAB_UNCASED)
    initial = directory / "initial.npz"
    if not initial.is_file():
        from keras_electra.data.pretraining_data import pretraining_dataset
        from keras_electra.data.tokenizer import ElectraTokenizer

        tokenizer = ElectraTokenizer(vocabulary.vocabulary)
        data = pretraining_dataset([str(NOVELS / "Doyle_Hound_1902.txt")], tokenizer, seq_length=SEQ,
                                   batch_size=BATCH, seed=0, repeat=False)
        batch = {k: v.numpy() for k, v in next(iter(data)).items()}
        pretrainer = _pretrainer(vocabulary.vocabulary_size, vocabulary.special_token_ids)
        arrays = {f"batch/{k}": v for k, v in batch.items()}
        arrays.update({f"init/{i}": keras.ops.convert_to_numpy(v.value)
                       for i, v in enumerate(pretrainer.trainable_variables)})
        arrays["paths"] = np.array([v.path for v in pretrainer.trainable_variables])
        np.savez(initial, **arrays)
    with np.load(initial) as data:
        arrays = dict(data)
    pretrainer = _pretrainer(vocabulary.vocabulary_size, vocabulary.special_token_ids)
    assert [v.path for v in pretrainer.trainable_variables] == [str(p) for p in arrays["paths"]]
    for i, variable in enumerate(pretrainer.trainable_variables):
        variable.assign(arrays[f"init/{i}"])
    batch = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("batch/")}
    np.savez(directory / f"{keras.backend.backend()}.npz", **_step_results(pretrainer, batch))


def data_parallel(directory: Path) -> None:
    """The same global batch and weights on 1 device and on DataParallel over 2: losses and gradients."""
    import jax
    import keras

    from keras_electra.data.vocabulary import Vocabulary
    from tests.conftest import VOCAB_UNCASED

    assert len(jax.devices()) == 2, jax.devices()
    vocabulary = Vocabulary(VOCAB_UNCASED)
    with np.load(directory / "initial.npz") as data:
        arrays = dict(data)
    batch = {k.split("/", 1)[1]: v for k, v in arrays.items() if k.startswith("batch/")}
    results = {}
    for name, distribution in (("one", None), ("two", keras.distribution.DataParallel())):
        keras.distribution.set_distribution(distribution)
        pretrainer = _pretrainer(vocabulary.vocabulary_size, vocabulary.special_token_ids)
        for i, variable in enumerate(pretrainer.trainable_variables):
            variable.assign(arrays[f"init/{i}"])
        results.update({f"{name}/{k}": v for k, v in _step_results(pretrainer, batch).items()})
        if distribution is not None:  # the variables really live on both devices
            results["two/devices"] = np.int32(len(pretrainer.trainable_variables[0].value.sharding.device_set))
    np.savez(directory / "data_parallel.npz", **results)


def variants() -> None:
    """JAX: mixed precision (bf16; f16 with loss scaling) and a frozen generator train as on TensorFlow."""
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    rng = np.random.default_rng(0)
    ids = rng.integers(5, 300, (BATCH, SEQ)).astype("int32")
    ids[:, 0], ids[:, -1] = 2, 3
    batch = {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": np.ones_like(ids)}
    config = ElectraConfig.from_preset("tiny", vocab_size=300, num_layers=1)
    for name, kwargs in (("mixed_bfloat16", dict(dtype="mixed_bfloat16")),
                         ("mixed_float16", dict(dtype="mixed_float16")),
                         ("frozen_generator", dict(train_generator=False, untied_generator_embeddings=True))):
        keras.utils.set_random_seed(0)
        pretrainer = ElectraPretrainer(config, {"cls": 2, "sep": 3, "pad": 0, "mask": 4}, seq_length=SEQ, seed=0,
                                       **kwargs)
        pretrainer.build()
        pretrainer.compile(optimizer=create_optimizer(1e-3, total_steps=10, warmup_steps=0))
        generator = [keras.ops.convert_to_numpy(v.value) for v in pretrainer.generator.weights]
        discriminator = [keras.ops.convert_to_numpy(v.value) for v in pretrainer.discriminator.weights]
        # float16 starts at a loss scale of 2^15 and skips the steps whose gradients overflow (halving it).
        logs = [pretrainer.train_on_batch(batch, return_dict=True) for _ in range(10)]
        assert all(np.isfinite(float(v)) for log in logs for v in log.values()), logs
        assert 0.0 <= float(logs[-1]["disc_auc"]) <= 1.0
        gen_moved = any(not np.array_equal(a, keras.ops.convert_to_numpy(v.value))
                        for a, v in zip(generator, pretrainer.generator.weights))
        disc_moved = any(not np.array_equal(a, keras.ops.convert_to_numpy(v.value))
                         for a, v in zip(discriminator, pretrainer.discriminator.weights))
        assert disc_moved and gen_moved == (name != "frozen_generator"), (name, gen_moved, disc_moved)
        step = int(keras.ops.convert_to_numpy(pretrainer.optimizer.iterations.value))
        print("VARIANT", name, step, float(logs[-1]["loss"]))


def pretrain(shards: str, output: str, steps: int, kill_at: int | None = None) -> None:
    """A tiny run from shards with TensorFlow blocked; `kill_at`: die (os._exit) right after that step."""
    _block_tensorflow()
    from keras_electra.pretraining import trainer

    if kill_at is not None:
        save = trainer.StepCheckpoint.on_train_batch_end

        def save_then_die(self, batch, logs=None):
            save(self, batch, logs)
            if self.step == kill_at:
                os._exit(3)  # no clean-up, no final checkpoint: like a kill

        trainer.StepCheckpoint.on_train_batch_end = save_then_die
    options = trainer.PretrainingOptions(
        preset="tiny", sources=[shards], steps=steps, batch_size=BATCH, seq_length=SEQ, warmup_steps=2,
        checkpoint_every=2, eval_batches=1, log_every=1, model_overrides={"num_layers": 1},
    )
    if kill_at is None:  # a text corpus needs tf.data: one clear line, not an ImportError traceback
        import dataclasses

        from keras_electra.errors import ElectraError
        from tests.conftest import NOVELS

        try:
            trainer.run_pretraining(dataclasses.replace(options, sources=[str(NOVELS)]), output + "-text")
        except ElectraError as err:
            assert "needs TensorFlow" in str(err) and "\n" not in str(err), err
            print("TEXT REFUSED")
    result = trainer.run_pretraining(options, output, verbose=1)
    leaked = sorted(m for m in sys.modules if m.split(".")[0] in ("tensorflow", "tensorflow_text"))
    assert not leaked, leaked
    print("RESULT", result["steps"], result["trained_steps_this_run"])


if __name__ == "__main__":
    mode, *rest = sys.argv[1:]
    if mode == "first_step":
        first_step(Path(rest[0]))
    elif mode == "data_parallel":
        data_parallel(Path(rest[0]))
    elif mode == "variants":
        variants()
    elif mode == "pretrain":
        pretrain(rest[0], rest[1], int(rest[2]), int(rest[3]) if len(rest) > 3 else None)
    else:
        raise SystemExit(f"unknown mode {mode}")
