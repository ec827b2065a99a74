"""ElectraPretrainer on real novel text: sharing, learning, XLA, precision, saving."""

from __future__ import annotations

import itertools

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_electra.config import ElectraConfig
from keras_electra.data.pretraining_data import pretraining_dataset
from keras_electra.optimization import create_optimizer
from keras_electra.pretraining.pretrainer import ElectraPretrainer
from tests.conftest import NOVELS

SEQ = 64
BATCH = 16
TINY = dict(num_layers=1)


@pytest.fixture(scope="module")
def novel_batches(uncased_tokenizer):
    """Forty real packed batches from two novels, as numpy (reused by every test)."""
    files = [str(NOVELS / "Doyle_Hound_1902.txt"), str(NOVELS / "Kipling_Captains_1896.txt")]
    ds = pretraining_dataset(files, uncased_tokenizer, seq_length=SEQ, batch_size=BATCH, seed=3, repeat=False)
    return [{k: v.numpy() for k, v in batch.items()} for batch in ds.take(40)]


def make_pretrainer(tokenizer, seed=7, **kwargs) -> ElectraPretrainer:
    keras.utils.set_random_seed(seed)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, **TINY)
    pretrainer = ElectraPretrainer(config, tokenizer.special_token_ids, seq_length=SEQ, seed=seed, **kwargs)
    pretrainer.build()
    return pretrainer


def test_generator_shares_exactly_the_embedding_variables(uncased_tokenizer):
    pretrainer = make_pretrainer(uncased_tokenizer)
    gen_ids = {id(v) for v in pretrainer.generator.weights}
    shared = [v for v in pretrainer.discriminator.weights if id(v) in gen_ids]
    names = sorted(v.path.split("/")[-1] for v in shared)
    assert names == ["beta", "gamma", "position_embeddings", "token_type_embeddings", "word_embeddings"]
    assert all(v.path.startswith("embeddings/") for v in shared)
    # The official layout: both nets read electra/embeddings/*, LayerNorm included.
    gen_names = pretrainer.generator.canonical_weights()
    disc_names = pretrainer.discriminator.canonical_weights()
    common = sorted(k for k in gen_names if k in disc_names and gen_names[k] is disc_names[k])
    assert common == sorted(
        "electra/embeddings/" + n for n in
        ("LayerNorm/beta", "LayerNorm/gamma", "position_embeddings", "token_type_embeddings", "word_embeddings")
    )

    untied = make_pretrainer(uncased_tokenizer, untied_generator_embeddings=True)
    gen_ids = {id(v) for v in untied.generator.weights}
    assert not [v for v in untied.discriminator.weights if id(v) in gen_ids]


@pytest.mark.parametrize(
    "preset, hidden, heads, ffn",
    [("small", 64, 1, 256), ("base", 256, 4, 1024), ("large", 256, 4, 1024)],
)
def test_generator_size_follows_the_paper(preset, hidden, heads, ffn):
    base = ElectraConfig.from_preset(preset)
    gen = base.generator_config()
    assert (gen.hidden_size, gen.num_heads, gen.intermediate_size) == (hidden, heads, ffn)
    assert gen.num_layers == base.num_layers and gen.embedding_size == base.embedding_size


def _unigram_baseline(batches, pretrainer) -> float:
    """Accuracy of always predicting the most frequent token at non-special positions."""
    ids = np.concatenate([b["token_ids"][b["padding_mask"] == 1] for b in batches])
    specials = set(pretrainer.special_token_ids.values())
    ids = ids[~np.isin(ids, list(specials))]
    return np.bincount(ids).max() / len(ids)


def _train_and_evaluate(tokenizer, batches, steps: int):
    pretrainer = make_pretrainer(tokenizer)
    pretrainer.compile(optimizer=create_optimizer(2e-3, steps, steps // 10), jit_compile=False)  # XLA: slower on CPU
    train = tf.data.Dataset.from_tensor_slices(
        {k: np.concatenate([b[k] for b in batches[5:]]) for k in batches[0]}
    ).batch(BATCH, drop_remainder=True).repeat()
    held_out = tf.data.Dataset.from_tensor_slices(
        {k: np.concatenate([b[k] for b in batches[:5]]) for k in batches[0]}
    ).batch(BATCH)
    start = pretrainer.evaluate(held_out, verbose=0, return_dict=True)
    pretrainer.fit(train, steps_per_epoch=steps, epochs=1, verbose=0)
    end = pretrainer.evaluate(held_out, verbose=0, return_dict=True)
    return pretrainer, start, end


def test_losses_fall_on_real_text(uncased_tokenizer, novel_batches):
    _, start, end = _train_and_evaluate(uncased_tokenizer, novel_batches, 160)
    assert end["disc_loss"] < 0.8 * start["disc_loss"], (start, end)
    assert end["gen_loss"] < start["gen_loss"] - 1.0, (start, end)


@pytest.mark.slow
def test_generator_beats_the_unigram_baseline(uncased_tokenizer, novel_batches):
    pretrainer, start, end = _train_and_evaluate(uncased_tokenizer, novel_batches, 600)
    baseline = _unigram_baseline(novel_batches, pretrainer)
    assert end["gen_accuracy"] > baseline, (baseline, end)


def test_jit_and_non_jit_steps_agree(uncased_tokenizer, novel_batches):
    batch = {k: tf.constant(v) for k, v in novel_batches[0].items()}
    inputs = {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
    pretrainer = make_pretrainer(uncased_tokenizer, seed=11)
    variables = pretrainer.discriminator.trainable_variables

    def forward_and_grads():
        with tf.GradientTape() as tape:
            logits = pretrainer.discriminator(inputs, training=False)
            gen_logits = pretrainer.generator(inputs, mask_positions=tf.zeros((BATCH, 4), tf.int32))
            loss = tf.reduce_mean(tf.square(logits)) + tf.reduce_mean(tf.nn.log_softmax(gen_logits)[..., 5])
        return logits, gen_logits, tape.gradient(loss, variables)

    compiled = tf.function(forward_and_grads, jit_compile=True)()
    eager = forward_and_grads()
    np.testing.assert_allclose(compiled[0].numpy(), eager[0].numpy(), atol=1e-4)
    np.testing.assert_allclose(compiled[1].numpy(), eager[1].numpy(), atol=1e-3)
    for a, b in zip(compiled[2], eager[2]):
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), atol=1e-5, rtol=1e-3)

    # Whole train steps: XLA's Philox stream differs from TensorFlow's, so masks and dropout
    # differ; the losses still agree closely on the same batch and weights.
    results = []
    for jit in (True, False):
        model = make_pretrainer(uncased_tokenizer, seed=11)
        model.compile(optimizer=create_optimizer(1e-3, 10, 0), jit_compile=jit)
        results.append(model.train_on_batch(batch, return_dict=True))
    for key in ("loss", "gen_loss", "disc_loss"):
        assert results[0][key] == pytest.approx(results[1][key], rel=0.05), key


def _assert_early_losses(logs: dict, vocab_size: int) -> None:
    """The losses of a nearly untrained model: the generator's cross-entropy is near ln(vocabulary), and the
    total is the paper's gen + 50 * disc (a NaN, a wrong weight or a loss on the wrong positions fails)."""
    import math

    assert 0.8 * math.log(vocab_size) < logs["gen_loss"] < 1.1 * math.log(vocab_size), logs
    assert 0.0 < logs["disc_loss"] < 1.5, logs
    assert logs["loss"] == pytest.approx(logs["gen_loss"] + 50 * logs["disc_loss"], rel=1e-4), logs


@pytest.mark.parametrize("policy", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_steps_are_finite(uncased_tokenizer, novel_batches, policy):
    pretrainer = make_pretrainer(uncased_tokenizer, dtype=policy)
    pretrainer.compile(optimizer=create_optimizer(1e-3, 10, 0), jit_compile=False)  # XLA: slower on CPU
    if policy == "mixed_float16":
        assert isinstance(pretrainer.optimizer, keras.optimizers.LossScaleOptimizer)
    for batch in itertools.islice(novel_batches, 3):
        logs = pretrainer.train_on_batch(batch, return_dict=True)
    _assert_early_losses(logs, uncased_tokenizer.vocabulary_size)
    assert pretrainer.generator.backbone.transformer_layers[0].compute_dtype in ("bfloat16", "float16")
    assert pretrainer.discriminator.backbone.embeddings.word_embeddings.dtype == "float32"


def test_save_and_load_give_identical_outputs(uncased_tokenizer, novel_batches, tmp_path):
    pretrainer = make_pretrainer(uncased_tokenizer)
    pretrainer.compile(optimizer=create_optimizer(1e-3, 10, 0))
    pretrainer.train_on_batch(novel_batches[0])
    inputs = {k: novel_batches[1][k] for k in ("token_ids", "segment_ids", "padding_mask")}

    pretrainer.save(tmp_path / "pretrainer.keras")
    restored = keras.saving.load_model(tmp_path / "pretrainer.keras")
    np.testing.assert_array_equal(restored.discriminator.predict(inputs, verbose=0),
                                  pretrainer.discriminator.predict(inputs, verbose=0))
    np.testing.assert_array_equal(restored.generator.predict(inputs, verbose=0),
                                  pretrainer.generator.predict(inputs, verbose=0))
    assert restored.generator.backbone.embeddings is restored.discriminator.backbone.embeddings

    pretrainer.discriminator.save(tmp_path / "discriminator.keras")
    alone = keras.saving.load_model(tmp_path / "discriminator.keras")
    np.testing.assert_array_equal(alone.predict(inputs, verbose=0),
                                  pretrainer.discriminator.predict(inputs, verbose=0))


def test_official_mask_sampling_trains_and_is_saved(uncased_tokenizer, novel_batches, tmp_path):
    pretrainer = make_pretrainer(uncased_tokenizer, mask_sampling="with_replacement")
    pretrainer.compile(optimizer=create_optimizer(1e-3, 10, 0))
    logs = pretrainer.train_on_batch(novel_batches[0], return_dict=True)
    _assert_early_losses(logs, uncased_tokenizer.vocabulary_size)
    pretrainer.save(tmp_path / "pretrainer.keras")
    assert keras.saving.load_model(tmp_path / "pretrainer.keras").mask_sampling == "with_replacement"
    config = make_pretrainer(uncased_tokenizer).get_config()
    assert config["mask_sampling"] == "without_replacement"
    del config["mask_sampling"]  # saved before the option existed
    assert ElectraPretrainer.from_config(config).mask_sampling == "without_replacement"


def test_mlm_objective_and_sentence_head_train(uncased_tokenizer, tmp_path):
    from keras_electra.pretraining.pretrainer import dummy_batch

    mlm = make_pretrainer(uncased_tokenizer, objective="mlm")
    assert mlm.discriminator is None
    assert mlm.generator.backbone.hidden_size == mlm.config.hidden_size  # discriminator-sized MLM
    mlm.compile(optimizer=create_optimizer(1e-3, 10, 0))
    ids = uncased_tokenizer.special_token_ids
    logs = mlm.train_on_batch(dummy_batch(4, SEQ, ids["cls"], ids["sep"], ids["pad"]), return_dict=True)
    assert "disc_loss" not in logs and logs["loss"] == pytest.approx(logs["gen_loss"])
    assert 0.8 * np.log(uncased_tokenizer.vocabulary_size) < logs["gen_loss"] < 1.1 * np.log(
        uncased_tokenizer.vocabulary_size)

    sop = make_pretrainer(uncased_tokenizer, sentence_objective="sop")
    sop.compile(optimizer=create_optimizer(1e-3, 10, 0))
    batch = dummy_batch(4, SEQ, ids["cls"], ids["sep"], ids["pad"], with_sentence_label=True)
    logs = sop.train_on_batch(batch, return_dict=True)
    assert 0.3 < logs["sentence_loss"] < 1.2 and logs["loss"] > logs["sentence_loss"]  # two classes: ~ln 2


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(objective="bert"), "objective"),
        (dict(sentence_objective="xyz"), "sentence_objective"),
        (dict(mask_token_rate=0.9, random_token_rate=0.2), "random_token_rate"),
        (dict(seq_length=4), "seq_length"),
        (dict(mask_sampling="random"), "mask_sampling"),
    ],
)
def test_bad_options_are_rejected(uncased_tokenizer, kwargs, message):
    config = ElectraConfig.from_preset("tiny", vocab_size=uncased_tokenizer.vocabulary_size, **TINY)
    kwargs = {"seq_length": SEQ, **kwargs}
    with pytest.raises(ValueError, match=message):
        ElectraPretrainer(config, uncased_tokenizer.special_token_ids, **kwargs)
