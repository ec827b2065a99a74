"""The official ELECTRA question-answering head (google-research/electra, finetune/qa/qa_tasks.py
and qa_metrics.py): its outputs against a NumPy re-computation of the official graph, its loss,
the beam decoding on a hand-worked example and with the SQuAD scorers, training on XQuAD-en."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.data.readers import read_dataset
from keras_electra.errors import ElectraError
from keras_electra.optimization import create_optimizer
from keras_electra.tasks import metrics as task_metrics
from keras_electra.tasks.base import MODEL_KEYS
from keras_electra.tasks.question_answerer import (
    OFFICIAL_NULL_THRESHOLD,
    ElectraQuestionAnswerer,
    ElectraSpanLoss,
    decode_answers,
    electra_best_answers,
    encode_windows,
    unpack_beam,
)
from keras_electra.tasks.registry import get_task
from tests.conftest import SHARED_DATA
from tests.tasks.conftest import tiny_backbone


def _xquad(n: int):
    return read_dataset("xquad", SHARED_DATA, "test")[:n]


def _model_and_windows(tokenizer, n: int = 3, **kwargs):
    model = ElectraQuestionAnswerer.from_backbone(tiny_backbone(tokenizer.vocabulary_size), tokenizer, 64,
                                                  preprocessor_kwargs={"max_query_length": 16, "doc_stride": 24},
                                                  **kwargs)
    examples = _xquad(n)
    encoded = encode_windows(model.preprocessor, [e.question for e in examples], [e.context for e in examples], 8,
                             [e.answers[0].start for e in examples], [e.answers[0].end for e in examples])
    return model, examples, encoded


def _gelu(x: np.ndarray) -> np.ndarray:
    return tf.nn.gelu(tf.constant(x), approximate=False).numpy()


def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x - x.max(-1, keepdims=True)
    return x - np.log(np.exp(x).sum(-1, keepdims=True))


def _official(model, x: dict, start_positions: np.ndarray | None = None) -> dict:
    """`QATask.get_prediction_module` (joint_prediction, answerable_classifier,
    answerable_uses_start_logits) in NumPy, with the concat → dense(512) it really computes."""
    hidden = np.asarray(model.backbone(x), np.float64)
    w = {name: (np.asarray(layer.kernel, np.float64), np.asarray(layer.bias, np.float64))
         for name, layer in (("start", model.start_logits), ("qa_hidden", model.end_hidden),
                             ("end", model.end_logits), ("ans_hidden", model.answerable_hidden),
                             ("ans", model.answerable_logits))}
    dense = lambda v, name: v @ w[name][0] + w[name][1]  # noqa: E731
    batch, length, _ = hidden.shape
    mask = x["padding_mask"].astype(np.float64) * x["segment_ids"] + np.eye(length)[0]
    penalty = 1000.0 * (mask - 1.0)
    start_logits = dense(hidden, "start")[..., 0] + penalty
    start_p = np.exp(_log_softmax(start_logits))
    final = np.concatenate([hidden[:, 0], np.einsum("bl,blh->bh", start_p, hidden)], -1)
    answerable = dense(_gelu(dense(final, "ans_hidden")), "ans")[:, 0]
    rows = np.arange(batch)
    if start_positions is not None:
        start_features = np.broadcast_to(hidden[rows, start_positions][:, None], hidden.shape)
        end = dense(_gelu(dense(np.concatenate([start_features, hidden], -1), "qa_hidden")), "end")[..., 0]
        return {"start_logits": start_logits, "end_logits": end + penalty, "answerable_logit": answerable}
    k = model.beam_size
    start_log_probs = _log_softmax(start_logits)
    start_top_index = np.argsort(-start_log_probs, axis=-1, kind="stable")[:, :k]
    start_features = hidden[rows[:, None], start_top_index]  # [B, K, H]
    pairs = np.concatenate([np.broadcast_to(start_features[:, :, None], (batch, k, length, hidden.shape[-1])),
                            np.broadcast_to(hidden[:, None], (batch, k, length, hidden.shape[-1]))], -1)
    end_log_probs = _log_softmax(dense(_gelu(dense(pairs, "qa_hidden")), "end")[..., 0] + penalty[:, None])
    end_top_index = np.argsort(-end_log_probs, axis=-1, kind="stable")[:, :, :k]
    return {
        "start_top_log_probs": np.take_along_axis(start_log_probs, start_top_index, -1),
        "start_top_index": start_top_index,
        "end_top_log_probs": np.take_along_axis(end_log_probs, end_top_index, -1),
        "end_top_index": end_top_index,
        "answerable_logit": answerable,
    }


def test_beam_and_training_outputs_are_the_official_computation(en_tokenizer):
    model, _, encoded = _model_and_windows(en_tokenizer)
    x = {k: encoded[k] for k in MODEL_KEYS}
    ours = unpack_beam(np.asarray(model(x)))
    reference = _official(model, x)
    for key in ("start_top_index", "end_top_index"):
        np.testing.assert_array_equal(ours[key], reference[key], err_msg=key)
    for key in ("start_top_log_probs", "end_top_log_probs", "answerable_logit"):
        np.testing.assert_allclose(ours[key], reference[key], atol=2e-4, err_msg=key)
    # Training: the end logits are conditioned on the gold start (the `start_positions` input).
    gold = encoded["start_positions"]
    assert (gold > 0).any() and (gold == 0).any()  # windows with and without the answer
    train = np.asarray(model({**x, "start_positions": gold}, training=False))
    reference = _official(model, x, gold)
    assert train.shape == (*x["token_ids"].shape, 3)
    np.testing.assert_allclose(train[..., 0], reference["start_logits"], atol=2e-4)
    np.testing.assert_allclose(train[..., 1], reference["end_logits"], atol=2e-4)
    np.testing.assert_allclose(train[..., 2], np.broadcast_to(reference["answerable_logit"][:, None], gold.shape +
                                                              (x["token_ids"].shape[1],)), atol=2e-4)
    # The answer mask: only [CLS] and segment-1 tokens (context and its [SEP]) escape the -1000.
    allowed = (x["segment_ids"] * x["padding_mask"]).astype(bool)
    allowed[:, 0] = True
    assert (train[..., 0][~allowed] < -900).all() and (train[..., 0][allowed] > -900).all()


def test_loss_is_the_official_loss():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(4, 7, 3)).astype(np.float32)
    labels = np.array([[2, 3, 0], [0, 0, 1], [5, 6, 0], [0, 0, 0]], np.int32)
    rows = np.arange(4)
    start, end = _log_softmax(logits[..., 0]), _log_softmax(logits[..., 1])
    span = -(start[rows, labels[:, 0]] + end[rows, labels[:, 1]]) / 2
    z, y = logits[:, 0, 2], labels[:, 2]
    sigmoid_ce = -(y * np.log(1 / (1 + np.exp(-z))) + (1 - y) * np.log(1 - 1 / (1 + np.exp(-z))))
    expected = np.mean(span + 0.5 * sigmoid_ce)
    assert float(ElectraSpanLoss()(labels, logits)) == pytest.approx(expected, rel=1e-5)
    assert float(ElectraSpanLoss(0.0)(labels, logits)) == pytest.approx(np.mean(span), rel=1e-5)


# ----------------------------------------------------------------------- decoding
def _hand_example(answerable_logit: float):
    """One window of 8 tokens, "[CLS] q [SEP] ab cd ef gh [SEP]", context "ab cd ef gh", beam K = 3.

    start beam (log p):  [CLS] -0.3, "cd" (4) -0.5, "ab" (3) -1.0
    ends of [CLS]:        0 -0.01, 3 -3.0, 4 -4.0    → skipped: a span never starts at [CLS]
    ends of "cd" (4):     3 -0.2 (before the start: skipped), 5 -0.9, 7 -1.5 ([SEP]: skipped)
    ends of "ab" (3):     4 -0.1, 6 -2.0, 2 -2.5 (question [SEP]: skipped)

    Candidates: "ab cd" (3..4) -1.0 - 0.1 = -1.1; "cd ef" (4..5) -0.5 - 0.9 = -1.4;
    "ab cd ef gh" (3..6) -1.0 - 2.0 = -3.0. The best start alone ("cd") is not in the best span.
    """
    k = 3
    beam = np.zeros((1, k, 2 * k + 3), np.float32)
    beam[0, :, 0] = [-0.3, -0.5, -1.0]
    beam[0, :, 1] = [0, 4, 3]
    beam[0, :, 2:2 + k] = [[-0.01, -3.0, -4.0], [-0.2, -0.9, -1.5], [-0.1, -2.0, -2.5]]
    beam[0, :, 2 + k:2 + 2 * k] = [[0, 3, 4], [3, 5, 7], [4, 6, 2]]
    beam[0, :, -1] = answerable_logit
    encoded = {
        "example_index": np.array([0]),
        "context_token_index": np.array([[-1, -1, -1, 0, 1, 2, 3, -1]]),
        "char_start": np.array([[-1, -1, -1, 0, 3, 6, 9, -1]]),
        "char_end": np.array([[-1, -1, -1, 2, 5, 8, 11, -1]]),
    }
    return beam, encoded


def test_hand_worked_beam_decoding():
    context = "ab cd ef gh"
    beam, encoded = _hand_example(answerable_logit=-3.0)
    [result] = electra_best_answers([context], beam, encoded, n_best=20, max_answer_length=30)
    assert (result["answer"], result["start"], result["end"]) == ("ab cd", 0, 5)
    assert result["score"] == pytest.approx(-1.1)
    assert [(c["text"], round(c["score"], 4)) for c in result["n_best"]] == [
        ("ab cd", -1.1), ("cd ef", -1.4), ("ab cd ef gh", -3.0)]
    p = np.exp([-1.1, -1.4, -3.0]) / np.exp([-1.1, -1.4, -3.0]).sum()
    np.testing.assert_allclose([c["probability"] for c in result["n_best"]], p, rtol=1e-5)
    # A 4-token answer is longer than max_answer_length 3; n_best 1 keeps the best only.
    [short] = electra_best_answers([context], beam, encoded, n_best=1, max_answer_length=3)
    assert [c["text"] for c in short["n_best"]] == ["ab cd"]
    # SQuAD 2.0: "" iff the answerability logit (the official score_null) exceeds the threshold.
    decoding = {"n_best": 20, "max_answer_length": 30, "head": "electra", "allow_no_answer": True,
                "null_score_threshold": OFFICIAL_NULL_THRESHOLD}
    assert decode_answers([context], beam, encoded, decoding)[0]["answer"] == "ab cd"  # -3.0 <= -2.75
    beam_null, _ = _hand_example(answerable_logit=-2.0)
    [null] = decode_answers([context], beam_null, encoded, decoding)
    assert (null["answer"], null["start"], null["end"], null["null_score_diff"]) == ("", -1, -1, -2.0)
    # The SavedModel's in-graph decoder picks the same span.
    from keras_electra.export.saved_model import _electra_window_best

    valid = tf.constant(encoded["context_token_index"] >= 0)
    score, s, e, row_null = _electra_window_best(tf.constant(beam), valid, valid, {"max_answer_length": 30})
    assert (float(score[0]), int(s[0]), int(e[0]), float(row_null[0])) == (pytest.approx(-1.1), 3, 4, -3.0)


def _gold_beam(encoded, k: int = 20) -> np.ndarray:
    """A beam whose best (start, end) is the gold span in every window that holds it."""
    n, length = encoded["token_ids"].shape
    beam = np.zeros((n, k, 2 * k + 3), np.float32)
    beam[:, :, 0] = -np.arange(1, k + 1)
    beam[:, :, 1] = np.arange(k)  # starts 0..K-1 (0 is [CLS], the rest mostly question tokens)
    beam[:, :, 2:2 + k] = -np.arange(1, k + 1)
    beam[:, :, 2 + k:2 + 2 * k] = np.arange(k)
    for row, (s, e) in enumerate(zip(encoded["start_positions"], encoded["end_positions"])):
        if s > 0:
            beam[row, 0, 0], beam[row, 0, 1] = -0.01, s
            beam[row, 0, 2], beam[row, 0, 2 + k] = -0.01, e
    beam[:, :, -1] = -5.0
    return beam


def test_beam_decoding_scored_by_the_squad_scripts(en_tokenizer):
    model, examples, encoded = _model_and_windows(en_tokenizer, n=6)
    contexts = [e.context for e in examples]
    assert len(encoded["example_index"]) > len(examples)  # several windows per example
    beam = _gold_beam(encoded)
    answers = electra_best_answers(contexts, beam, encoded)
    preds = {e.guid: a["answer"] for e, a in zip(examples, answers)}
    assert task_metrics.squad_v1(preds, examples)["exact_match"] == 1.0
    # SQuAD 2.0 rule: two questions get an answerability logit above the threshold → "".
    for row in np.flatnonzero(np.isin(encoded["example_index"], [1, 4])):
        beam[row, :, -1] = 0.5
    answers = electra_best_answers(contexts, beam, encoded, null_score_threshold=OFFICIAL_NULL_THRESHOLD)
    assert [a["answer"] == "" for a in answers] == [False, True, False, False, True, False]
    preds = {e.guid: a["answer"] for e, a in zip(examples, answers)}
    na = {e.guid: a["null_score_diff"] for e, a in zip(examples, answers)}
    scores = task_metrics.squad_v2(preds, examples, na_probs=na, na_prob_thresh=OFFICIAL_NULL_THRESHOLD)
    assert scores["exact"] == pytest.approx(4 / 6) and scores["f1"] == pytest.approx(4 / 6)


# ----------------------------------------------------------------------- training
def _fit_two_batches(model, spec, batches) -> tuple[float, float]:
    """Loss on two real batches before and after 16 steps on them (no warm-up, high LR: a quick learning check)."""
    compile_args = spec.runner.compile_args(model, {})
    loss = lambda: np.mean([float(compile_args["loss"](y, model(x))) for x, y in batches])  # noqa: E731
    before = loss()
    # No warm-up at a high LR: the uncorrected (official) Adam's first steps are 3-6x larger and stall
    # here, so this short check uses bias correction, as tests/tasks/test_training.py does.
    model.compile(optimizer=create_optimizer(5e-3, 40, 0, weight_decay_rate=0.0, bias_correction=True),
                  jit_compile=False, **compile_args)
    stream = tf.data.Dataset.from_tensor_slices([0, 1]).repeat().map(
        lambda i: tf.nest.map_structure(lambda *t: tf.stack(t)[i], *batches))
    model.fit(stream, steps_per_epoch=16, epochs=1, verbose=0)
    return before, loss()


def test_trains_on_xquad_and_answers_inside_the_context(en_tokenizer):
    spec = get_task("xquad")
    examples = read_dataset("xquad", SHARED_DATA, "train")[:32]
    model = spec.runner.build_model(tiny_backbone(en_tokenizer.vocabulary_size), en_tokenizer, 128, None,
                                    {"max_query_length": 32})
    assert model.head == "electra" and model.null_score_threshold == OFFICIAL_NULL_THRESHOLD
    batches = list(spec.runner.train_dataset(model, examples, 16, seed=0, shuffle=False).take(2))
    x, y = batches[0]
    assert set(x) == {*MODEL_KEYS, "start_positions"} and y.shape[1] == 3
    before, after = _fit_two_batches(model, spec, batches)
    assert after < 0.5 * before, f"loss {before:.4f} -> {after:.4f}"
    predictions = spec.runner.predict(model, examples, 16)
    answers = spec.runner.answers(examples, predictions, model)
    assert sum(bool(a["answer"]) for a in answers) >= len(examples) // 2
    for e, a in zip(examples, answers):
        if a["answer"]:
            assert 0 <= a["start"] < a["end"] <= len(e.context) and e.context[a["start"]:a["end"]] == a["answer"]
    assert "f1" in spec.runner.score("xquad", examples, predictions, model)


def test_head_defaults_and_old_configs(en_tokenizer):
    backbone = tiny_backbone(en_tokenizer.vocabulary_size)
    for task in ("squad", "squad2", "xquad", "cmrc2018"):
        runner = get_task(task).runner
        assert runner.build_model(backbone, en_tokenizer, 64, None, {"max_query_length": 16}).head == "electra"
    spec = get_task("squad2")
    hf = spec.runner.build_model(backbone, en_tokenizer, 64, None,
                                 {**spec.options, "max_query_length": 16, "head": "huggingface"})
    assert hf.head == "huggingface" and hf.null_score_threshold == 0.0 and hf.allow_no_answer
    # A model saved before the "electra" head existed has no "head" key: it is the Hugging Face one.
    config = hf.get_config()
    for key in ("head", "beam_size", "answerable_weight"):
        config.pop(key)
    assert ElectraQuestionAnswerer.from_config(config).head == "huggingface"
    with pytest.raises(ElectraError, match="beam_size 80 exceeds seq_length 64"):
        ElectraQuestionAnswerer.from_backbone(backbone, en_tokenizer, 64, beam_size=80,
                                              preprocessor_kwargs={"max_query_length": 16})


def test_electra_head_is_not_saved_as_a_hugging_face_qa_model(en_tokenizer, tmp_path):
    from keras_electra.convert import save_huggingface
    from keras_electra.errors import CheckpointError

    model = ElectraQuestionAnswerer(tiny_backbone(en_tokenizer.vocabulary_size))
    with pytest.raises(CheckpointError, match="no Hugging Face class"):
        save_huggingface(model, tmp_path / "hf", architecture="ElectraForQuestionAnswering")
    assert not (tmp_path / "hf").exists()


def test_the_hugging_face_head_still_trains_on_xquad(en_tokenizer):
    """`--head huggingface` (kept for converted checkpoints) learns through the same runner: its loss halves on
    two real XQuAD batches, as the official head's does above."""
    spec = get_task("xquad")
    examples = read_dataset("xquad", SHARED_DATA, "train")[:32]
    model = spec.runner.build_model(tiny_backbone(en_tokenizer.vocabulary_size), en_tokenizer, 128, None,
                                    {"max_query_length": 32, "head": "huggingface"})
    assert model.head == "huggingface"
    batches = list(spec.runner.train_dataset(model, examples, 16, seed=0, shuffle=False).take(2))
    assert "start_positions" not in batches[0][0]  # only the official head conditions on the gold start
    before, after = _fit_two_batches(model, spec, batches)
    assert after < 0.5 * before, f"loss {before:.4f} -> {after:.4f}"
