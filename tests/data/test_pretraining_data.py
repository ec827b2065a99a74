"""Pretraining data on real novels: corpus reading, sentence splitting, packing, TFRecords, CLI.

Packing is checked against the corpus itself: every packed example is found, in order, in
the token stream of the text it came from (A at a sentence start, B right after A, never
across a document), so a wrong offset, a lost sentence or a crossed boundary fails.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.data import cli as data_cli
from keras_electra.data.corpus import (
    block_sentences,
    check_corpus_files,
    detect_corpus_format,
    iter_sentences,
    read_lines,
    resolve_corpus_files,
    split_sentences,
)
from keras_electra.data.pretraining_data import (
    METADATA_FILE,
    packed_examples,
    pretraining_dataset,
    read_metadata,
    write_tfrecords,
)
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import DataError
from tests.conftest import NOVELS, VOCAB_CASED

SEQ = 128
HOUND = NOVELS / "Doyle_Hound_1902.txt"  # one paragraph per line, blank lines between (0.3 MB)
OLIVER = NOVELS / "Dickens_Oliver_1839.txt"  # hard-wrapped at ~70 characters (0.9 MB)
BLEAK = NOVELS / "Dickens_Bleak_1853.txt"  # hard-wrapped, 2 MB: about 4,000 examples of 128
CAPTAINS = NOVELS / "Kipling_Captains_1896.txt"


def stack(examples: list[dict]) -> dict[str, np.ndarray]:
    return {key: np.stack([e[key] for e in examples]) for key in examples[0]}


def take(dataset: tf.data.Dataset, count: int) -> dict[str, np.ndarray]:
    batches = list(dataset.take(count).batch(1024).as_numpy_iterator())
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def segments(ids: np.ndarray, mask: np.ndarray, sep_id: int) -> tuple[np.ndarray, np.ndarray]:
    tokens = ids[: mask.sum()]
    seps = np.flatnonzero(tokens == sep_id)
    a = tokens[1 : seps[0]]
    b = tokens[seps[0] + 1 : seps[1]] if len(seps) > 1 else tokens[:0]
    return a, b


class Stream:
    """The corpus as one token stream, with sentence starts and document ends."""

    def __init__(self, documents: list[list[str]], tokenizer: ElectraTokenizer):
        ids, starts, doc_ends = [], [], []
        position = 0
        for document in documents:
            for sentence in tokenizer.tokenize(document).to_list():
                if sentence:
                    starts.append(position)
                    ids.extend(sentence)
                    position += len(sentence)
            doc_ends.append(position)
        self.ids = np.array(ids)
        self.starts = np.array(starts)
        self.doc_ends = np.array(doc_ends)

    def find(self, tokens: np.ndarray, cursor: int, window: int = 200) -> int:
        """The first sentence start at or after `cursor` where `tokens` begin."""
        first = np.searchsorted(self.starts, cursor)
        for start in self.starts[first : first + window]:
            if np.array_equal(self.ids[start : start + len(tokens)], tokens):
                return int(start)
        raise AssertionError(f"segment {tokens[:8]} not found after position {cursor}")

    def crosses_document(self, start: int, end: int) -> bool:
        return bool(np.any((self.doc_ends > start) & (self.doc_ends < end)))


def walk(examples: dict, stream: Stream, sep_id: int, objective: str | None = None) -> dict[str, int]:
    """Find every example in the stream in order; check B follows A (or not, for a random B)."""
    cursor = 0
    counts = {"continued": 0, "swapped": 0, "random": 0}
    labels = examples.get("sentence_label", np.zeros(len(examples["token_ids"]), int))
    for ids, mask, label in zip(examples["token_ids"], examples["padding_mask"], labels):
        a, b = segments(ids, mask, sep_id)
        first, second = (b, a) if objective == "sop" and label == 1 else (a, b)
        start = stream.find(first, cursor)
        follows = np.array_equal(stream.ids[start + len(first) : start + len(first) + len(second)], second)
        if objective == "nsp" and label == 1:
            assert not follows, "a random B must not be the text that follows A"
            counts["random"] += 1
            end = start + len(first)
        else:
            assert follows, "B must be the text right after A"
            counts["swapped" if objective == "sop" and label == 1 else "continued"] += 1
            end = start + len(first) + len(second)
        assert not stream.crosses_document(start, end), "an example crossed a document boundary"
        cursor = end
    return counts


# --- corpus ----------------------------------------------------------------------------------
def test_resolve_corpus_files_and_errors(tmp_path):
    files = resolve_corpus_files([NOVELS])
    assert len(files) == len(list(NOVELS.glob("*.txt"))) and files == sorted(files)
    assert resolve_corpus_files(str(NOVELS / "Doyle_*.txt")) == sorted(NOVELS.glob("Doyle_*.txt"))
    assert resolve_corpus_files([HOUND, HOUND]) == [HOUND]
    with pytest.raises(DataError, match="corpus path not found: .*missing.txt"):
        resolve_corpus_files([tmp_path / "missing.txt"])
    (tmp_path / "data.csv").write_text("a,b\n")
    with pytest.raises(DataError, match=f"corpus directory {tmp_path} contains no .txt files"):
        resolve_corpus_files([tmp_path])
    with pytest.raises(DataError, match="matches no files"):
        resolve_corpus_files([str(tmp_path / "*.txt")])


def test_check_corpus_rejects_empty_and_non_utf8(tmp_path):
    assert check_corpus_files([HOUND, OLIVER]) == HOUND.stat().st_size + OLIVER.stat().st_size
    blank = tmp_path / "blank.txt"
    blank.write_bytes(b"\xef\xbb\xbf\r\n  \r\n\t\n")
    with pytest.raises(DataError, match="corpus is empty .*blank.txt"):
        check_corpus_files([blank])
    latin1 = tmp_path / "latin1.txt"
    latin1.write_bytes(HOUND.read_bytes()[:5000] + "café".encode("latin-1") + b"\n")
    with pytest.raises(DataError, match=r"latin1.txt is not UTF-8 text \(bad byte at offset 5003\)"):
        check_corpus_files([latin1])
    tokenizer = ElectraTokenizer(VOCAB_CASED, lower_case=False)
    with pytest.raises(DataError, match="empty"):
        packed_examples([blank], tokenizer)
    with pytest.raises(DataError, match="not UTF-8"):
        pretraining_dataset([latin1], tokenizer)


def test_bom_and_crlf_are_gone_from_sentences():
    raw = HOUND.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and b"\r\n" in raw  # the data really has both
    sentences = list(iter_sentences([HOUND]))
    assert not sentences[0].startswith("\ufeff")
    assert not any("\r" in s or "\n" in s for s in sentences)
    # Nothing is lost: the sentences hold every non-space character of the novel.
    text = raw.decode("utf-8-sig")
    assert "".join("".join(sentences).split()) == "".join(text.split())


def test_sentence_splitter_on_abbreviations_quotes_and_cjk():
    pieces = split_sentences([
        '"Hello," said Mr. Holmes. "How are you?" she asked. Dr. J. R. Watson went to St. Paul\'s.',
        "'Very good, sir.' Jules walked away... It was I. Then he left! Really? No. 5 is here.",
        "今天天气很好。我们去公园吧！好吗？",
    ]).to_list()
    assert [p.decode() for p in pieces[0]] == [
        '"Hello," said Mr. Holmes.', '"How are you?" she asked.', "Dr. J. R. Watson went to St. Paul's.",
    ]
    assert [p.decode() for p in pieces[1]] == [
        "'Very good, sir.'", "Jules walked away...", "It was I.", "Then he left!", "Really?", "No. 5 is here.",
    ]
    assert [p.decode() for p in pieces[2]] == ["今天天气很好。", "我们去公园吧！", "好吗？"]


def test_sentences_of_real_hard_wrapped_text():
    sentences = list(iter_sentences([OLIVER], "paragraphs"))
    assert len(sentences) > 5000
    # Hard-wrapped lines are joined: no sentence ends mid-word at a line break.
    assert not any(s.endswith((" Mr.", " Mrs.", " Dr.")) for s in sentences)
    ends = np.mean([s.rstrip("'\")").endswith((".", "!", "?", ":", ";")) for s in sentences])
    assert ends > 0.9
    assert any("Mr. Bumble" in s for s in sentences)


def test_corpus_format_detection(tmp_path):
    assert {detect_corpus_format([path]) for path in (HOUND, OLIVER, CAPTAINS)} == {"paragraphs"}
    sentences = list(iter_sentences([HOUND]))[:1200]
    path = tmp_path / "sentences.txt"
    path.write_text("\n\n".join("\n".join(sentences[i : i + 40]) for i in range(0, 1200, 40)) + "\n")
    assert detect_corpus_format([path]) == "sentences"
    found, doc_index = block_sentences(tf.constant(read_lines_list(path)), "sentences")
    assert len(found) == 1200 and doc_index.numpy().max() == 29


def read_lines_list(path) -> list[str]:
    return list(read_lines(path))


# --- packing -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def bleak_examples(uncased_tokenizer):
    """Every example of one packing of Bleak House (a few thousand)."""
    return take(packed_examples([BLEAK], uncased_tokenizer, SEQ, seed=5), 100_000)


def test_packed_examples_shapes_and_invariants(bleak_examples, uncased_tokenizer):
    ex = bleak_examples
    n = len(ex["token_ids"])
    assert n > 3000
    for key in ("token_ids", "segment_ids", "padding_mask"):
        assert ex[key].shape == (n, SEQ) and ex[key].dtype == np.int32
    ids, segment, mask = ex["token_ids"], ex["segment_ids"], ex["padding_mask"]
    assert np.all(ids[:, 0] == uncased_tokenizer.cls_id)
    np.testing.assert_array_equal(mask, (ids != uncased_tokenizer.pad_id).astype(np.int32))
    assert np.all(np.diff(mask, axis=1) <= 0)  # padding only at the end
    seps = (ids == uncased_tokenizer.sep_id).sum(axis=1)
    assert set(np.unique(seps)) <= {1, 2}
    lengths = mask.sum(axis=1)
    assert np.all(ids[np.arange(n), lengths - 1] == uncased_tokenizer.sep_id)  # ends with [SEP]
    assert np.all(np.diff(np.where(mask == 1, segment, 1), axis=1) >= 0)  # 0 ... 0 1 ... 1, then 0 padding
    assert np.all(segment[mask == 0] == 0)
    first_sep = np.argmax(ids == uncased_tokenizer.sep_id, axis=1)
    ones = segment.sum(axis=1)
    np.testing.assert_array_equal(ones, np.where(seps == 2, lengths - first_sep - 1, 0))
    assert not np.isin(ids[mask == 1], [uncased_tokenizer.mask_id]).any()


def test_packing_statistics_follow_the_official_recipe(bleak_examples, uncased_tokenizer):
    ids, mask = bleak_examples["token_ids"], bleak_examples["padding_mask"]
    lengths = mask.sum(axis=1)
    single = np.mean((ids == uncased_tokenizer.sep_id).sum(axis=1) == 1)
    short = np.mean(lengths < SEQ)
    # 10% single-segment by design, plus pairs whose crossing sentence went to A and left B empty.
    assert 0.09 <= single <= 0.2, single
    # 5% random short targets, plus the ends of the novel's 17 blocks of lines.
    assert 0.03 <= short <= 0.08, short
    assert lengths[lengths < SEQ].min() >= 5
    # Short targets are uniform-ish in [5, 128]: their lengths are spread out, not clustered.
    assert np.median(lengths[lengths < SEQ]) < 0.8 * SEQ


def test_every_example_is_found_in_order_in_the_text(bleak_examples, uncased_tokenizer):
    stream = Stream([list(iter_sentences([BLEAK]))], uncased_tokenizer)
    counts = walk(bleak_examples, stream, uncased_tokenizer.sep_id)
    assert counts["continued"] == len(bleak_examples["token_ids"])
    covered = bleak_examples["padding_mask"].sum() - 2 * len(bleak_examples["token_ids"])
    # As in the official code, the part of the last sentence that overshoots the length is
    # dropped, not carried over: Dickens's long sentences lose about 14% of the tokens.
    assert covered > 0.8 * len(stream.ids)


def test_sentence_format_documents_are_never_crossed(tmp_path, uncased_tokenizer):
    sentences = list(iter_sentences([CAPTAINS]))[:3000]
    rng = np.random.default_rng(0)
    documents, i = [], 0
    while i < len(sentences):
        size = int(rng.integers(1, 40))
        documents.append(sentences[i : i + size])
        i += size
    path = tmp_path / "docs.txt"
    path.write_text("\n\n".join("\n".join(doc) for doc in documents) + "\n", encoding="utf-8")
    examples = take(packed_examples([path], uncased_tokenizer, SEQ, seed=1, corpus_format="auto"), 10_000)
    counts = walk(examples, Stream(documents, uncased_tokenizer), uncased_tokenizer.sep_id)
    assert counts["continued"] == len(examples["token_ids"]) > 300
    # Short documents end examples early, so more of them are short than with running text.
    assert np.mean(examples["padding_mask"].sum(axis=1) < SEQ) > 0.1


@pytest.mark.parametrize("objective", ["sop", "nsp"])
def test_sentence_objectives_label_what_they_did(objective, uncased_tokenizer):
    examples = take(packed_examples([OLIVER], uncased_tokenizer, SEQ, seed=2, sentence_objective=objective), 10_000)
    labels = examples["sentence_label"]
    assert labels.dtype == np.int32 and set(np.unique(labels)) == {0, 1}
    pairs = (examples["token_ids"] == uncased_tokenizer.sep_id).sum(axis=1) == 2
    assert np.all(labels[~pairs] == 0)
    assert 0.45 <= labels[pairs].mean() <= 0.55
    counts = walk(examples, Stream([list(iter_sentences([OLIVER]))], uncased_tokenizer), uncased_tokenizer.sep_id,
                  objective)
    changed = counts["swapped"] if objective == "sop" else counts["random"]
    assert changed == labels.sum()


def test_nsp_takes_random_segments_from_another_file(uncased_tokenizer):
    files = [HOUND, CAPTAINS]
    examples = take(packed_examples(files, uncased_tokenizer, SEQ, seed=4, sentence_objective="nsp"), 4000)
    streams = [Stream([list(iter_sentences([path]))], uncased_tokenizer) for path in files]
    heads = [{} for _ in streams]
    for stream, head in zip(streams, heads):
        for start in stream.starts:
            head.setdefault(tuple(stream.ids[start : start + 4]), []).append(start)

    def sources(tokens) -> set[int]:
        """The novels in which `tokens` start at a sentence start."""
        return {
            i for i, (stream, head) in enumerate(zip(streams, heads))
            if any(np.array_equal(stream.ids[p : p + len(tokens)], tokens) for p in head.get(tuple(tokens[:4]), []))
        }

    other = same = 0
    for ids, mask, label in zip(examples["token_ids"], examples["padding_mask"], examples["sentence_label"]):
        a, b = segments(ids, mask, uncased_tokenizer.sep_id)
        if label == 1 and len(a) >= 8 and len(b) >= 8:
            from_a, from_b = sources(a), sources(b)
            assert len(from_a) == 1 and len(from_b) >= 1, "both segments start sentences of the corpus"
            if len(from_b) == 1:
                other += from_a != from_b
                same += from_a == from_b
    # Only the very first block (about a fifth of the examples here) has no other file to draw from.
    assert other > 250 and other > 3 * same, (other, same)


def test_packing_is_deterministic_under_a_seed(uncased_tokenizer):
    def batches(seed):
        dataset = pretraining_dataset([HOUND, OLIVER], uncased_tokenizer, SEQ, batch_size=16, seed=seed,
                                      shuffle_buffer=2000)
        return [b["token_ids"].numpy() for b in dataset.take(6)]

    first, again, other = batches(11), batches(11), batches(12)
    for x, y in zip(first, again):
        np.testing.assert_array_equal(x, y)
    assert any(not np.array_equal(x, y) for x, y in zip(first, other))


def test_pretraining_dataset_batches_have_static_shapes(uncased_tokenizer):
    dataset = pretraining_dataset([str(NOVELS / "Doyle_*.txt")], uncased_tokenizer, seq_length=64, batch_size=8,
                                  sentence_objective="sop", shuffle_buffer=500)
    for key in ("token_ids", "segment_ids", "padding_mask", "sentence_label"):
        assert dataset.element_spec[key].dtype == tf.int32
    assert dataset.element_spec["token_ids"].shape == (8, 64)
    assert dataset.element_spec["sentence_label"].shape == (8,)
    batch = next(iter(dataset))
    assert batch["token_ids"].shape == (8, 64) and np.all(batch["token_ids"][:, 0] == uncased_tokenizer.cls_id)


def test_repeat_packs_each_epoch_anew(uncased_tokenizer):
    path = [NOVELS / "Barclay_Postern_1911.txt"]
    once = take(packed_examples(path, uncased_tokenizer, SEQ, seed=0), 100_000)["token_ids"]
    repeated = packed_examples(path, uncased_tokenizer, SEQ, seed=0, repeat=True)
    both = take(repeated, 2 * len(once) + 50)["token_ids"]
    np.testing.assert_array_equal(both[: len(once)], once)
    second = both[len(once) : 2 * len(once)]
    assert not np.array_equal(second[:50], once[:50])  # a new packing, not a replay


def test_option_errors(uncased_tokenizer):
    with pytest.raises(DataError, match="seq_length must be at least 8"):
        pretraining_dataset([HOUND], uncased_tokenizer, seq_length=7)
    with pytest.raises(DataError, match="sentence_objective"):
        pretraining_dataset([HOUND], uncased_tokenizer, sentence_objective="next")
    with pytest.raises(DataError, match="corpus_format"):
        pretraining_dataset([HOUND], uncased_tokenizer, corpus_format="lines")
    with pytest.raises(DataError, match="corpus path not found"):
        pretraining_dataset(["/nonexistent/corpus.txt"], uncased_tokenizer)
    with pytest.raises(DataError, match="tokenizer"):
        pretraining_dataset([HOUND], None)
    # The shortest legal length packs too.
    tiny = take(packed_examples([HOUND], uncased_tokenizer, 8, seed=0), 50)
    assert tiny["token_ids"].shape == (50, 8) and np.all(tiny["padding_mask"].sum(axis=1) >= 3)


# --- TFRecords and CLI -----------------------------------------------------------------------
@pytest.fixture(scope="module")
def shards(tmp_path_factory, uncased_tokenizer):
    output = tmp_path_factory.mktemp("shards") / "hound"
    metadata = write_tfrecords([HOUND], uncased_tokenizer, output, seq_length=64, num_shards=3, seed=9,
                               sentence_objective="sop")
    return output, metadata


def test_tfrecords_round_trip(shards, uncased_tokenizer):
    output, metadata = shards
    expected = take(packed_examples([HOUND], uncased_tokenizer, 64, seed=9, sentence_objective="sop"), 100_000)
    assert metadata == read_metadata(output)
    assert metadata["count"] == len(expected["token_ids"]) == sum(metadata["shards"].values())
    assert metadata["tokens"] == int(expected["padding_mask"].sum())
    assert sorted(os.listdir(output)) == sorted([*metadata["shards"], METADATA_FILE, "vocab.txt", "tokenizer.json"])
    dataset = pretraining_dataset(output, uncased_tokenizer, seq_length=64, batch_size=1, shuffle_buffer=0,
                                  repeat=False, sentence_objective="sop")
    read = {k: np.concatenate(v) for k, v in stack(list(dataset.as_numpy_iterator())).items()}

    def rows(examples):
        columns = [examples[k].reshape(len(examples["token_ids"]), -1) for k in sorted(examples)]
        return sorted(map(tuple, np.concatenate(columns, axis=1).tolist()))

    assert rows(read) == rows(expected)
    assert ElectraTokenizer.from_directory(output).vocabulary == uncased_tokenizer.vocabulary


def test_tfrecord_reading_checks_the_metadata(shards, uncased_tokenizer):
    output, _ = shards
    with pytest.raises(DataError, match="seq_length 64, but 128"):
        pretraining_dataset(output, uncased_tokenizer, seq_length=128)
    with pytest.raises(DataError, match="sentence_objective=sop, not nsp"):
        pretraining_dataset(output, uncased_tokenizer, seq_length=64, sentence_objective="nsp")
    with pytest.raises(DataError, match="another vocabulary"):
        pretraining_dataset(output, ElectraTokenizer(VOCAB_CASED, lower_case=False), seq_length=64)
    with pytest.raises(DataError, match="mix TFRecord shards and text"):
        pretraining_dataset([output, HOUND], uncased_tokenizer, seq_length=64)
    batch = next(iter(pretraining_dataset(sorted(output.glob("*.tfrecord")), None, seq_length=64, batch_size=4)))
    assert batch["token_ids"].shape == (4, 64) and "sentence_label" not in batch


def test_write_tfrecords_is_atomic_and_refuses_foreign_directories(tmp_path, uncased_tokenizer):
    foreign = tmp_path / "notes"
    foreign.mkdir()
    (foreign / "keep.md").write_text("mine")
    with pytest.raises(DataError, match="is not a build-data directory"):
        write_tfrecords([HOUND], uncased_tokenizer, foreign, seq_length=64)
    assert os.listdir(foreign) == ["keep.md"]
    blank = tmp_path / "blank.txt"
    blank.write_text("\n\n")
    with pytest.raises(DataError, match="empty"):
        write_tfrecords([blank], uncased_tokenizer, tmp_path / "out", seq_length=64)
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def run_cli(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    data_cli.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return args.func(args)


def test_cli_build_vocab_then_build_data(tmp_path, capsys):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    lines = [line for line in read_lines(HOUND) if line.strip()][:1200]
    (corpus / "hound.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert run_cli("build-vocab", "--corpus", str(corpus), "--vocab-size", "1000", "--cased",
                   "--output", str(tmp_path / "vocab" / "vocab.txt")) == 0
    out = capsys.readouterr().out
    assert "tokens to" in out and "(cased, accents kept)" in out
    assert json.loads((tmp_path / "vocab" / "tokenizer.json").read_text())["lower_case"] is False
    assert run_cli("build-data", "--corpus", str(corpus), "--vocab", str(tmp_path / "vocab" / "vocab.txt"),
                   "--seq-length", "32", "--output", str(tmp_path / "data"), "--num-shards", "2") == 0
    out = capsys.readouterr().out
    metadata = read_metadata(tmp_path / "data")
    assert f"wrote {metadata['count']} examples of length 32" in out and str(tmp_path / "data") in out
    assert metadata["lower_case"] is False and metadata["num_shards"] == 2  # casing from tokenizer.json
    tokenizer = ElectraTokenizer.from_directory(tmp_path / "data")
    batch = next(iter(pretraining_dataset(tmp_path / "data", tokenizer, seq_length=32, batch_size=4)))
    assert int(tf.reduce_max(batch["token_ids"])) < tokenizer.vocabulary_size
