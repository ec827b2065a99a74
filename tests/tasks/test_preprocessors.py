"""Preprocessors: packing and truncation, NER alignment, QA windows and span round trips,
entity markers, multiple choice — on real data, checked against independent references."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.data.readers import read_dataset
from keras_electra.errors import VocabularyError
from keras_electra.tasks.base import IGNORE_INDEX
from keras_electra.tasks.preprocessors import (
    ElectraMultipleChoicePreprocessor,
    ElectraQuestionAnswererPreprocessor,
    ElectraRelationClassifierPreprocessor,
    ElectraTextClassifierPreprocessor,
    ElectraTokenClassifierPreprocessor,
    byte_to_char_offsets,
    marker_tokens,
)
from keras_electra.tasks.question_answerer import encode_windows
from tests.conftest import SHARED_DATA, VOCAB_UNCASED
from tests.tasks.conftest import GLUE


def _bert_pack(a: list[int], b: list[int] | None, max_len: int, cls: int, sep: int) -> tuple[list[int], list[int]]:
    """The official BERT/ELECTRA reference: `_truncate_seq_pair`, then [CLS] a [SEP] b [SEP]."""
    a, b = list(a), list(b) if b is not None else None
    if b is None:
        a = a[: max_len - 2]
        return [cls, *a, sep], [0] * (len(a) + 2)
    while len(a) + len(b) > max_len - 3:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return [cls, *a, sep, *b, sep], [0] * (len(a) + 2) + [1] * (len(b) + 1)


def test_pair_packing_matches_bert_truncation_on_mrpc(en_tokenizer):
    examples = read_dataset("mrpc", GLUE, "dev")[:64]
    seq_length = 24  # forces truncation of both segments in most pairs
    pre = ElectraTextClassifierPreprocessor(en_tokenizer, seq_length=seq_length)
    a = tf.constant([e.text_a for e in examples])
    b = tf.constant([e.text_b for e in examples])
    out = {k: v.numpy() for k, v in pre((a, b)).items()}
    ids_a = en_tokenizer.tokenize(a).to_list()
    ids_b = en_tokenizer.tokenize(b).to_list()
    truncated = 0
    for i in range(len(examples)):
        ids, types = _bert_pack(ids_a[i], ids_b[i], seq_length, en_tokenizer.cls_id, en_tokenizer.sep_id)
        truncated += len(ids_a[i]) + len(ids_b[i]) + 3 > seq_length
        n = len(ids)
        np.testing.assert_array_equal(out["token_ids"][i, :n], ids)
        np.testing.assert_array_equal(out["segment_ids"][i, :n], types)
        assert (out["token_ids"][i, n:] == en_tokenizer.pad_id).all()
        assert out["padding_mask"][i].tolist() == [1] * n + [0] * (seq_length - n)
    assert truncated > 32


def test_single_sentence_in_tf_data_graph_equals_eager(en_tokenizer):
    texts = [e.text_a for e in read_dataset("sst2", GLUE, "dev")[:40]]
    pre = ElectraTextClassifierPreprocessor(en_tokenizer, seq_length=32)
    labels = np.arange(40, dtype=np.int32) % 2
    ds = tf.data.Dataset.from_tensor_slices((texts, labels)).batch(16).map(pre)
    graph_x = np.concatenate([x["token_ids"].numpy() for x, _ in ds])
    graph_y = np.concatenate([y.numpy() for _, y in ds])
    eager = pre(tf.constant(texts))["token_ids"].numpy()
    np.testing.assert_array_equal(graph_x, eager)
    np.testing.assert_array_equal(graph_y, labels)
    assert graph_x.shape == (40, 32) and eager.dtype == np.int32
    single = pre(texts[0])["token_ids"].numpy()  # a scalar string: no batch dimension
    np.testing.assert_array_equal(single, eager[0])


TRICKY_WORDS = ["Zoë", "well-known", "U.S.", "\u2603", "a" * 150, "北京", ",", "naïve", "\u200b", "Düsseldorf", "!"]


def test_ner_alignment_on_tricky_words(en_tokenizer):
    from transformers import BertTokenizer

    reference = BertTokenizer(vocab=str(VOCAB_UNCASED), do_lower_case=True)
    pieces = [reference.tokenize(w) for w in TRICKY_WORDS]
    assert [] in pieces and ["[UNK]"] in pieces  # the zero-width space vanishes; the snowman is unknown
    tags = list(range(len(TRICKY_WORDS)))
    pre = ElectraTokenClassifierPreprocessor(en_tokenizer, seq_length=64)
    out = {k: v.numpy()[0] for k, v in pre.encode_words([TRICKY_WORDS], [tags]).items()}
    # Expected positions from the reference tokenizer: each word's first piece carries its tag.
    position = 1
    expected_labels = [IGNORE_INDEX] * 64
    expected_words = [-1] * 64
    expected_ids = [en_tokenizer.cls_id]
    for w, word_pieces in enumerate(pieces):
        if word_pieces:
            expected_labels[position] = tags[w]
        for piece in word_pieces:
            expected_words[position] = w
            expected_ids.append(reference.convert_tokens_to_ids(piece))
            position += 1
    expected_ids.append(en_tokenizer.sep_id)
    assert out["token_ids"][: len(expected_ids)].tolist() == expected_ids
    assert out["labels"].tolist() == expected_labels
    assert out["word_ids"].tolist() == expected_words


def test_ner_decoding_inverts_alignment_on_conll(en_tokenizer):
    from keras_electra.tasks.token_classifier import word_tags

    examples = read_dataset("conll2003", SHARED_DATA, "dev")[:200]
    tag_names = sorted({t for e in examples for t in e.tags})
    index = {t: i for i, t in enumerate(tag_names)}
    pre = ElectraTokenClassifierPreprocessor(en_tokenizer, seq_length=48)
    words = tf.ragged.constant([e.words for e in examples])
    tags = tf.ragged.constant([[index[t] for t in e.tags] for e in examples])
    ds = tf.data.Dataset.from_tensor_slices((words, tags)).ragged_batch(64).map(pre.encode_words)
    batches = list(ds.as_numpy_iterator())
    labels = np.concatenate([b["labels"] for b in batches])
    word_ids = np.concatenate([b["word_ids"] for b in batches])
    truncated = 0
    for i, e in enumerate(examples):
        # Perfect scores: one-hot of the aligned labels; decoding must give back the word tags.
        scores = np.zeros((48, len(tag_names)))
        scores[np.arange(48), np.maximum(labels[i], 0)] = 1.0
        decoded, _ = word_tags(scores, word_ids[i], len(e.words), tag_names)
        kept = int(word_ids[i].max()) + 1
        truncated += kept < len(e.words)
        assert decoded[:kept] == list(e.tags[:kept])
        assert all(t == "O" for t in decoded[kept:])  # words cut by truncation are predicted O
    assert truncated > 0


def test_ner_raw_text_offsets_are_characters(en_tokenizer, zh_tokenizer):
    text = "Zoë Müller moved to Düsseldorf, Germany."
    pre = ElectraTokenClassifierPreprocessor(en_tokenizer, seq_length=32)
    out = {k: v.numpy() for k, v in pre.encode_text(text).items()}
    ids = out["token_ids"][out["char_start"] >= 0]
    spans = [(s, e) for s, e in zip(out["char_start"], out["char_end"]) if s >= 0]
    for token_id, (s, e) in zip(ids, spans):
        token = en_tokenizer.id_to_token(int(token_id)).removeprefix("##")
        folded = "".join(c for c in unicodedata.normalize("NFD", text[s:e].lower()) if not unicodedata.combining(c))
        assert folded == token
    assert text[spans[-2][0]:spans[-2][1]] == "Germany"
    assert (out["word_ids"][out["char_start"] >= 0] == np.arange(len(spans))).all()  # one word per basic token

    zh = "小明在北京大学读书。"
    out = {k: v.numpy() for k, v in ElectraTokenClassifierPreprocessor(zh_tokenizer, 32).encode_text(zh).items()}
    spans = [(s, e) for s, e in zip(out["char_start"], out["char_end"]) if s >= 0]
    assert [zh[s:e] for s, e in spans] == list(zh)


def test_byte_to_char_offsets_on_chinese():
    texts = tf.constant(["北京 is 中国的", "abc"])
    offsets = tf.ragged.constant([[0, 3, 7, 10, 13, 16], [0, 1, 3]], dtype=tf.int64)
    assert byte_to_char_offsets(texts, offsets).to_list() == [[0, 1, 3, 6, 7, 8], [0, 1, 3]]


@pytest.mark.parametrize("name,split,vocab", [("xquad", "test", "uncased"), ("cmrc2018", "dev", "chinese")])
def test_qa_span_round_trip_on_real_contexts(name, split, vocab, en_tokenizer, zh_tokenizer):
    tokenizer = en_tokenizer if vocab == "uncased" else zh_tokenizer
    examples = read_dataset(name, SHARED_DATA, split)[:150]
    pre = ElectraQuestionAnswererPreprocessor(tokenizer, seq_length=160, doc_stride=48, max_query_length=32)
    encoded = encode_windows(pre, [e.question for e in examples], [e.context for e in examples], 32,
                             [e.answers[0].start for e in examples], [e.answers[0].end for e in examples])
    multi_window = 0
    for i, e in enumerate(examples):
        rows = np.flatnonzero(encoded["example_index"] == i)
        multi_window += len(rows) > 1
        found = [r for r in rows if encoded["start_positions"][r] > 0]
        assert found, f"{e.guid}: no window holds the answer"
        for r in found:
            s, t = encoded["start_positions"][r], encoded["end_positions"][r]
            start, end = encoded["char_start"][r, s], encoded["char_end"][r, t]
            assert e.context[start:end] == e.answers[0].text, e.guid
    assert multi_window > 10  # long contexts were really split


def test_qa_windows_cover_the_context_with_the_stride(en_tokenizer):
    example = max(read_dataset("xquad", SHARED_DATA, "test")[:100], key=lambda e: len(e.context))
    pre = ElectraQuestionAnswererPreprocessor(en_tokenizer, seq_length=64, doc_stride=20, max_query_length=16)
    out = {k: v.numpy() for k, v in pre.encode([example.question], [example.context]).items()}
    n_context = len(en_tokenizer.tokenize(tf.constant([example.context])).to_list()[0])
    starts = []
    seen = set()
    for row in out["context_token_index"]:
        tokens = row[row >= 0]
        assert (np.diff(tokens) == 1).all()
        starts.append(int(tokens[0]))
        seen.update(tokens.tolist())
    assert seen == set(range(n_context))
    assert starts == list(range(0, 20 * len(starts), 20))
    assert (out["token_ids"] != en_tokenizer.pad_id).sum(1).max() == 64


def test_entity_markers_become_reserved_tokens(en_tokenizer, zh_tokenizer):
    example = read_dataset("semeval", SHARED_DATA, "train")[0]
    pre = ElectraRelationClassifierPreprocessor(en_tokenizer, seq_length=64)
    assert pre.marker_tokens == ["[unused0]", "[unused1]", "[unused2]", "[unused3]"]
    from keras_electra.tasks.relation_classifier import marked_texts

    ids = pre(marked_texts([example])[0])["token_ids"].numpy().tolist()
    markers = [ids.index(i) for i in pre.marker_ids]
    assert markers == sorted(markers) or (markers[2] < markers[0])  # e2 may come first
    e1 = en_tokenizer.tokenize(tf.constant([example.e1_text])).to_list()[0]
    assert ids[markers[0] + 1 : markers[1]] == e1
    e2 = en_tokenizer.tokenize(tf.constant([example.e2_text])).to_list()[0]
    assert ids[markers[2] + 1 : markers[3]] == e2
    assert marker_tokens(zh_tokenizer.vocabulary) == ["[unused1]", "[unused2]", "[unused3]", "[unused4]"]
    with pytest.raises(VocabularyError, match="unused"):
        marker_tokens(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "[unused0]", "a"])


def test_multiple_choice_packs_each_choice_and_blanks_missing_ones(zh_tokenizer):
    example = next(e for e in read_dataset("c3", SHARED_DATA, "dev") if len(e.choices) == 3)
    pre = ElectraMultipleChoicePreprocessor(zh_tokenizer, seq_length=96, num_choices=4)
    x = pre((tf.constant([example.context]), tf.constant([example.question]),
             tf.constant([[*example.choices, ""]])))
    ids, mask = x["token_ids"].numpy()[0], x["padding_mask"].numpy()[0]
    assert ids.shape == (4, 96)
    assert (mask[3] == 0).all() and (ids[3] == zh_tokenizer.pad_id).all()
    for c, choice in enumerate(example.choices):
        choice_ids = zh_tokenizer.tokenize(tf.constant([choice])).to_list()[0]
        end = int(mask[c].sum()) - 1  # the final [SEP]
        assert ids[c, end] == zh_tokenizer.sep_id
        assert ids[c, end - len(choice_ids) : end].tolist() == choice_ids
        assert x["segment_ids"].numpy()[0, c, end] == 1
