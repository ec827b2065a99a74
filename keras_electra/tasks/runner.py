"""The interface between the fine-tuning recipe and one kind of task.

A `TaskRunner` turns reader examples into a `tf.data` pipeline for its task model,
predicts raw scores (probabilities or logits, aligned so that several seeds can be
averaged), and decodes them into labels, entities or answers for the metrics.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_electra.errors import DataError

AUTOTUNE = tf.data.AUTOTUNE


class LabelMap:
    """String labels ↔ class ids, with a clear error for a label outside the set."""

    def __init__(self, labels: Sequence[str], source: str = "labels") -> None:
        self.labels = [str(x) for x in labels]
        if len(set(self.labels)) != len(self.labels):
            raise DataError(f"{source}: repeated label in {self.labels}")
        self.source = source
        self._ids = {label: i for i, label in enumerate(self.labels)}

    def __len__(self) -> int:
        return len(self.labels)

    def encode(self, label, where: str) -> int:
        key = str(label)
        if key not in self._ids:
            shown = ", ".join(self.labels[:12]) + (", ..." if len(self.labels) > 12 else "")
            raise DataError(f"{where}: unknown label {key!r} (known {self.source}: {shown})")
        return self._ids[key]

    def decode(self, index: int) -> str:
        return self.labels[int(index)]


class TaskRunner:
    """One kind of task (classification, regression, token, qa, choice, relation)."""

    kind: str = ""
    heads: tuple[str, ...] = ()  # the values of the `head` option build_model honours (none: it has one head)
    label_smoothing: bool = False  # whether compile_args honours the `label_smoothing` option

    def build_model(self, backbone, tokenizer, seq_length: int, labels: list[str] | None, options: dict):
        raise NotImplementedError

    def compile_args(self, model, options: dict) -> dict[str, Any]:
        """Loss and training metrics for `model.compile`."""
        raise NotImplementedError

    def check(self, examples: Sequence, model, where: str) -> None:
        """Raise DataError for examples the task cannot use (empty text, unknown label)."""

    def train_dataset(self, model, examples: Sequence, batch_size: int, seed: int | None,
                      shuffle: bool = True) -> tf.data.Dataset:
        raise NotImplementedError

    def predict(self, model, examples: Sequence, batch_size: int) -> dict[str, np.ndarray]:
        """Raw scores under "scores" (averageable across seeds) plus whatever decoding needs."""
        raise NotImplementedError

    def score(self, task: str, examples: Sequence, predictions: dict[str, np.ndarray], model) -> dict[str, float]:
        raise NotImplementedError


def check_nonempty(text, where: str, field: str = "text") -> None:
    if text is None or not str(text).strip():
        raise DataError(f"{where}: empty {field}")


def finish(dataset: tf.data.Dataset, preprocessor, batch_size: int, drop_remainder: bool) -> tf.data.Dataset:
    """Batch, preprocess in the graph, prefetch. Full batches keep XLA's shapes static."""
    dataset = dataset.batch(batch_size, drop_remainder=drop_remainder)
    return dataset.map(preprocessor, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)


def maybe_shuffle(dataset: tf.data.Dataset, size: int, seed: int | None, shuffle: bool) -> tf.data.Dataset:
    if shuffle:
        dataset = dataset.shuffle(max(size, 1), seed=seed, reshuffle_each_iteration=True)
    return dataset


def predict_in_batches(model: keras.Model, dataset: tf.data.Dataset) -> np.ndarray:
    """`model.predict` without the progress bar; returns numpy."""
    outputs = model.predict(dataset, verbose=0)
    return np.asarray(outputs)


def softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    x = x - x.max(axis=axis, keepdims=True)
    e = np.exp(x)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
