"""Packed pretraining examples as ArrayRecord shards, read with grain: no TensorFlow (issue 16).

Tokenising and packing stay in `tf.data` with tensorflow-text (`pretraining_data.packed_examples`,
where the ids match Hugging Face); `keras-electra build-data --format arrayrecord` writes their
output here with `write_shards`. A machine with JAX and no TensorFlow (the GPU machine) reads the
shards with `shard_batches`, built on grain's `ArrayRecordDataSource` and `MapDataset`: random
access, so a shuffle is a permutation per epoch under the seed, and batch k is the same batch
whatever ran before it.

This module imports neither TensorFlow nor Keras (tests/test_tensorflow_free.py).

Record encoding (metadata "encoding" = `RECORD_ENCODING`): one record per example,
    uint16 n                    non-padding length (padding_mask is n ones, then zeros)
    token_ids[:n]               uint16 if the vocabulary has at most 65536 entries, else int32
    segment_ids[:n]             uint8
    int32 sentence_label        only when the metadata lists it
little-endian, each record compressed alone (zstd, `group_size:1`, which random access needs).
Padding positions hold the vocabulary's [PAD] id and segment 0, which the writer checks. The
novels (124,434 examples of 128) take 323 bytes per example on disk, a fifth of int32 [3, 128].
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.errors import DataError
from keras_electra.utils.io import atomic_directory, read_json, write_json

FORMAT = "arrayrecord"
VERSION = 1
RECORD_ENCODING = "n:u16,token_ids:u16|i32,segment_ids:u8[,sentence_label:i32]"
METADATA_FILE = "metadata.json"
VOCAB_FILE = "vocab.txt"  # the same names as keras_electra.data.tokenizer (which imports TensorFlow)
TOKENIZER_CONFIG_FILE = "tokenizer.json"
SHARD_SUFFIX = ".array_record"
WRITER_OPTIONS = "group_size:1,zstd:3"
FEATURES = ("token_ids", "segment_ids", "padding_mask")
SENTENCE_LABEL = "sentence_label"
DEFAULT_SHARD_SIZE = 16_384
PREFETCH_BATCHES = 8  # batches read ahead by grain's threads
PAD = "[PAD]"


def vocabulary_fingerprint(vocabulary: Sequence[str]) -> str:
    """The sha256 of the vocabulary's lines: metadata names the vocabulary shards were built with."""
    return hashlib.sha256("\n".join(vocabulary).encode("utf-8")).hexdigest()


def _token_dtype(vocab_size: int) -> np.dtype:
    return np.dtype("<u2") if vocab_size <= 2**16 else np.dtype("<i4")


def _encode(example: dict[str, np.ndarray], *, seq_length: int, pad_id: int, token_dtype: np.dtype,
            with_label: bool, index: int) -> tuple[bytes, int]:
    """One example → (record bytes, non-padding length); malformed examples are one DataError line."""
    arrays = {}
    for name in FEATURES:
        if name not in example:
            raise DataError(f"example {index} lacks {name!r} (has {', '.join(sorted(example))})")
        value = np.asarray(example[name])
        if value.shape != (seq_length,):
            raise DataError(f"example {index}: {name} has shape {value.shape}, expected ({seq_length},)")
        arrays[name] = value.astype(np.int64)
    mask = arrays["padding_mask"]
    n = int(mask.sum())
    if not np.array_equal(mask, (np.arange(seq_length) < n).astype(np.int64)):
        raise DataError(f"example {index}: padding_mask is not ones followed by zeros")
    tokens, segments = arrays["token_ids"], arrays["segment_ids"]
    if np.any(tokens[n:] != pad_id) or np.any(segments[n:] != 0):
        raise DataError(f"example {index}: padding positions must hold the [PAD] id {pad_id} and segment 0")
    info = np.iinfo(token_dtype)
    if n and (tokens[:n].min() < max(info.min, 0) or tokens[:n].max() > info.max):
        raise DataError(f"example {index}: token ids outside [0, {info.max}]")
    if n and (segments[:n].min() < 0 or segments[:n].max() > 255):
        raise DataError(f"example {index}: segment ids outside [0, 255]")
    parts = [np.uint16(n).astype("<u2").tobytes(), tokens[:n].astype(token_dtype).tobytes(),
             segments[:n].astype(np.uint8).tobytes()]
    if with_label:
        if SENTENCE_LABEL not in example:
            raise DataError(f"example {index} lacks {SENTENCE_LABEL!r}, which the first example has")
        parts.append(np.int32(np.asarray(example[SENTENCE_LABEL]).reshape(())).astype("<i4").tobytes())
    return b"".join(parts), n


class _Decoder:
    """Records → int32 arrays; a whole batch at once (grain's `batch_fn`), so Python touches each record
    only to slice it and numpy scatters the ids, which keeps the loader ahead of an accelerator."""

    def __init__(self, seq_length: int, token_dtype: str, with_label: bool, pad_id: int) -> None:
        self.seq_length, self.token_dtype = seq_length, np.dtype(token_dtype)
        self.with_label, self.pad_id = with_label, pad_id

    def decode_batch(self, records: Sequence[bytes]) -> dict[str, np.ndarray]:
        size = self.token_dtype.itemsize
        lengths = np.frombuffer(b"".join(r[:2] for r in records), "<u2").astype(np.int64)
        tokens = b"".join(r[2:2 + n * size] for r, n in zip(records, lengths.tolist()))
        segments = b"".join(r[2 + n * size:2 + n * (size + 1)] for r, n in zip(records, lengths.tolist()))
        mask = np.arange(self.seq_length)[None, :] < lengths[:, None]
        batch = {
            "token_ids": np.full(mask.shape, self.pad_id, np.int32),
            "segment_ids": np.zeros(mask.shape, np.int32),
            "padding_mask": mask.astype(np.int32),
        }
        # Row-major boolean indexing fills each row's first n slots in order: the concatenation order.
        batch["token_ids"][mask] = np.frombuffer(tokens, self.token_dtype)
        batch["segment_ids"][mask] = np.frombuffer(segments, np.uint8)
        if self.with_label:
            batch[SENTENCE_LABEL] = np.frombuffer(b"".join(r[-4:] for r in records), "<i4").astype(np.int32)
        return batch

    def __call__(self, record: bytes) -> dict[str, np.ndarray]:
        return {name: value[0] for name, value in self.decode_batch([record]).items()}


def write_shards(
    examples: Iterable[dict[str, np.ndarray]],
    output_dir: str | Path,
    *,
    seq_length: int,
    vocab: list[str],
    shard_size: int = DEFAULT_SHARD_SIZE,
    lower_case: bool | None = None,
    strip_accents: bool | None = None,
    metadata: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Write examples as ArrayRecord shards of `shard_size` examples plus `metadata.json`, atomically.

    examples: dicts of `token_ids`, `segment_ids`, `padding_mask` [seq_length] (and `sentence_label`
        if the first one has it), in the order they should be stored.
    vocab: the vocabulary the ids index (written as `vocab.txt`; its sha256 and size go to the metadata).
    lower_case / strip_accents: the tokenizer's casing, written to `tokenizer.json` and the metadata.
    metadata: more fields for `metadata.json` (build-data adds corpus_format, seed, sources, ...).

    The directory appears whole or not at all (`keras_electra.utils.io.atomic_directory`).
    Returns the metadata.
    """
    from array_record.python.array_record_module import ArrayRecordWriter

    seq_length, shard_size = int(seq_length), int(shard_size)
    if seq_length < 1 or seq_length >= 2**16:
        raise DataError(f"seq_length must be in [1, 65535] for ArrayRecord shards, got {seq_length}")
    if shard_size < 1:
        raise DataError(f"shard_size must be positive, got {shard_size}")
    vocab = list(vocab)
    if not vocab:
        raise DataError("the vocabulary is empty")
    output_dir = Path(output_dir)
    if output_dir.exists() and (
        not output_dir.is_dir() or (any(output_dir.iterdir()) and not (output_dir / METADATA_FILE).is_file())
    ):
        raise DataError(f"output {output_dir} exists and is not a build-data directory; choose a new path")
    pad_id = vocab.index(PAD) if PAD in vocab else 0
    token_dtype = _token_dtype(len(vocab))
    counts: list[int] = []
    count = tokens = 0
    with_label: bool | None = None
    with atomic_directory(output_dir) as tmp:
        writer = None
        try:
            for example in examples:
                if with_label is None:
                    with_label = SENTENCE_LABEL in example
                if writer is None or counts[-1] == shard_size:
                    if writer is not None:
                        writer.close()
                    writer = ArrayRecordWriter(str(tmp / f"part-{len(counts):05d}"), WRITER_OPTIONS)
                    counts.append(0)
                record, n = _encode(example, seq_length=seq_length, pad_id=pad_id, token_dtype=token_dtype,
                                    with_label=with_label, index=count)
                writer.write(record)
                counts[-1] += 1
                count += 1
                tokens += n
        finally:
            if writer is not None:
                writer.close()
        if count == 0:
            raise DataError(f"no examples to write to {output_dir}")
        names = [f"pretrain-{i:05d}-of-{len(counts):05d}{SHARD_SUFFIX}" for i in range(len(counts))]
        for i, name in enumerate(names):
            os.replace(tmp / f"part-{i:05d}", tmp / name)
        result = {
            **(metadata or {}),
            "format": FORMAT,
            "version": VERSION,
            "encoding": RECORD_ENCODING,
            "token_dtype": token_dtype.str,
            "pad_id": pad_id,
            "seq_length": seq_length,
            "count": count,
            "tokens": tokens,
            "num_shards": len(names),
            "shard_size": shard_size,
            "shards": dict(zip(names, counts)),
            "features": [*FEATURES, *([SENTENCE_LABEL] if with_label else [])],
            "vocab_size": len(vocab),
            "vocab_sha256": vocabulary_fingerprint(vocab),
            "lower_case": lower_case,
            "strip_accents": strip_accents,
        }
        (tmp / VOCAB_FILE).write_text("\n".join(vocab) + "\n", encoding="utf-8")
        if lower_case is not None:
            settings = {"lower_case": bool(lower_case),
                        "strip_accents": bool(lower_case if strip_accents is None else strip_accents)}
            write_json(tmp / TOKENIZER_CONFIG_FILE, settings)
        write_json(tmp / METADATA_FILE, result)
    return result


def is_shard_directory(path: str | Path) -> bool:
    """True for a directory that `write_shards` wrote (its metadata says format "arrayrecord")."""
    path = Path(path) / METADATA_FILE
    if not path.is_file():
        return False
    try:
        return read_json(path).get("format") == FORMAT
    except (DataError, AttributeError):
        return False


def read_shard_metadata(directory: str | Path) -> dict[str, Any]:
    """The metadata of a shard directory, checked: the format, and every listed shard present."""
    directory = Path(directory)
    path = directory / METADATA_FILE
    if not path.is_file():
        raise DataError(f"{directory} is not an ArrayRecord shard directory: {METADATA_FILE} not found")
    metadata = read_json(path)
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        found = metadata.get("format") if isinstance(metadata, dict) else type(metadata).__name__
        raise DataError(f"{path} has format {found!r}, not {FORMAT!r}; build it with "
                        "`keras-electra build-data --format arrayrecord`")
    if metadata.get("version") != VERSION:
        raise DataError(f"{path} has version {metadata.get('version')}; this keras_electra reads version {VERSION}")
    for key in ("seq_length", "count", "shards", "token_dtype", "features", "pad_id"):
        if key not in metadata:
            raise DataError(f"{path} lacks the key {key!r}")
    missing = [name for name in metadata["shards"] if not (directory / name).is_file()]
    if missing:
        raise DataError(f"ArrayRecord shard listed in {path} is missing: {directory / missing[0]}")
    return metadata


def shard_source(directory: str | Path):
    """(grain ArrayRecordDataSource over every shard in order, metadata); the record count is checked."""
    import grain

    directory = Path(directory)
    metadata = read_shard_metadata(directory)
    paths = [str(directory / name) for name in metadata["shards"]]
    try:
        source = grain.sources.ArrayRecordDataSource(paths)
    except Exception as err:  # a truncated or foreign file fails in array_record's C++ reader
        raise DataError(f"cannot read the ArrayRecord shards in {directory}: {str(err).splitlines()[0]}") from None
    if len(source) != int(metadata["count"]):
        raise DataError(f"{directory} holds {len(source)} records, but {METADATA_FILE} says {metadata['count']}")
    return source, metadata


class _ReadBatch:
    """Example indices → one decoded batch: array_record reads the batch's records in parallel
    (`__getitems__`, about 3× faster than one by one), then `_Decoder.decode_batch`."""

    def __init__(self, source, decoder: _Decoder) -> None:
        self.source, self.decoder = source, decoder

    def __call__(self, indices: np.ndarray) -> dict[str, np.ndarray]:
        return self.decoder.decode_batch(self.source.__getitems__(indices.tolist()))


def shard_examples(directory: str | Path) -> Iterator[dict[str, np.ndarray]]:
    """Every example of a shard directory once, in stored order (for checks and conversion)."""
    source, metadata = shard_source(directory)
    decode = _decoder(metadata)
    for index in range(len(source)):
        yield decode(source[index])


def _decoder(metadata: dict[str, Any]) -> _Decoder:
    return _Decoder(int(metadata["seq_length"]), metadata["token_dtype"], SENTENCE_LABEL in metadata["features"],
                    int(metadata["pad_id"]))


def shard_batches(
    directory: str | Path,
    batch_size: int,
    *,
    seed: int,
    shuffle: bool = True,
    repeat: bool = True,
    start_batch: int = 0,
    num_threads: int = 4,
) -> Iterator[dict[str, np.ndarray]]:
    """Batches of int32 `token_ids`, `segment_ids`, `padding_mask` [batch_size, seq_length] from shards.

    grain reads the shards: with `shuffle`, each epoch is a new permutation of all examples under
    `seed` (grain's index shuffle, reseeded per epoch); with `repeat`, epochs follow one another
    and a batch may span two of them; the remainder is dropped, so every batch has the same
    static shape. `sentence_label` [batch_size] comes too where the shards hold it.
    start_batch: begin at that batch of the same stream (a resumed run), without reading the skipped ones.
    num_threads: grain's reader threads (the order does not depend on them).
    """
    import grain

    batch_size, start_batch = int(batch_size), int(start_batch)
    if batch_size < 1:
        raise DataError(f"batch_size must be positive, got {batch_size}")
    if start_batch < 0:
        raise DataError(f"start_batch must be >= 0, got {start_batch}")
    source, metadata = shard_source(directory)
    if not repeat and len(source) < batch_size:
        raise DataError(f"{directory} holds {len(source)} examples, fewer than one batch of {batch_size}")
    # grain orders example indices (shuffle: a permutation per epoch; repeat; batch), then each batch
    # of indices is read and decoded at once.
    dataset = grain.MapDataset.range(len(source))
    if shuffle:
        dataset = dataset.shuffle(seed=int(seed) % 2**32)
    if repeat:
        dataset = dataset.repeat()
    dataset = dataset.batch(batch_size, drop_remainder=True).map(_ReadBatch(source, _decoder(metadata)))
    if start_batch:
        dataset = dataset[start_batch:]
    options = grain.ReadOptions(num_threads=max(1, int(num_threads)), prefetch_buffer_size=PREFETCH_BATCHES)
    return iter(dataset.to_iter_dataset(options))


def batches_per_second(directory: str | Path, batch_size: int, seconds: float = 3.0) -> float:
    """Batches per second that `shard_batches` yields on its own (the input pipeline's ceiling), after
    a first batch that warms the readers up."""
    iterator = shard_batches(directory, batch_size, seed=1)
    next(iterator)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        next(iterator)
        count += 1
    return count / (time.perf_counter() - start)


def cycled(batches: Sequence[dict[str, np.ndarray]]) -> Iterator[tuple[dict[str, np.ndarray]]]:
    """In-memory batches round and round, as the `(inputs,)` tuples Keras' `fit` takes from a generator."""
    i = 0
    while True:
        yield (batches[i % len(batches)],)
        i += 1
