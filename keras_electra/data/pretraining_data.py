"""Pretraining examples: text → packed `[CLS] A [SEP] B [SEP]` sequences, in `tf.data`.

Packing follows the official ELECTRA `build_pretraining_dataset.py` (`ExampleBuilder`):

* sentences of a document are accumulated until they reach the target length, which is
  `seq_length`, except 5% of the time a random length in [5, seq_length];
* the end of a document (or of a block of `corpus.BLOCK_LINES` lines) ends an example early;
* 10% of examples are single-segment (all sentences in A); otherwise A takes sentences
  while it stays under (target − 3) // 2 tokens and, at the sentence that crosses it,
  takes that sentence with probability 1/2; the rest is B. A always gets the first sentence.
  One deliberate difference: the official loop lets a later short sentence jump back into A
  after B has started, which scrambles the sentence order; here A is always a prefix;
* A is truncated to `seq_length − 2`, then B to what is left.

Everything runs in the TensorFlow graph: reading, sentence splitting, tokenisation
(`ElectraTokenizer`), packing (one `tf.while_loop` step per example, vectorised otherwise),
under stateless random numbers seeded by (`seed`, block number). So a pipeline is
deterministic under its seed, runs in parallel (`num_parallel_calls=AUTOTUNE`,
`deterministic=True`), and packs differently in each epoch.

Optional sentence objectives add an int32 `sentence_label`:
* "sop": A and B swapped half of the time (label 1 = swapped);
* "nsp": B replaced half of the time (label 1 = random) by the first segment of an example
  of the latest block from another file (a corpus of one file: the previous block; the very
  first block: its own examples half a block away).
Single-segment examples keep label 0 in both.

`write_tfrecords` stores packed examples as sharded TFRecords with a `metadata.json`;
`pretraining_dataset` reads either text or such shards.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import tensorflow as tf

from keras_electra.data import shards
from keras_electra.data.corpus import (
    BLOCK_LINES,
    MAX_LINE_CHARS,
    block_sentences,
    check_corpus_files,
    line_blocks,
    resolve_corpus_files,
    resolve_corpus_format,
)
from keras_electra.data.shards import vocabulary_fingerprint
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import DataError
from keras_electra.utils.io import atomic_directory, write_json

FEATURES = ("token_ids", "segment_ids", "padding_mask")
SENTENCE_LABEL = "sentence_label"
SENTENCE_OBJECTIVES = (None, "nsp", "sop")
MIN_SEQ_LENGTH = 8
SHORT_SEQ_PROB = 0.05
MIN_SHORT_TARGET = 5
SINGLE_SEGMENT_PROB = 0.1
TFRECORD_SUFFIX = ".tfrecord"
METADATA_FILE = "metadata.json"
METADATA_FORMAT = "keras_electra.pretraining_tfrecords"
DEFAULT_SHUFFLE_BUFFER = 10_000
_NO_LIMIT = 2**31 - 1
# Salts that give every random decision of a block its own stateless stream.
_SALT_TARGET, _SALT_SHORT, _SALT_SPLIT, _SALT_SOP, _SALT_NSP = range(5)


def check_packing_options(seq_length: int, sentence_objective: str | None = None) -> None:
    if int(seq_length) < MIN_SEQ_LENGTH:
        raise DataError(f"seq_length must be at least {MIN_SEQ_LENGTH} ([CLS] A [SEP] B [SEP]), got {seq_length}")
    if sentence_objective not in SENTENCE_OBJECTIVES:
        raise DataError(f"sentence_objective must be None, 'nsp' or 'sop', not {sentence_objective!r}")


# --- packing (graph code) -------------------------------------------------------------------
def _seed(seed: int, block_index, salt: int):
    return tf.stack([tf.constant(seed, tf.int64), tf.cast(block_index, tf.int64) * 8 + salt])


def _example_spans(lengths, doc_start, targets):
    """Greedy packing: [start, end) sentence spans of each example (ExampleBuilder.add_line)."""
    n = tf.size(lengths)
    cum = tf.cumsum(lengths)
    before = cum - lengths
    doc_pos = tf.cast(tf.where(doc_start)[:, 0], tf.int32)
    doc_bounds = tf.concat([doc_pos, tf.reshape(n, [1])], 0)
    doc_end = tf.gather(doc_bounds, tf.searchsorted(doc_pos, tf.range(n), side="right"))

    def body(k, start, starts, ends):
        goal = tf.reshape(before[start] + targets[k], [1])
        reached = tf.searchsorted(cum, goal, side="left")[0]  # first sentence that reaches the target
        end = tf.minimum(tf.minimum(reached + 1, doc_end[start]), n)
        return k + 1, end, starts.write(k, start), ends.write(k, end)

    spans = tf.TensorArray(tf.int32, size=0, dynamic_size=True, element_shape=[])
    _, _, starts, ends = tf.while_loop(
        lambda k, start, *_: start < n, body, (tf.constant(0), tf.constant(0), spans, spans)
    )
    return starts.stack(), ends.stack()


def pack_segments(
    lines, block_index, tokenizer: ElectraTokenizer, *, seq_length: int, seed: int, corpus_format: str,
    sentence_objective: str | None = None,
) -> dict[str, tf.Tensor]:
    """A block of lines → the block's token ids and each example's A and B segments.

    Returns `flat` [T] (all token ids of the block) and, per example [M], `a_start`,
    `a_len`, `b_start`, `b_len` (offsets into `flat`) and `label` (SOP swaps done).
    """
    sentences, doc_index = block_sentences(lines, corpus_format)
    ids = tokenizer.tokenize(sentences)
    lengths = tf.cast(ids.row_lengths(), tf.int32)
    keep = lengths > 0  # a line of, say, control characters tokenises to nothing
    ids = tf.ragged.boolean_mask(ids, keep)
    lengths = tf.boolean_mask(lengths, keep)
    doc_index = tf.boolean_mask(doc_index, keep)
    flat = ids.flat_values
    n = tf.size(lengths)
    doc_start = tf.concat([tf.ones([tf.minimum(n, 1)], tf.bool), doc_index[1:] != doc_index[:-1]], 0)

    # One target per possible example (at most one example per sentence).
    short = tf.random.stateless_uniform([n], _seed(seed, block_index, _SALT_SHORT)) < SHORT_SEQ_PROB
    short_length = tf.random.stateless_uniform(
        [n], _seed(seed, block_index, _SALT_TARGET), minval=MIN_SHORT_TARGET, maxval=seq_length + 1, dtype=tf.int32
    )
    targets = tf.where(short, short_length, seq_length)
    starts, ends = _example_spans(lengths, doc_start, targets)

    # Split each example into A and B at a sentence boundary (vectorised ExampleBuilder._create_example).
    m = tf.size(starts)
    draws = tf.random.stateless_uniform([m, 2], _seed(seed, block_index, _SALT_SPLIT))
    single = draws[:, 0] < SINGLE_SEGMENT_PROB
    a_target = tf.where(single, _NO_LIMIT, (targets[:m] - 3) // 2)
    cum = tf.cumsum(lengths)
    before = tf.concat([cum - lengths, tf.reshape(tf.reduce_sum(lengths), [1])], 0)  # [n + 1]
    sentence_ids = tf.ragged.range(starts, ends)  # flat arithmetic below: ragged broadcasting traces slowly
    rows = sentence_ids.value_rowids()
    a_cumulative = tf.gather(cum, sentence_ids.flat_values) - tf.gather(tf.gather(before, starts), rows)
    under = tf.math.unsorted_segment_sum(tf.cast(a_cumulative < tf.gather(a_target, rows), tf.int32), rows, m)
    take_crossing = tf.logical_or(tf.equal(under, 0), draws[:, 1] < 0.5)
    split = starts + tf.minimum(tf.where(take_crossing, under + 1, under), ends - starts)

    a_start = tf.gather(before, starts)
    a_len = tf.minimum(tf.gather(before, split) - a_start, seq_length - 2)
    b_start = tf.gather(before, split)
    b_len = tf.minimum(tf.gather(before, ends) - b_start, tf.maximum(0, seq_length - a_len - 3))
    label = tf.zeros([m], tf.int32)
    if sentence_objective == "sop":
        swap = tf.logical_and(
            b_len > 0, tf.random.stateless_uniform([m], _seed(seed, block_index, _SALT_SOP)) < 0.5
        )
        a_start, b_start = tf.where(swap, b_start, a_start), tf.where(swap, a_start, b_start)
        a_len, b_len = tf.where(swap, b_len, a_len), tf.where(swap, a_len, b_len)
        label = tf.cast(swap, tf.int32)
    return {
        "flat": flat, "a_start": a_start, "a_len": a_len, "b_start": b_start, "b_len": b_len,
        "label": label, "block_index": tf.cast(block_index, tf.int64),
    }


def _empty_pool() -> tuple:
    empty = tf.zeros([0], tf.int32)
    return empty, empty, empty, tf.constant(-1, tf.int64)


def _nsp_step(state, segments, *, seq_length: int, seed: int):
    """Replace B by a segment of another file half of the time.

    The state holds the segments of the latest block (pool 1) and of the latest block
    of another file than pool 1's (pool 2). A block takes its random segments from the
    newest pool of a file other than its own; with a single file, from the previous
    block; the very first block, from its own examples half a block away.
    """
    (flat1, start1, len1, file1), (flat2, start2, len2, file2) = state
    current = segments["file_index"]
    m = tf.size(segments["a_start"])
    use1 = tf.logical_and(file1 >= 0, tf.not_equal(file1, current))
    use2 = tf.logical_and(tf.logical_not(use1), file2 >= 0)
    same_file = tf.logical_and(tf.logical_not(tf.logical_or(use1, use2)), file1 >= 0)
    has_pool = tf.logical_or(tf.logical_or(use1, use2), same_file)

    def choose(first, second, own):
        return tf.cond(
            tf.logical_or(use1, same_file), lambda: first, lambda: tf.cond(use2, lambda: second, lambda: own)
        )

    other_flat = choose(flat1, flat2, segments["flat"])
    other_start = choose(start1, start2, segments["a_start"])
    other_len = choose(len1, len2, segments["a_len"])
    draws = tf.random.stateless_uniform([m, 2], _seed(seed, segments["block_index"], _SALT_NSP))
    count = tf.maximum(tf.size(other_start), 1)
    pick = tf.where(
        has_pool,
        tf.minimum(tf.cast(draws[:, 1] * tf.cast(count, tf.float32), tf.int32), count - 1),
        (tf.range(m) + m // 2) % tf.maximum(m, 1),
    )
    allowed = tf.logical_or(has_pool, tf.not_equal(pick, tf.range(m)))
    replace = tf.logical_and(tf.logical_and(segments["b_len"] > 0, draws[:, 0] < 0.5), allowed)
    out = dict(segments)
    out["other_flat"] = other_flat
    out["b_other"] = replace
    out["b_start"] = tf.where(replace, tf.gather(other_start, pick), segments["b_start"])
    out["b_len"] = tf.where(
        replace, tf.minimum(tf.gather(other_len, pick), seq_length - segments["a_len"] - 3), segments["b_len"]
    )
    out["label"] = tf.cast(replace, tf.int32)
    newest = (segments["flat"], segments["a_start"], segments["a_len"], current)
    pool1, pool2 = (flat1, start1, len1, file1), (flat2, start2, len2, file2)
    older = tf.cond(tf.equal(file1, current), lambda: pool2, lambda: pool1)
    return (newest, older), out


def assemble_examples(
    segments: dict[str, tf.Tensor], *, seq_length: int, cls_id: int, sep_id: int, pad_id: int,
    sentence_objective: str | None = None,
) -> dict[str, tf.Tensor]:
    """Segment offsets → `token_ids`, `segment_ids`, `padding_mask` [M, seq_length] int32 (+ label [M])."""
    position = tf.range(seq_length)[None, :]
    a_len = segments["a_len"][:, None]
    b_len = segments["b_len"][:, None]
    has_b = b_len > 0
    in_a = tf.logical_and(position >= 1, position <= a_len)
    b_first = a_len + 2
    in_b = tf.logical_and(has_b, tf.logical_and(position >= b_first, position < b_first + b_len))
    second_sep = tf.logical_and(has_b, tf.equal(position, b_first + b_len))
    is_sep = tf.logical_or(tf.equal(position, a_len + 1), second_sep)
    length = a_len + 2 + tf.where(has_b, b_len + 1, 0)

    def take(flat, index):
        return tf.gather(flat, tf.clip_by_value(index, 0, tf.maximum(tf.size(flat) - 1, 0)))

    flat = segments["flat"]
    a_tokens = take(flat, segments["a_start"][:, None] + position - 1)
    b_index = segments["b_start"][:, None] + position - b_first
    b_tokens = take(flat, b_index)
    if "other_flat" in segments:
        b_tokens = tf.where(segments["b_other"][:, None], take(segments["other_flat"], b_index), b_tokens)
    token_ids = tf.where(
        tf.equal(position, 0),
        cls_id,
        tf.where(in_a, a_tokens, tf.where(in_b, b_tokens, tf.where(is_sep, sep_id, pad_id))),
    )
    token_ids = tf.where(position < length, token_ids, pad_id)
    examples = {
        "token_ids": tf.cast(token_ids, tf.int32),
        "segment_ids": tf.cast(tf.logical_or(in_b, second_sep), tf.int32),
        "padding_mask": tf.cast(position < length, tf.int32),
    }
    if sentence_objective is not None:
        examples[SENTENCE_LABEL] = segments["label"]
    return examples


def packed_examples(
    files: str | Path | Sequence[str | Path],
    tokenizer: ElectraTokenizer,
    seq_length: int = 128,
    *,
    seed: int = 0,
    corpus_format: str = "auto",
    sentence_objective: str | None = None,
    repeat: bool = False,
    block_lines: int = BLOCK_LINES,
    stats: dict | None = None,
) -> tf.data.Dataset:
    """An unbatched dataset of packed examples (dicts of int32 [seq_length] tensors) from text.

    stats: filled with the corpus' size in bytes and an upper bound on its words (`check_corpus_files`).
    """
    check_packing_options(seq_length, sentence_objective)
    if not isinstance(tokenizer, ElectraTokenizer):
        raise DataError(f"packing text needs an ElectraTokenizer, got {type(tokenizer).__name__}")
    paths = resolve_corpus_files(files)
    check_corpus_files(paths, stats=stats)
    corpus_format = resolve_corpus_format(paths, corpus_format)
    seq_length = int(seq_length)
    ids = {"cls_id": tokenizer.cls_id, "sep_id": tokenizer.sep_id, "pad_id": tokenizer.pad_id}

    blocks = line_blocks(paths, seed=seed, repeat=repeat, block_lines=block_lines).enumerate()

    # The graph code uses explicit tf.while_loop / tf.cond, so AutoGraph (which takes
    # seconds to transpile the tokenizer and the packing) is switched off.
    @tf.autograph.experimental.do_not_convert
    def segments(block_index, block):
        file_index, lines = block
        segs = pack_segments(
            lines, block_index, tokenizer, seq_length=seq_length, seed=seed, corpus_format=corpus_format,
            sentence_objective=sentence_objective,
        )
        return {**segs, "file_index": file_index}

    @tf.autograph.experimental.do_not_convert
    def assemble(segs):
        return assemble_examples(segs, seq_length=seq_length, sentence_objective=sentence_objective, **ids)

    if sentence_objective == "nsp":
        dataset = blocks.map(segments, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        dataset = dataset.scan(
            (_empty_pool(), _empty_pool()),
            tf.autograph.experimental.do_not_convert(
                lambda state, segs: _nsp_step(state, segs, seq_length=seq_length, seed=seed)
            ),
        )
        dataset = dataset.map(assemble, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
    else:
        dataset = blocks.map(
            tf.autograph.experimental.do_not_convert(lambda index, block: assemble(segments(index, block))),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.unbatch()


# --- sources ----------------------------------------------------------------------------------
def _is_tfrecord_source(path: Path) -> bool:
    return path.name.endswith(TFRECORD_SUFFIX) or (path.is_dir() and (path / METADATA_FILE).is_file())


def resolve_sources(sources: str | Path | Sequence[str | Path]) -> tuple[str, list[Path]]:
    """("text", text files) or ("tfrecord", shard files and build-data directories)."""
    if isinstance(sources, str | Path):
        sources = [sources]
    sources = [Path(s) for s in sources]
    if not sources:
        raise DataError("no pretraining data given: pass text files, directories or TFRecord shards")
    expanded: list[Path] = []
    for source in sources:
        if any(ch in str(source) for ch in "*?[") and not source.exists():
            matches = sorted(Path(p) for p in tf.io.gfile.glob(str(source)))
            expanded.extend(matches or [source])
        else:
            expanded.append(source)
    kinds = {_is_tfrecord_source(p) for p in expanded}
    if kinds == {True}:
        return "tfrecord", expanded
    if True in kinds:
        raise DataError("pretraining sources mix TFRecord shards and text; pass one kind")
    return "text", resolve_corpus_files(sources)


def read_metadata(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    try:
        metadata = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise DataError(f"cannot read {path}: {err}") from None
    if metadata.get("format") == shards.FORMAT:
        raise DataError(f"{directory} holds ArrayRecord shards (build-data --format arrayrecord), which the "
                        "TensorFlow input pipeline does not read; rebuild with --format tfrecord, or pretrain on JAX")
    if metadata.get("format") != METADATA_FORMAT:
        raise DataError(f"{path} is not a keras-electra build-data metadata file")
    return metadata


def _tfrecord_files(
    paths: Sequence[Path], seq_length: int, sentence_objective: str | None, tokenizer: ElectraTokenizer | None
) -> list[str]:
    files: list[str] = []
    for path in paths:
        if path.is_dir():
            metadata = read_metadata(path)
            where = path / METADATA_FILE
            if int(metadata["seq_length"]) != seq_length:
                raise DataError(f"{where} has seq_length {metadata['seq_length']}, but {seq_length} was asked for")
            if sentence_objective is not None and metadata.get("sentence_objective") != sentence_objective:
                raise DataError(
                    f"{where} was built with sentence_objective={metadata.get('sentence_objective')}, "
                    f"not {sentence_objective}; rebuild it with --sentence-objective {sentence_objective}"
                )
            if tokenizer is not None and metadata.get("vocab_sha256") not in (
                None, vocabulary_fingerprint(tokenizer.vocabulary)
            ):
                raise DataError(
                    f"{where} was built with another vocabulary ({metadata.get('vocab_size')} tokens) "
                    f"than the tokenizer's ({tokenizer.vocabulary_size} tokens)"
                )
            shards = [path / name for name in metadata["shards"]]
            missing = [s for s in shards if not s.is_file()]
            if missing:
                raise DataError(f"TFRecord shard listed in {where} is missing: {missing[0]}")
            files.extend(str(s) for s in shards)
        elif path.is_file():
            files.append(str(path))
        else:
            raise DataError(f"TFRecord shard not found: {path}")
    return files


def tfrecord_examples(
    paths: Sequence[Path],
    seq_length: int,
    *,
    seed: int = 0,
    sentence_objective: str | None = None,
    tokenizer: ElectraTokenizer | None = None,
    repeat: bool = False,
    shuffle_files: bool = True,
) -> tf.data.Dataset:
    """Serialized examples from TFRecord shards (not yet parsed): interleaved, shard order shuffled per epoch."""
    files = _tfrecord_files(paths, seq_length, sentence_objective, tokenizer)
    names = tf.constant(files)
    epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)

    def epoch_files(epoch):
        order = tf.range(len(files), dtype=tf.int64)
        if shuffle_files:
            order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([tf.constant(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(tf.gather(names, order))

    return epochs.flat_map(epoch_files).interleave(
        tf.data.TFRecordDataset,
        cycle_length=min(len(files), 8),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def parse_examples(serialized, seq_length: int, sentence_objective: str | None = None) -> dict[str, tf.Tensor]:
    """Serialized tf.train.Examples [B] → dict of int32 [B, seq_length] (and [B] labels)."""
    spec = {name: tf.io.FixedLenFeature([seq_length], tf.int64) for name in FEATURES}
    if sentence_objective is not None:
        spec[SENTENCE_LABEL] = tf.io.FixedLenFeature([], tf.int64)
    parsed = tf.io.parse_example(serialized, spec)
    return {name: tf.cast(value, tf.int32) for name, value in parsed.items()}


# --- the public dataset -------------------------------------------------------------------------
def pretraining_dataset(
    sources: str | Path | Sequence[str | Path],
    tokenizer: ElectraTokenizer | None = None,
    seq_length: int = 128,
    batch_size: int = 32,
    seed: int = 0,
    corpus_format: str = "auto",
    sentence_objective: str | None = None,
    shuffle_buffer: int = DEFAULT_SHUFFLE_BUFFER,
    repeat: bool = True,
) -> tf.data.Dataset:
    """Batches of packed pretraining examples, from text or from `write_tfrecords` shards.

    Args:
        sources: text files, directories of `*.txt`, glob patterns (tokenised and packed on
            the fly); or `*.tfrecord` shards / directories written by `write_tfrecords`.
        tokenizer: the `ElectraTokenizer` (required for text; for shards it is checked
            against the vocabulary recorded in `metadata.json`).
        seq_length / batch_size: static shapes of every batch ([batch_size, seq_length]).
        seed: makes the whole stream (packing, file order, shuffle) reproducible.
        corpus_format: "auto", "sentences" or "paragraphs" (see `keras_electra.data.corpus`).
        sentence_objective: None, "nsp" or "sop": adds an int32 `sentence_label` [batch_size].
        shuffle_buffer: examples in the shuffle buffer (0 disables shuffling).
        repeat: loop over the data forever (each epoch packed anew from text).

    Returns:
        A dataset of dicts `token_ids`, `segment_ids`, `padding_mask` (int32 [B, L]), with
        `drop_remainder=True` so every batch has the same static shape.
    """
    check_packing_options(seq_length, sentence_objective)
    if int(batch_size) < 1:
        raise DataError(f"batch_size must be positive, got {batch_size}")
    seq_length, batch_size = int(seq_length), int(batch_size)
    kind, paths = resolve_sources(sources)
    if kind == "tfrecord":
        dataset = tfrecord_examples(
            paths, seq_length, seed=seed, sentence_objective=sentence_objective, tokenizer=tokenizer, repeat=repeat
        )
    else:
        if tokenizer is None:
            raise DataError("a tokenizer is needed to read a text corpus")
        stats: dict[str, int] = {}
        dataset = packed_examples(
            paths, tokenizer, seq_length, seed=seed, corpus_format=corpus_format,
            sentence_objective=sentence_objective, repeat=repeat, stats=stats,
        )
        # Each example holds at most seq_length - 3 word pieces and every word, Chinese character (three
        # bytes) or piece of an over-long line (`corpus.MAX_LINE_CHARS`) is at least one: an estimate of
        # the examples that one pass over the corpus yields.
        units = stats["words"] + stats["non_ascii"] // 3 + stats["bytes"] // MAX_LINE_CHARS
        most = max(1, units // (seq_length - 3) + len(paths))
        # The buffer is filled before the first batch: never wait on many passes over a small corpus
        # (a buffer of about two passes already shuffles whole epochs).
        shuffle_buffer = min(shuffle_buffer, max(batch_size, 2 * most))
        if most < batch_size:
            names = ", ".join(str(p) for p in paths[:3]) + (" ..." if len(paths) > 3 else "")
            print(f"warning: the corpus ({names}) holds so few words ({units} at most) that one pass "
                  f"over it yields at most {most} example(s) of {seq_length} tokens, fewer than one batch of "
                  f"{batch_size}; each batch re-reads it {math.ceil(batch_size / most)} time(s)", file=sys.stderr)
    if shuffle_buffer:
        dataset = dataset.shuffle(int(shuffle_buffer), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size, drop_remainder=True)
    if kind == "tfrecord":
        dataset = dataset.map(
            tf.autograph.experimental.do_not_convert(
                lambda serialized: parse_examples(serialized, seq_length, sentence_objective)
            ),
            num_parallel_calls=tf.data.AUTOTUNE,
            deterministic=True,
        )
    return dataset.prefetch(tf.data.AUTOTUNE)


# --- build-data: TFRecord or ArrayRecord shards ---------------------------------------------------
def _check_build_output(output_dir: Path) -> None:
    if output_dir.exists() and (
        not output_dir.is_dir() or (any(output_dir.iterdir()) and not (output_dir / METADATA_FILE).is_file())
    ):
        raise DataError(f"output {output_dir} exists and is not a build-data directory; choose a new path")


def _text_sources(sources, corpus_format: str) -> tuple[list[Path], str]:
    kind, paths = resolve_sources(sources)
    if kind != "text":
        raise DataError("build-data reads text; the sources are already TFRecord shards")
    return paths, resolve_corpus_format(paths, corpus_format)


def _packed_batches(
    paths: list[Path], tokenizer: ElectraTokenizer, seq_length: int, seed: int, corpus_format: str,
    sentence_objective: str | None, max_examples: int | None,
) -> tf.data.Dataset:
    """One pass of the packing pipeline in batches of 1024: the examples both shard formats store, in order."""
    dataset = packed_examples(
        paths, tokenizer, seq_length, seed=seed, corpus_format=corpus_format, sentence_objective=sentence_objective,
    )
    if max_examples is not None:
        dataset = dataset.take(int(max_examples))
    return dataset.batch(1024).prefetch(2)


def _build_metadata(tokenizer: ElectraTokenizer, paths: list[Path], seq_length: int, seed: int, corpus_format: str,
                    sentence_objective: str | None) -> dict[str, Any]:
    """The fields both shard formats record about how the examples were made."""
    return {
        "seq_length": int(seq_length),
        "sentence_objective": sentence_objective,
        "vocab_size": tokenizer.vocabulary_size,
        "vocab_sha256": vocabulary_fingerprint(tokenizer.vocabulary),
        "lower_case": tokenizer.lower_case,
        "strip_accents": tokenizer.strip_accents,
        "corpus_format": corpus_format,
        "seed": seed,
        "sources": [os.fspath(p) for p in paths],
    }


def write_arrayrecords(
    sources: str | Path | Sequence[str | Path],
    tokenizer: ElectraTokenizer,
    output_dir: str | Path,
    seq_length: int = 128,
    shard_size: int = shards.DEFAULT_SHARD_SIZE,
    seed: int = 0,
    corpus_format: str = "auto",
    sentence_objective: str | None = None,
    max_examples: int | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Pack a text corpus once (the same pipeline and order as `write_tfrecords`) into ArrayRecord shards.

    `keras_electra.data.shards.shard_batches` reads them without TensorFlow (the JAX trainer, the
    GPU machine). The directory also gets `vocab.txt` and `tokenizer.json`; it is written atomically.
    Returns the metadata (also in `metadata.json`, format "arrayrecord").
    """
    check_packing_options(seq_length, sentence_objective)
    output_dir = Path(output_dir)
    _check_build_output(output_dir)
    paths, corpus_format = _text_sources(sources, corpus_format)
    started = time.perf_counter()
    dataset = _packed_batches(paths, tokenizer, seq_length, seed, corpus_format, sentence_objective, max_examples)

    def examples():
        for batch in dataset.as_numpy_iterator():
            for i in range(len(batch["token_ids"])):
                yield {name: value[i] for name, value in batch.items()}

    try:
        metadata = shards.write_shards(
            examples(), output_dir, seq_length=seq_length, vocab=tokenizer.vocabulary, shard_size=shard_size,
            lower_case=tokenizer.lower_case, strip_accents=tokenizer.strip_accents,
            metadata=_build_metadata(tokenizer, paths, seq_length, seed, corpus_format, sentence_objective),
        )
    except DataError as err:
        if str(err).startswith("no examples"):
            raise DataError(f"the corpus gave no examples: {paths[0]}") from None
        raise
    if verbose:
        seconds = time.perf_counter() - started
        print(f"wrote {metadata['count']} examples ({metadata['tokens']} tokens) in {metadata['num_shards']} "
              f"ArrayRecord shards to {output_dir} in {seconds:.1f} s")
    return metadata


def _serialize(example: dict[str, np.ndarray]) -> bytes:
    feature = {
        name: tf.train.Feature(int64_list=tf.train.Int64List(value=np.atleast_1d(value).tolist()))
        for name, value in example.items()
    }
    return tf.train.Example(features=tf.train.Features(feature=feature)).SerializeToString()


def write_tfrecords(
    sources: str | Path | Sequence[str | Path],
    tokenizer: ElectraTokenizer,
    output_dir: str | Path,
    seq_length: int = 128,
    num_shards: int = 8,
    seed: int = 0,
    corpus_format: str = "auto",
    sentence_objective: str | None = None,
    max_examples: int | None = None,
    verbose: bool = False,
) -> dict[str, Any]:
    """Pack a text corpus once and write it as `num_shards` TFRecord shards plus `metadata.json`.

    Examples go to the shards round-robin (as the official code does); each is a
    tf.train.Example of int64 `token_ids`, `segment_ids`, `padding_mask` [seq_length]
    (and `sentence_label`). The directory also gets the tokenizer's `vocab.txt` and
    `tokenizer.json`, and is written atomically: a temporary directory renamed at the end.

    Returns the metadata (also in `metadata.json`).
    """
    check_packing_options(seq_length, sentence_objective)
    if int(num_shards) < 1:
        raise DataError(f"num_shards must be positive, got {num_shards}")
    output_dir = Path(output_dir)
    _check_build_output(output_dir)
    paths, corpus_format = _text_sources(sources, corpus_format)
    started = time.perf_counter()
    dataset = _packed_batches(paths, tokenizer, seq_length, seed, corpus_format, sentence_objective, max_examples)
    shard_names = [f"pretrain-{i:05d}-of-{num_shards:05d}{TFRECORD_SUFFIX}" for i in range(num_shards)]
    counts = [0] * num_shards
    count = tokens = 0
    with atomic_directory(output_dir) as tmp:
        writers = [tf.io.TFRecordWriter(str(tmp / name)) for name in shard_names]
        try:
            for batch in dataset.as_numpy_iterator():
                for i in range(len(batch["token_ids"])):
                    shard = count % num_shards
                    writers[shard].write(_serialize({name: value[i] for name, value in batch.items()}))
                    counts[shard] += 1
                    count += 1
                tokens += int(batch["padding_mask"].sum())
        finally:
            for writer in writers:
                writer.close()
        if count == 0:
            raise DataError(f"the corpus gave no examples: {paths[0]}")
        metadata = {
            **_build_metadata(tokenizer, paths, seq_length, seed, corpus_format, sentence_objective),
            "format": METADATA_FORMAT,
            "version": 1,
            "count": count,
            "tokens": tokens,
            "num_shards": num_shards,
            "shards": dict(zip(shard_names, counts)),
            "features": [*FEATURES, *([SENTENCE_LABEL] if sentence_objective else [])],
        }
        write_json(tmp / METADATA_FILE, metadata)
        tokenizer.save_to_directory(tmp)
    if verbose:
        seconds = time.perf_counter() - started
        print(f"wrote {count} examples ({tokens} tokens) in {num_shards} shards to {output_dir} "
              f"in {seconds:.1f} s ({count / max(seconds, 1e-9):.0f} examples/s)")
    return metadata
