"""QA span decoding: n-best over windows, maximum answer length, max-context, no-answer threshold."""

from __future__ import annotations

import numpy as np

from keras_electra.data.readers import read_dataset
from keras_electra.tasks.preprocessors import ElectraQuestionAnswererPreprocessor
from keras_electra.tasks.question_answerer import best_answers, encode_windows, max_context_mask
from tests.conftest import SHARED_DATA


def _long_examples(tokenizer, n: int = 6):
    examples = sorted(read_dataset("xquad", SHARED_DATA, "test")[:60], key=lambda e: -len(e.context))[:n]
    pre = ElectraQuestionAnswererPreprocessor(tokenizer, seq_length=96, doc_stride=32, max_query_length=24)
    encoded = encode_windows(pre, [e.question for e in examples], [e.context for e in examples], 8,
                             [e.answers[0].start for e in examples], [e.answers[0].end for e in examples])
    return examples, encoded


def _gold_logits(encoded, cls_score: float = 0.0) -> np.ndarray:
    """Logits that put the gold span (where a window holds it) at 10 + 10, [CLS] at cls_score each."""
    logits = np.zeros((*encoded["token_ids"].shape, 2), np.float32)
    logits[:, 0, :] = cls_score
    for row, (s, e) in enumerate(zip(encoded["start_positions"], encoded["end_positions"])):
        if s > 0:
            logits[row, s, 0] = 10.0
            logits[row, e, 1] = 10.0
    return logits


def test_every_context_token_has_exactly_one_max_context_window(en_tokenizer):
    _, encoded = _long_examples(en_tokenizer)
    mask = max_context_mask(encoded["example_index"], encoded["context_token_index"])
    for ex in np.unique(encoded["example_index"]):
        rows = encoded["example_index"] == ex
        tokens = encoded["context_token_index"][rows]
        owners = {}
        for t, is_max in zip(tokens[tokens >= 0], mask[rows][tokens >= 0]):
            owners[t] = owners.get(t, 0) + int(is_max)
        assert set(owners.values()) == {1}
    assert len(encoded["example_index"]) > 2 * 6  # really several windows per example


def test_best_answer_recovers_the_gold_span_across_windows(en_tokenizer):
    examples, encoded = _long_examples(en_tokenizer)
    contexts = [e.context for e in examples]
    answers = best_answers(contexts, _gold_logits(encoded), encoded, n_best=5, max_answer_length=30)
    for e, a in zip(examples, answers):
        assert a["answer"] == e.answers[0].text and (a["start"], a["end"]) == (e.answers[0].start, e.answers[0].end)
        assert a["score"] == 20.0 and len(a["n_best"]) <= 5
        assert abs(sum(c["probability"] for c in a["n_best"]) - 1.0) < 1e-5
    # Answers longer than the limit are never proposed.
    lengths = [int(encoded["end_positions"][r] - encoded["start_positions"][r]) + 1
               for r in range(len(encoded["example_index"])) if encoded["start_positions"][r] > 0]
    short = best_answers(contexts, _gold_logits(encoded), encoded, max_answer_length=1)
    for a in short:
        assert a["answer"] == "" or len(en_tokenizer.tokenize([a["answer"]]).to_list()[0]) <= 1
    assert max(lengths) > 1


def test_no_answer_threshold(en_tokenizer):
    examples, encoded = _long_examples(en_tokenizer, n=2)
    contexts = [e.context for e in examples]
    strong_null = _gold_logits(encoded, cls_score=11.0)  # null 22 > best span 20
    assert [a["answer"] for a in best_answers(contexts, strong_null, encoded)] == [e.answers[0].text for e in examples]
    with_threshold = best_answers(contexts, strong_null, encoded, null_score_threshold=0.0)
    assert [a["answer"] for a in with_threshold] == ["", ""]
    assert all(a["null_score_diff"] == 2.0 for a in with_threshold)
    lenient = best_answers(contexts, strong_null, encoded, null_score_threshold=3.0)
    assert [a["answer"] for a in lenient] == [e.answers[0].text for e in examples]
