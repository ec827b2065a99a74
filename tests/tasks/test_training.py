"""Every task trains on real data: a few optimiser steps lower its loss on the same batches.
Also the FGM adversarial step, label smoothing and seed ensembling."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_electra.data.readers import read_dataset
from keras_electra.optimization import create_optimizer
from keras_electra.tasks.base import MaskedSparseCrossentropy
from keras_electra.tasks.outputs import average_predictions
from keras_electra.tasks.registry import get_task
from keras_electra.utils.devices import resolve_jit_compile
from tests.conftest import SHARED_DATA
from tests.tasks.conftest import tiny_backbone

pytestmark = pytest.mark.backend_sensitive  # also run under KERAS_BACKEND=jax in CI (tests/conftest.py)

# task → (split to train on, sequence length, language)
TASKS = {
    "sst2": ("train", 64, "en"),
    "stsb": ("train", 64, "en"),
    "conll2003": ("train", 64, "en"),
    "xquad": ("train", 128, "en"),
    "c3": ("dev", 128, "zh"),  # the shared data has no C3 train split
    "semeval": ("train", 64, "en"),
    "chnsenticorp": ("train", 64, "zh"),
    "cluener": ("train", 64, "zh"),
}
DATA = {"sst2": SHARED_DATA / "glue", "stsb": SHARED_DATA / "glue"}


def _batches_and_model(task: str, tokenizer, batch_size: int = 16, num_batches: int = 2):
    spec = get_task(task)
    split, seq_length, _ = TASKS[task]
    examples = read_dataset(spec.dataset, DATA.get(task, SHARED_DATA), split)[: batch_size * num_batches * 2]
    model = spec.runner.build_model(tiny_backbone(tokenizer.vocabulary_size), tokenizer, seq_length, spec.labels,
                                    {"max_query_length": 32})
    spec.runner.check(examples, model, "training data")
    dataset = spec.runner.train_dataset(model, examples, batch_size, seed=0, shuffle=False)
    return spec, model, list(dataset.take(num_batches).as_numpy_iterator())  # numpy: any backend takes it


def _loss(model, loss_fn, batches) -> float:
    return float(np.mean([float(loss_fn(y, model(x, training=False))) for x, y in batches]))


@pytest.mark.parametrize("task", list(TASKS))
def test_task_trains_on_real_data(task, en_tokenizer, zh_tokenizer):
    tokenizer = zh_tokenizer if TASKS[task][2] == "zh" else en_tokenizer
    spec, model, batches = _batches_and_model(task, tokenizer)
    compile_args = spec.runner.compile_args(model, {})
    loss_fn = compile_args["loss"]
    before = _loss(model, loss_fn, batches)
    steps = 16
    # 16 steps at 5e-3 without warm-up: bias-corrected Adam is stable there. The official Adam (no
    # correction, the fine-tuning default) takes 3-6x larger early steps and relies on the recipe's warm-up.
    model.compile(optimizer=create_optimizer(5e-3, 40, 0, weight_decay_rate=0.0, bias_correction=True),
                  jit_compile=resolve_jit_compile("auto"),  # on JAX: XLA, its only compiled path
                  **compile_args)
    dataset = tf.data.Dataset.from_tensor_slices(list(range(len(batches)))).repeat()
    data = [(x, y) for x, y in batches]
    stream = dataset.map(lambda i: tf.nest.map_structure(lambda *t: tf.stack(t)[i], *data))
    history = model.fit(stream, steps_per_epoch=steps, epochs=1, verbose=0, shuffle=False)
    after = _loss(model, loss_fn, batches)
    assert np.isfinite(history.history["loss"]).all()
    assert after < 0.5 * before, f"{task}: loss {before:.4f} -> {after:.4f}"


def test_fgm_step_perturbs_then_restores_the_embeddings(en_tokenizer):
    spec, model, batches = _batches_and_model("sst2", en_tokenizer, num_batches=1)
    x, y = batches[0]
    weights = [np.array(w) for w in model.get_weights()]

    def fresh(epsilon: float, lr: float):
        clone = model.__class__.from_config(model.get_config())
        clone.set_weights(weights)
        clone.adversarial_epsilon = epsilon
        clone.compile(optimizer=keras.optimizers.SGD(lr), loss=MaskedSparseCrossentropy(),
                      jit_compile=resolve_jit_compile("auto"))
        return clone

    # With a zero learning rate the step must leave every weight exactly as it was.
    frozen = fresh(1.0, 0.0)
    frozen.train_on_batch(x, y)
    for before, after, v in zip(weights, frozen.get_weights(), frozen.weights):
        if "seed_generator" not in v.path:
            np.testing.assert_array_equal(before, after, err_msg=v.path)
    # The adversarial pass adds gradient: the update differs from the plain step's.
    keras.utils.set_random_seed(1)
    plain = fresh(0.0, 0.1)
    plain.train_on_batch(x, y)
    keras.utils.set_random_seed(1)
    adversarial = fresh(1.0, 0.1)
    adversarial.train_on_batch(x, y)
    kernel = [v.path for v in plain.weights].index("classifier/kernel")
    moved_plain = plain.get_weights()[kernel] - weights[kernel]
    moved_adv = adversarial.get_weights()[kernel] - weights[kernel]
    # SGD: the FGM update is g + g_adv, with g_adv at least as large as g (the perturbation raises the loss).
    ratio = np.abs(moved_adv).sum() / np.abs(moved_plain).sum()
    assert ratio > 1.5, ratio


def test_label_smoothing_changes_the_target():
    logits = tf.constant([[4.0, 0.0], [0.0, 4.0]])
    labels = tf.constant([0, 1])
    hard = float(MaskedSparseCrossentropy()(labels, logits))
    smooth = float(MaskedSparseCrossentropy(label_smoothing=0.2)(labels, logits))
    p = tf.nn.log_softmax(logits).numpy()
    expected = -np.mean(0.9 * p[[0, 1], [0, 1]] + 0.1 * p[[0, 1], [1, 0]])
    assert smooth == pytest.approx(expected, rel=1e-5) and smooth > hard
    ignored = float(MaskedSparseCrossentropy()(tf.constant([0, -100]), logits))
    assert ignored == pytest.approx(-p[0, 0], rel=1e-5)


def test_ensemble_averages_probabilities():
    runs = [{"scores": np.array([[0.9, 0.1], [0.4, 0.6]]), "word_ids": np.array([1])},
            {"scores": np.array([[0.3, 0.7], [0.2, 0.8]]), "word_ids": np.array([1])}]
    merged = average_predictions(runs)
    np.testing.assert_allclose(merged["scores"], [[0.6, 0.4], [0.3, 0.7]])
    assert merged["word_ids"] is runs[0]["word_ids"]


def test_few_shot_and_subsampling_are_seeded():
    from collections import Counter

    from keras_electra.tasks.task_data import few_shot, subsample

    train = read_dataset("sst2", DATA["sst2"], "train")[:2000]
    picked = few_shot(train, 8, seed=3)
    assert Counter(e.label for e in picked) == {"0": 8, "1": 8}
    assert [e.guid for e in few_shot(train, 8, seed=3)] == [e.guid for e in picked]
    assert [e.guid for e in few_shot(train, 8, seed=4)] != [e.guid for e in picked]
    order = {e.guid: i for i, e in enumerate(train)}
    assert [order[e.guid] for e in picked] == sorted(order[e.guid] for e in picked)  # original order kept
    sample = subsample(train, 100, seed=0)
    assert len(sample) == 100 and len({e.guid for e in sample}) == 100
    assert subsample(train, 5000, seed=0) is train


def test_official_tagger_bioes_no_dropout_and_sentence_summed_loss(en_tokenizer):
    """The official ELECTRA tagger: BIOES tags, no dropout, cross-entropy summed per sentence; it trains
    on real CoNLL-2003 and its predictions come back as IOB2 with the same entities."""
    from keras_electra.tasks.token_classifier import bioes_labels, convert_tags, word_tags

    spec = get_task("conll2003")
    examples = read_dataset("conll2003", SHARED_DATA, "train")[:400]
    for e in examples:  # IOB2 → BIOES → IOB2 is the identity and keeps every entity
        bioes = convert_tags(e.tags, "BIOES")
        assert convert_tags(bioes, "IOB2") == list(e.tags)
        assert all(t == "O" or t[:2] in ("B-", "I-", "E-", "S-") for t in bioes)
    assert convert_tags(["B-PER", "I-PER", "O", "B-LOC", "I-LOC", "I-LOC", "B-ORG"], "BIOES") == [
        "B-PER", "E-PER", "O", "B-LOC", "I-LOC", "E-LOC", "S-ORG"]
    assert bioes_labels(["O", "B-PER", "I-PER"]) == ["O", "B-PER", "I-PER", "E-PER", "S-PER"]

    # The encoder keeps its dropout officially too; without it here, only the head's would show.
    backbone = tiny_backbone(en_tokenizer.vocabulary_size, hidden_dropout=0.0, attention_dropout=0.0)
    model = spec.runner.build_model(backbone, en_tokenizer, 64, spec.labels, {"tagging_head": "official",
                                                                              "dropout": 0.1})
    assert model.tagging_head == "official" and model.dropout_rate == 0.0
    assert model.label_names == bioes_labels(spec.labels) and model.num_classes == 17
    batch_examples = examples[:32]
    spec.runner.check(batch_examples, model, "training data")
    x, y = next(iter(spec.runner.train_dataset(model, batch_examples, 16, seed=0, shuffle=False)))
    np.testing.assert_array_equal(np.asarray(model(x, training=True)), np.asarray(model(x, training=False)))
    default = spec.runner.build_model(backbone, en_tokenizer, 64, spec.labels, {"dropout": 0.1})
    assert default.tagging_head == "huggingface" and default.label_names == list(spec.labels)
    assert not np.array_equal(np.asarray(default(x, training=True)), np.asarray(default(x, training=False)))
    # Gold labels are BIOES ids on each word's first sub-word.
    gold = [model.label_names[i] for i in y.numpy()[0] if i >= 0]
    assert gold == convert_tags(batch_examples[0].tags, "BIOES")[: len(gold)]
    loss_fn = spec.runner.compile_args(model, {})["loss"]
    logits = model(x, training=False)
    log_probs = tf.nn.log_softmax(logits).numpy()
    labels = y.numpy()
    valid = labels >= 0
    nll = -np.take_along_axis(log_probs, np.where(valid, labels, 0)[..., None], axis=-1)[..., 0] * valid
    assert float(loss_fn(y, logits)) == pytest.approx(nll.sum(axis=1).mean(), rel=1e-5)  # summed per sentence

    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(model))
    assert restored.tagging_head == "official" and restored.label_names == model.label_names
    # Predictions are written back as IOB2.
    scores = np.zeros((5, 17), np.float32)
    for position, tag in enumerate(["O", "S-PER", "B-LOC", "E-LOC"], start=1):
        scores[position, model.label_names.index(tag)] = 1.0
    tags, _ = word_tags(scores, np.array([-1, 0, 1, 2, 3]), 4, model.label_names)
    assert tags == ["O", "B-PER", "B-LOC", "I-LOC"]
