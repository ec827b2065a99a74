"""Over-long lines and corpora that pack into almost no examples (issue 18): a 2 MB line without spaces is
cut into pieces before tokenisation, so it yields many examples and the first batch comes within seconds;
a corpus too small for one batch is warned about, and the first batch never waits on a shuffle buffer."""

from __future__ import annotations

import random
import time

import tensorflow as tf

from keras_electra.data.corpus import MAX_LINE_CHARS, block_sentences, split_long_texts
from keras_electra.data.pretraining_data import packed_examples, pretraining_dataset
from keras_electra.data.tokenizer import ElectraTokenizer
from tests.conftest import NOVELS, VOCAB_UNCASED


def test_long_texts_are_cut_at_the_character_budget_in_order():
    texts = tf.constant(["short", "é" * 10, "abc", "x" * 9, ""])
    pieces, docs = split_long_texts(texts, tf.constant([0, 0, 1, 2, 3]), max_chars=4)
    assert [p.decode() for p in pieces.numpy()] == ["shor", "t", "éééé", "éééé", "éé", "abc", "xxxx", "xxxx", "x",
                                                    ""]  # characters, not bytes: "é" is two bytes
    assert docs.numpy().tolist() == [0, 0, 0, 0, 0, 1, 2, 2, 2, 3]
    lines = tf.constant(["First line.", "y" * (MAX_LINE_CHARS * 2 + 5), "", "Next document."])
    sentences, docs = block_sentences(lines, "sentences")
    assert [len(s) for s in sentences.numpy()] == [11, MAX_LINE_CHARS, MAX_LINE_CHARS, 5, 14]
    assert docs.numpy().tolist() == [0, 0, 0, 0, 1]


def test_one_long_line_without_spaces_yields_many_examples_and_does_not_stall(tmp_path, capsys):
    corpus = tmp_path / "one_line.txt"
    rng = random.Random(0)
    corpus.write_text("".join(rng.choice("abcdefghij") for _ in range(2_000_000)) + "\n")
    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    started = time.perf_counter()
    batch = next(iter(pretraining_dataset([corpus], tokenizer, seq_length=32, batch_size=4)))
    elapsed = time.perf_counter() - started
    print(f"first batch after {elapsed:.1f} s")
    # Before: one [CLS] [UNK] [SEP] example per pass, and a 10,000-example shuffle buffer to fill (minutes).
    assert elapsed < 20, elapsed
    assert batch["token_ids"].shape == (4, 32)
    # Full examples, not one [CLS] [UNK] [SEP] each; a pass ends with one shorter example (the document's
    # rest), which the shuffle may put in this batch.
    assert (batch["padding_mask"].numpy().sum(axis=1) == 32).sum() >= 2
    # One pass: 489 pieces of 4096 characters, each a word longer than WordPiece's 100 characters: [UNK].
    examples = list(packed_examples([corpus], tokenizer, seq_length=32).as_numpy_iterator())
    pieces = -(-2_000_000 // MAX_LINE_CHARS)
    tokens = sum(int(e["padding_mask"].sum()) - 3 for e in examples)
    assert 0.85 * pieces <= tokens <= pieces  # packing truncates a few B segments, as the official code does
    assert len(examples) >= tokens // 29 >= 14
    assert {int(t) for e in examples for t in e["token_ids"][e["padding_mask"] == 1]} == {
        tokenizer.cls_id, tokenizer.sep_id, tokenizer.unk_id}
    assert "warning" not in capsys.readouterr().err  # plenty of examples now


def test_a_corpus_smaller_than_one_batch_warns(tmp_path, capsys):
    corpus = tmp_path / "tiny.txt"
    corpus.write_text("Three short words.\n")
    batch = next(iter(pretraining_dataset([corpus], ElectraTokenizer(VOCAB_UNCASED), seq_length=32, batch_size=8)))
    assert batch["token_ids"].shape == (8, 32)
    err = capsys.readouterr().err
    assert "warning:" in err and "tiny.txt" in err and "at most 1 example" in err and "re-reads it 8 time" in err


def test_an_ordinary_corpus_gets_no_warning(capsys):
    dataset = pretraining_dataset([NOVELS / "Burnett_Lord_1886.txt"], ElectraTokenizer(VOCAB_UNCASED),
                                  seq_length=32, batch_size=4, shuffle_buffer=64)
    next(iter(dataset))
    assert "warning" not in capsys.readouterr().err
