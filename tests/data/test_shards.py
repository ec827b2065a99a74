"""ArrayRecord shards (keras_electra.data.shards): the same examples as the TFRecords, read by grain."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from keras_electra.cli import main as cli_main
from keras_electra.data import shards
from keras_electra.data.shards import shard_batches, shard_examples, write_shards
from keras_electra.errors import DataError
from tests.conftest import NOVELS, VOCAB_UNCASED

HOUND = NOVELS / "Doyle_Hound_1902.txt"  # 0.3 MB: 991 examples of 64 tokens (seed 5)
SEQ = 64


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The same corpus, seed and options through `build-data` in both formats (the CLI, as a user runs it)."""
    root = tmp_path_factory.mktemp("build")
    common = ["build-data", "--corpus", str(HOUND), "--vocab", str(VOCAB_UNCASED), "--uncased", "--seq-length",
              str(SEQ), "--seed", "5", "--sentence-objective", "sop"]
    assert cli_main([*common, "--output", str(root / "tfrecord"), "--num-shards", "3"]) == 0
    assert cli_main([*common, "--output", str(root / "arrayrecord"), "--format", "arrayrecord",
                     "--shard-size", "400"]) == 0
    return root / "tfrecord", root / "arrayrecord"


def _tfrecord_examples_in_written_order(directory) -> dict[str, np.ndarray]:
    """The TFRecord shards are written round-robin: example i is record i // n of shard i % n."""
    import tensorflow as tf

    from keras_electra.data.pretraining_data import parse_examples, read_metadata

    metadata = read_metadata(directory)
    per_shard = []
    for name in metadata["shards"]:
        records = list(tf.data.TFRecordDataset(str(directory / name)).batch(100_000).as_numpy_iterator())
        per_shard.append(parse_examples(records[0], SEQ, "sop"))
    n = len(per_shard)
    return {key: np.stack([per_shard[i % n][key][i // n].numpy() for i in range(metadata["count"])])
            for key in per_shard[0]}


def _stack(examples) -> dict[str, np.ndarray]:
    examples = list(examples)
    return {key: np.stack([e[key] for e in examples]) for key in examples[0]}


def test_arrayrecord_shards_hold_exactly_the_tfrecord_examples(built):
    tfrecord, arrayrecord = built
    expected = _tfrecord_examples_in_written_order(tfrecord)
    stored = _stack(shard_examples(arrayrecord))
    assert len(stored["token_ids"]) == len(expected["token_ids"])
    assert sorted(stored) == sorted(expected) == ["padding_mask", "segment_ids", "sentence_label", "token_ids"]
    for key in expected:  # the same examples in the same order, int32
        assert stored[key].dtype == np.int32
        np.testing.assert_array_equal(stored[key], expected[key], err_msg=key)

    meta_tf = json.loads((tfrecord / "metadata.json").read_text())
    meta = shards.read_shard_metadata(arrayrecord)
    assert meta["format"] == "arrayrecord" and meta_tf["format"] != meta["format"]
    for key in ("count", "tokens", "seq_length", "vocab_size", "vocab_sha256", "lower_case", "strip_accents",
                "corpus_format", "seed", "sources", "sentence_objective", "features"):
        assert meta[key] == meta_tf[key], key
    assert meta["count"] > 900 and meta["num_shards"] == -(-meta["count"] // 400)
    assert list(meta["shards"].values())[:-1] == [400] * (meta["num_shards"] - 1)
    assert sorted(os.listdir(arrayrecord)) == sorted([*meta["shards"], "metadata.json", "vocab.txt", "tokenizer.json"])
    assert (arrayrecord / "vocab.txt").read_text() == (tfrecord / "vocab.txt").read_text()
    assert json.loads((arrayrecord / "tokenizer.json").read_text()) == json.loads(
        (tfrecord / "tokenizer.json").read_text())
    # The compact encoding: n, then n uint16 ids, n uint8 segments, the int32 label (before compression).
    source, _ = shards.shard_source(arrayrecord)
    lengths = [len(source[i]) for i in range(len(source))]
    stored_lengths = [2 + 3 * int(n) + 4 for n in expected["padding_mask"].sum(axis=1)]
    assert lengths == stored_lengths


def test_shard_batches_are_deterministic_and_cover_every_example_once_per_epoch(built):
    _, directory = built
    stored = _stack(shard_examples(directory))
    count, batch = len(stored["token_ids"]), 64
    rows_in_order = [tuple(r) for r in np.concatenate([stored["token_ids"], stored["segment_ids"]], 1).tolist()]
    rows = set(rows_in_order)
    assert len(rows) == count  # no duplicate examples, so coverage is checked by identity

    def take(iterator, n):
        return [next(iterator) for _ in range(n)]

    epochs = 2
    n_batches = -(-epochs * count // batch) + 1
    first = take(shard_batches(directory, batch, seed=3), n_batches)
    again = take(shard_batches(directory, batch, seed=3), n_batches)
    other = take(shard_batches(directory, batch, seed=4), 2)
    for a, b in zip(first, again):
        for key in a:
            np.testing.assert_array_equal(a[key], b[key])
    assert not np.array_equal(first[0]["token_ids"], other[0]["token_ids"])
    for b in first:  # static shapes, int32
        assert {k: (v.shape, v.dtype) for k, v in b.items()} == {
            "token_ids": ((batch, SEQ), np.int32), "segment_ids": ((batch, SEQ), np.int32),
            "padding_mask": ((batch, SEQ), np.int32), "sentence_label": ((batch,), np.int32)}

    stream = {k: np.concatenate([b[k] for b in first]) for k in first[0]}
    index = {key: i for i, key in enumerate(rows_in_order)}
    epoch_orders = []
    for e in range(epochs):  # each epoch is a permutation of the stored examples, labels kept with them
        part = {k: v[e * count:(e + 1) * count] for k, v in stream.items()}
        keys = [tuple(r) for r in np.concatenate([part["token_ids"], part["segment_ids"]], 1).tolist()]
        assert len(set(keys)) == count and set(keys) == rows
        positions = np.array([index[k] for k in keys])
        np.testing.assert_array_equal(part["sentence_label"], stored["sentence_label"][positions])
        np.testing.assert_array_equal(part["padding_mask"], stored["padding_mask"][positions])
        epoch_orders.append(positions)
    assert not np.array_equal(epoch_orders[0], epoch_orders[1])  # reshuffled each epoch
    assert not np.array_equal(epoch_orders[0], np.arange(count))  # and shuffled at all

    # Resuming at batch k gives batch k of the same stream.
    resumed = take(shard_batches(directory, batch, seed=3, start_batch=5), 3)
    for a, b in zip(resumed, first[5:8]):
        np.testing.assert_array_equal(a["token_ids"], b["token_ids"])

    # No shuffle, no repeat: the stored order, the remainder dropped.
    plain = list(shard_batches(directory, batch, seed=0, shuffle=False, repeat=False))
    assert len(plain) == count // batch
    np.testing.assert_array_equal(np.concatenate([b["token_ids"] for b in plain]),
                                  stored["token_ids"][:count // batch * batch])


def _example(tokens: list[int], seq: int = 8, label: int | None = None) -> dict[str, np.ndarray]:
    n = len(tokens)
    example = {"token_ids": np.array(tokens + [0] * (seq - n), np.int32),
               "segment_ids": np.array([0] * (n // 2) + [1] * (n - n // 2) + [0] * (seq - n), np.int32),
               "padding_mask": np.array([1] * n + [0] * (seq - n), np.int32)}
    if label is not None:
        example["sentence_label"] = np.int32(label)
    return example


VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *(f"w{i}" for i in range(100))]


def test_write_shards_round_trip_and_bad_input(tmp_path):
    examples = [_example([2, 10 + i, 3, 20 + i, 3]) for i in range(7)] + [_example([2, 5, 6, 7, 8, 9, 3, 3])]
    meta = write_shards(examples, tmp_path / "s", seq_length=8, vocab=VOCAB, shard_size=3)
    assert meta["num_shards"] == 3 and list(meta["shards"].values()) == [3, 3, 2] and meta["count"] == 8
    assert meta["tokens"] == 5 * 7 + 8 and meta["lower_case"] is None
    assert not (tmp_path / "s" / "tokenizer.json").exists()  # casing unknown: not invented
    for got, want in zip(shard_examples(tmp_path / "s"), examples, strict=True):
        for key in want:
            np.testing.assert_array_equal(got[key], want[key])
    # A big vocabulary stores int32 ids.
    big = ["[PAD]", *(f"t{i}" for i in range(70_000))]
    meta = write_shards([_example([69_999, 2, 3])], tmp_path / "big", seq_length=8, vocab=big)
    assert meta["token_dtype"] == "<i4"
    assert next(shard_examples(tmp_path / "big"))["token_ids"][0] == 69_999

    bad_padding = _example([2, 5, 3])
    bad_padding["padding_mask"][6] = 1
    wrong_pad = _example([2, 5, 3])
    wrong_pad["token_ids"][7] = 9
    cases = [
        ([], "no examples"),
        ([bad_padding], "example 0: padding_mask is not ones followed by zeros"),
        ([_example([2, 3]), wrong_pad], r"example 1: padding positions must hold the \[PAD\] id 0"),
        ([{"token_ids": np.zeros(8)}], "example 0 lacks 'segment_ids'"),
        ([_example([2, 3], seq=9)], r"example 0: token_ids has shape \(9,\), expected \(8,\)"),
        ([_example([2, 3], label=1), _example([2, 3])], "example 1 lacks 'sentence_label'"),
        ([_example([2, 70_000, 3])], r"token ids outside \[0, 65535\]"),
    ]
    for examples, message in cases:
        with pytest.raises(DataError, match=message):
            write_shards(examples, tmp_path / "bad", seq_length=8, vocab=VOCAB)
        assert not (tmp_path / "bad").exists()  # atomic: nothing half-written
    (tmp_path / "foreign").mkdir()
    (tmp_path / "foreign" / "notes.txt").write_text("mine")
    with pytest.raises(DataError, match="is not a build-data directory"):
        write_shards([_example([2, 3])], tmp_path / "foreign", seq_length=8, vocab=VOCAB)
    # A rebuild replaces the directory whole.
    write_shards([_example([2, 3])], tmp_path / "s", seq_length=8, vocab=VOCAB)
    assert shards.read_shard_metadata(tmp_path / "s")["count"] == 1


def test_reading_damaged_or_foreign_directories_is_one_line(tmp_path, built):
    tfrecord, arrayrecord = built
    with pytest.raises(DataError, match="format 'keras_electra.pretraining_tfrecords', not 'arrayrecord'"):
        next(shard_batches(tfrecord, 4, seed=0))
    with pytest.raises(DataError, match="metadata.json not found"):
        next(shard_batches(tmp_path, 4, seed=0))
    with pytest.raises(DataError, match="batch_size must be positive"):
        next(shard_batches(arrayrecord, 0, seed=0))
    with pytest.raises(DataError, match="fewer than one batch of 100000"):
        next(shard_batches(arrayrecord, 100_000, seed=0, repeat=False))

    write_shards([_example([2, i + 5, 3]) for i in range(4)], tmp_path / "s", seq_length=8, vocab=VOCAB,
                 shard_size=2)
    names = list(shards.read_shard_metadata(tmp_path / "s")["shards"])
    metadata = json.loads((tmp_path / "s" / "metadata.json").read_text())
    metadata["count"] = 5
    (tmp_path / "s" / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(DataError, match="holds 4 records, but metadata.json says 5"):
        next(shard_batches(tmp_path / "s", 2, seed=0))
    (tmp_path / "s" / names[1]).write_bytes(b"not an array record")
    with pytest.raises(DataError, match="cannot read the ArrayRecord shards"):
        next(shard_batches(tmp_path / "s", 2, seed=0))
    (tmp_path / "s" / names[1]).unlink()
    with pytest.raises(DataError, match="shard listed in .* is missing"):
        next(shard_batches(tmp_path / "s", 2, seed=0))
    (tmp_path / "s" / "metadata.json").write_text('{"format": "arrayrecord", "vers')
    with pytest.raises(DataError, match="not valid JSON"):
        next(shard_batches(tmp_path / "s", 2, seed=0))


def test_tfrecord_reader_names_arrayrecord_directories(built):
    from keras_electra.data.pretraining_data import pretraining_dataset

    with pytest.raises(DataError, match="holds ArrayRecord shards .* pretrain on JAX"):
        pretraining_dataset(built[1], None, seq_length=SEQ)
