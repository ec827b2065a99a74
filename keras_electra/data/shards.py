"""Packed pretraining examples as ArrayRecord shards, read with grain: no TensorFlow needed.

TEMPORARY minimal version on branch jax-pretrain, written against the interface that the
jax-data branch provides (`write_shards`, `shard_batches`); the merge takes theirs.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.errors import DataError
from keras_electra.utils.io import atomic_directory, read_json, write_json

METADATA_FILE = "metadata.json"
METADATA_FORMAT = "keras_electra.pretraining_array_record"
SUFFIX = ".array_record"
FEATURES = ("token_ids", "segment_ids", "padding_mask")


def is_shard_directory(path: str | Path) -> bool:
    """Whether `path` is a directory written by `write_shards`."""
    path = Path(path)
    if not (path / METADATA_FILE).is_file():
        return False
    try:
        metadata = read_json(path / METADATA_FILE)
    except Exception:  # noqa: BLE001 - a broken metadata file is reported by read_shard_metadata
        return False
    return isinstance(metadata, dict) and metadata.get("format") == METADATA_FORMAT


def read_shard_metadata(directory: str | Path) -> dict[str, Any]:
    path = Path(directory) / METADATA_FILE
    metadata = read_json(path)
    if not isinstance(metadata, dict) or metadata.get("format") != METADATA_FORMAT:
        raise DataError(f"{path} is not an ArrayRecord shard metadata file")
    return metadata


def write_shards(examples: Iterable[dict[str, np.ndarray]], output_dir: str | Path, *, seq_length: int,
                 vocab: Sequence[str], shard_size: int = 10_000, lower_case: bool = True) -> dict[str, Any]:
    from array_record.python.array_record_module import ArrayRecordWriter

    names: list[str] = []
    count = 0
    with atomic_directory(Path(output_dir)) as tmp:
        writer = None
        for example in examples:
            if count % shard_size == 0:
                if writer is not None:
                    writer.close()
                names.append(f"pretrain-{len(names):05d}{SUFFIX}")
                writer = ArrayRecordWriter(str(tmp / names[-1]), "group_size:1")
            row = np.stack([np.asarray(example[k], np.int32).reshape(seq_length) for k in FEATURES])
            writer.write(row.tobytes())
            count += 1
        if writer is not None:
            writer.close()
        if not count:
            raise DataError("write_shards: no examples")
        metadata = {"format": METADATA_FORMAT, "seq_length": int(seq_length), "count": count, "shards": names,
                    "features": list(FEATURES), "vocab": list(vocab), "lower_case": bool(lower_case)}
        write_json(tmp / METADATA_FILE, metadata)
    return metadata


def shard_batches(directory: str | Path, batch_size: int, *, seed: int, shuffle: bool = True,
                  repeat: bool = True) -> Iterator[dict[str, np.ndarray]]:
    import grain

    directory = Path(directory)
    metadata = read_shard_metadata(directory)
    length = int(metadata["seq_length"])
    source = grain.sources.ArrayRecordDataSource([str(directory / name) for name in metadata["shards"]])
    dataset = grain.MapDataset.source(source)
    if shuffle:
        dataset = dataset.shuffle(seed=seed)
    if repeat:
        dataset = dataset.repeat()

    def decode(record: bytes) -> dict[str, np.ndarray]:
        row = np.frombuffer(record, np.int32).reshape(len(FEATURES), length)
        return {name: row[i] for i, name in enumerate(FEATURES)}

    dataset = dataset.map(decode).batch(batch_size, drop_remainder=True)
    for batch in dataset:
        yield {k: np.asarray(v, np.int32) for k, v in batch.items()}
