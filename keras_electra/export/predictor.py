"""One `predict` for every format: a Keras model directory, a SavedModel, a `.tflite`, an `.onnx`.

`Predictor.load(path)` picks a backend from the path; every backend only maps model inputs
(`token_ids`, `segment_ids`, `padding_mask`) to logits. Tokenisation and decoding are shared:
the task's own preprocessor (rebuilt from the metadata each export carries) and the tasks'
decoders. This is the one prediction path (`keras_electra.tasks.predict.predict_texts` is it
on a model directory); the output dicts:

- classification / relation: {"text", "label", "probability", "probabilities": {label: p}}
- regression: {"text", "score"}
- NER: {"text", "tokens", "tags", "entities": [{"type", "text", "start", "end", "probability"}]}
- QA: {"question", "context", "answer", "start", "end", "score"}
- multiple choice: {"context", "question", "choices", "choice", "answer", "probability", "probabilities"}

`predict_any(path, texts, ...)` is the function behind `keras-electra predict --model PATH`.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import tensorflow as tf

from keras_electra.export.common import (
    IDS_SIGNATURE,
    MODEL_KEYS,
    SERVING_SIGNATURE,
    ExportError,
    ExportInfo,
    rebuild_preprocessor,
)
from keras_electra.export.encoding import encode_texts, model_inputs, strings


def detect_format(path: str | Path) -> str:
    """"keras", "saved_model", "tflite" or "onnx" for a model path (by its files, not its name only)."""
    path = Path(path)
    if not path.exists():
        raise ExportError(f"model not found: {path}")
    if path.is_file():
        suffix = path.suffix.lower()
        if suffix == ".tflite":
            return "tflite"
        if suffix == ".onnx":
            return "onnx"
        if suffix == ".keras":
            return "keras"
        raise ExportError(f"{path}: unknown model file type {suffix!r} (expected .keras, .tflite or .onnx)")
    if (path / "model.keras").is_file():
        return "keras"
    from keras_electra.export.onnx import is_saved_model

    if is_saved_model(path):
        return "saved_model"
    raise ExportError(f"{path}: neither a fine-tuned model directory (model.keras) nor a SavedModel")


# ------------------------------------------------------------------------ backends
class Backend:
    """Model inputs → float32 logits, for one format."""

    format: str = ""
    takes_text = False

    def logits(self, inputs: dict[str, np.ndarray], batch_size: int = 32) -> np.ndarray:
        raise NotImplementedError

    @staticmethod
    def _chunks(inputs: dict[str, np.ndarray], batch_size: int):
        n = len(inputs["token_ids"])
        for start in range(0, n, max(int(batch_size), 1)):
            yield {k: np.asarray(inputs[k][start:start + batch_size], np.int32) for k in MODEL_KEYS}


class KerasBackend(Backend):
    format = "keras"

    def __init__(self, model) -> None:
        self.model = model

    def logits(self, inputs, batch_size=32):
        return np.asarray(self.model.predict(model_inputs(inputs), batch_size=batch_size, verbose=0), np.float32)


class SavedModelBackend(Backend):
    format = "saved_model"

    def __init__(self, directory: Path) -> None:
        import tensorflow_text  # noqa: F401  (registers the tokenizer ops of serving_default)

        self.module = tf.saved_model.load(str(directory))
        if IDS_SIGNATURE not in self.module.signatures:
            raise ExportError(f"{directory}: no {IDS_SIGNATURE!r} signature")
        self.function = self.module.signatures[IDS_SIGNATURE]
        self.serving = self.module.signatures.get(SERVING_SIGNATURE)

    def logits(self, inputs, batch_size=32):
        parts = [self.function(**{k: tf.constant(v) for k, v in chunk.items()})["logits"].numpy()
                 for chunk in self._chunks(inputs, batch_size)]
        return np.concatenate(parts).astype(np.float32)


class TFLiteBackend(Backend):
    format = "tflite"

    def __init__(self, path: Path, input_kind: str = "token_ids", num_threads: int | None = None) -> None:
        from keras_electra.export.tflite import load_interpreter

        self.interpreter = load_interpreter(path, num_threads=num_threads)
        self.takes_text = input_kind == "text"
        signatures = self.interpreter.get_signature_list()
        self.signature = SERVING_SIGNATURE if self.takes_text else IDS_SIGNATURE
        if self.signature not in signatures:
            raise ExportError(f"{path}: no {self.signature!r} signature (has {', '.join(signatures)})")

    def logits(self, inputs, batch_size=32):
        if self.takes_text:
            raise ExportError("this TFLite model takes text, not token ids")
        from keras_electra.export.tflite import run_signature

        return run_signature(self.interpreter, model_inputs(inputs), self.signature, batch_size)["logits"]

    def text_logits(self, texts: dict[str, Sequence[str]], batch_size: int = 32) -> np.ndarray:
        from keras_electra.export.tflite import run_signature

        arrays = {k: np.array([s.encode("utf-8") for s in v], dtype=object) for k, v in texts.items()}
        return run_signature(self.interpreter, arrays, self.signature, batch_size)["logits"]


class OnnxBackend(Backend):
    format = "onnx"

    def __init__(self, path: Path, num_threads: int | None = None) -> None:
        from keras_electra.export.onnx import onnx_session

        self.session = onnx_session(path, num_threads)

    def logits(self, inputs, batch_size=32):
        from keras_electra.export.onnx import run_onnx

        return np.concatenate([run_onnx(self.session, chunk) for chunk in self._chunks(inputs, batch_size)])


# ------------------------------------------------------------------------ predictor
class _ModelView:
    """What the tasks' decoders read from a model: its preprocessor, labels and `predict`."""

    def __init__(self, predictor: Predictor) -> None:
        self._predictor = predictor
        self.preprocessor = predictor.preprocessor
        self.label_names = predictor.info.labels

    def predict(self, x, batch_size=None, verbose=0):
        if isinstance(x, tf.data.Dataset):  # the runners' `predict_in_batches`
            batches = [b if isinstance(b, dict) else b[0] for b in x.as_numpy_iterator()]
            return np.concatenate([self._predictor.logits(b, batch_size or 32) for b in batches])
        return self._predictor.logits(x, batch_size or 32)


class Predictor:
    """Raw text → the `predict_texts` dicts, through any exported format."""

    def __init__(self, backend: Backend, info: ExportInfo, preprocessor, path: Path | None = None) -> None:
        self.backend = backend
        self.info = info
        self.preprocessor = preprocessor
        self.path = path

    @property
    def format(self) -> str:
        return self.backend.format

    @classmethod
    def load(cls, path: str | Path, num_threads: int | None = None) -> Predictor:
        path = Path(path)
        fmt = detect_format(path)
        if fmt == "keras":
            from keras_electra.export.common import load_for_export

            model, info = load_for_export(path)
            return cls(KerasBackend(model), info, model.preprocessor, path)
        if fmt == "saved_model":
            from keras_electra.export.saved_model import read_saved_model_info, resolve_saved_model_dir

            directory = resolve_saved_model_dir(path)
            info, vocabulary = read_saved_model_info(directory)
            return cls(SavedModelBackend(directory), info, rebuild_preprocessor(info, vocabulary), path)
        if fmt == "tflite":
            from keras_electra.export.common import METADATA_NAME
            from keras_electra.export.tflite import read_metadata, read_tflite_info

            info, vocabulary = read_tflite_info(path)
            import json

            kind = json.loads(read_metadata(path.read_bytes())[METADATA_NAME]).get("input", "token_ids")
            backend = TFLiteBackend(path, kind, num_threads)
            return cls(backend, info, rebuild_preprocessor(info, vocabulary), path)
        from keras_electra.export.onnx import read_onnx_info

        info, vocabulary = read_onnx_info(path)
        return cls(OnnxBackend(path, num_threads), info, rebuild_preprocessor(info, vocabulary), path)

    # ------------------------------------------------------------ raw outputs
    def logits(self, inputs: dict[str, np.ndarray], batch_size: int = 32) -> np.ndarray:
        """Logits for model input arrays (already packed to this model's sequence length)."""
        inputs = model_inputs(inputs)
        expected = self.info.model_input_shape[1:]
        if tuple(inputs["token_ids"].shape[1:]) != tuple(expected):
            raise ExportError(f"inputs of shape {inputs['token_ids'].shape} do not fit this model "
                              f"(expected [batch, {', '.join(map(str, expected))}])")
        return np.asarray(self.backend.logits(inputs, batch_size), np.float32)

    def encode(self, texts: Sequence[str]) -> dict[str, np.ndarray]:
        return encode_texts(self.preprocessor, self.info, texts)

    # ------------------------------------------------------------ predict
    def predict(
        self,
        texts: Sequence[str] = (),
        question: str | Sequence[str] | None = None,
        context: str | None = None,
        choices: Sequence[str] | None = None,
        batch_size: int = 32,
    ) -> list[dict]:
        """The same arguments and output as `keras_electra.tasks.predict.predict_texts`."""
        from keras_electra.tasks.predict import (
            _labelled,
            check_texts,
            choice_inputs,
            choice_result,
            clean_inputs,
            qa_questions,
            qa_results,
            split_pair,
        )
        from keras_electra.tasks.registry import check_pair_inputs
        from keras_electra.tasks.runner import softmax

        info = self.info
        texts, question, context, choices = clean_inputs(texts, question, context, choices)
        task = info.task_type
        if task == "question_answering":
            from keras_electra.tasks.question_answerer import decode_answers, encode_windows

            questions = qa_questions(question, texts, context)
            contexts = [context] * len(questions)
            encoded = encode_windows(self.preprocessor, questions, contexts, batch_size)
            answers = decode_answers(contexts, self.logits(encoded, batch_size), encoded, info.decoding)
            return qa_results(questions, context, answers)
        if task == "multiple_choice":
            q, options, padded = choice_inputs(context, question, choices or texts, info.num_choices)
            x = self.preprocessor((tf.constant([context]), tf.constant([q]), tf.constant([padded])))
            return choice_result(context, q, options, softmax(self.logits(x, batch_size))[0])
        check_texts(texts)
        if task == "token_classification":
            from keras_electra.tasks.token_classifier import decode_text

            return [{"text": t, **r} for t, r in zip(texts, decode_text(_ModelView(self), texts))]
        if task == "relation_classification":
            x = self.preprocessor(strings(texts))
            return _labelled(texts, softmax(self.logits(x, batch_size)), info.labels)
        # classification / regression
        pairs = [split_pair(t) for t in texts]
        check_pair_inputs(pairs, info.pair)  # every format refuses what the model was not trained on
        is_pair = info.pair
        if self.backend.takes_text:
            feed = {"text_a": [a for a, _ in pairs], "text_b": [b or "" for _, b in pairs]} if info.pair \
                else {"text": texts}
            logits = self.backend.text_logits(feed, batch_size)
        else:
            if is_pair:
                x = self.preprocessor((strings([a for a, _ in pairs]), strings([b or "" for _, b in pairs])))
            else:
                x = self.preprocessor(strings(texts))
            logits = self.logits(x, batch_size)
        if task == "regression":
            return [{"text": t, "score": float(s)} for t, s in zip(texts, np.asarray(logits)[:, 0])]
        return _labelled(texts, softmax(logits), info.labels)


@functools.lru_cache(maxsize=4)
def _cached(path: str, mtime: float) -> Predictor:
    return Predictor.load(path)


def load_predictor(path: str | Path) -> Predictor:
    """`Predictor.load`, cached per path (and modification time)."""
    path = Path(path).resolve()
    return _cached(str(path), path.stat().st_mtime)


def predict_any(
    path: str | Path,
    texts: Sequence[str] = (),
    question: str | Sequence[str] | None = None,
    context: str | None = None,
    choices: Sequence[str] | None = None,
    batch_size: int = 32,
) -> list[dict]:
    """Predictions for any format: a fine-tuned model directory, a SavedModel (the `NAME`
    directory or a version inside it), a `.tflite` or an `.onnx` file. The same function as
    `keras_electra.tasks.predict.predict_texts`, which also serves prompt models (not exportable)."""
    from keras_electra.tasks.predict import predict_texts

    return predict_texts(path, texts, question=question, context=context, choices=choices, batch_size=batch_size)
