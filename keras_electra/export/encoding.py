"""Raw inputs (`predict`'s texts, or dataset reader examples) -> model input arrays, for any export.

Used by the predictor, by int8 calibration (`export.tflite`, `export.cli`) and by benchmarks; it
depends on no backend, so `predictor` and `tflite` both import it without importing each other.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import tensorflow as tf

from keras_electra.errors import DataError
from keras_electra.export.common import MODEL_KEYS, ExportError, ExportInfo


def strings(values: Sequence[str]) -> tf.Tensor:
    return tf.constant(list(values), tf.string, shape=[len(values)])


def model_inputs(packed: dict) -> dict[str, np.ndarray]:
    return {k: np.asarray(packed[k], np.int32) for k in MODEL_KEYS}


def encode_texts(preprocessor, info: ExportInfo, texts: Sequence[str]) -> dict[str, np.ndarray]:
    """Raw inputs in `predict`'s format → model input arrays (calibration data, benchmarks).

    Classifiers take "a<TAB>b" for a pair; QA "question<TAB>context"; multiple choice
    "context<TAB>question<TAB>choice 1<TAB>choice 2...".
    """
    from keras_electra.tasks.predict import split_pair

    texts = [str(t) for t in texts]
    if not texts:
        raise DataError("no texts to encode")
    task = info.task_type
    if task in ("classification", "regression"):
        pairs = [split_pair(t) for t in texts]
        if info.pair or any(b is not None for _, b in pairs):
            return model_inputs(preprocessor((strings([a for a, _ in pairs]), strings([b or "" for _, b in pairs]))))
        return model_inputs(preprocessor(strings(texts)))
    if task == "relation_classification":
        return model_inputs(preprocessor(strings(texts)))
    if task == "token_classification":
        return model_inputs(preprocessor.encode_text(strings(texts)))
    if task == "question_answering":
        from keras_electra.tasks.question_answerer import encode_windows

        parts = [t.split("\t", 1) for t in texts]
        if any(len(p) != 2 for p in parts):
            raise DataError("question-answering calibration texts are 'question<TAB>context'")
        return model_inputs(encode_windows(preprocessor, [p[0] for p in parts], [p[1] for p in parts]))
    if task == "multiple_choice":
        rows = [t.split("\t") for t in texts]
        c = info.num_choices
        if any(len(r) < 4 for r in rows):
            raise DataError("multiple-choice calibration texts are 'context<TAB>question<TAB>choice<TAB>choice...'")
        choices = [(r[2:] + [""] * c)[:c] for r in rows]
        return model_inputs(preprocessor((strings([r[0] for r in rows]), strings([r[1] for r in rows]),
                                           tf.constant(choices, tf.string, shape=[len(rows), c]))))
    raise ExportError(f"unknown task type {task!r}")


def encode_examples(preprocessor, info: ExportInfo, examples: Sequence[Any]) -> dict[str, np.ndarray]:
    """Dataset reader examples (training data) → model input arrays, as the task runners pack them."""
    examples = list(examples)
    if not examples:
        raise DataError("no examples to encode")
    first = examples[0]
    if hasattr(first, "words"):
        words = tf.ragged.constant([list(e.words) for e in examples], dtype=tf.string, ragged_rank=1)
        return model_inputs(preprocessor.encode_words(words))
    if hasattr(first, "context") and hasattr(first, "choices"):
        from keras_electra.tasks.multiple_choice import _inputs

        return model_inputs(preprocessor(_inputs(examples, info.num_choices)))
    if hasattr(first, "question") and hasattr(first, "context"):
        from keras_electra.tasks.question_answerer import encode_windows

        return model_inputs(encode_windows(preprocessor, [e.question for e in examples],
                                            [e.context for e in examples]))
    if info.task_type == "relation_classification":
        from keras_electra.tasks.relation_classifier import marked_texts

        return model_inputs(preprocessor(strings(marked_texts(examples, preprocessor.markers))))
    if hasattr(first, "text_a"):
        if info.pair or any(e.text_b is not None for e in examples):
            return model_inputs(preprocessor((strings([e.text_a for e in examples]),
                                               strings([e.text_b or "" for e in examples]))))
        return model_inputs(preprocessor(strings([e.text_a for e in examples])))
    raise ExportError(f"cannot encode examples of type {type(first).__name__} for a {info.task_type} model")
