"""SavedModel export for TF Serving: raw text in, answers out, tokenised in the graph.

Layout (what TF Serving expects): `OUTPUT/<version>/saved_model.pb`, `variables/`, `assets/`
(`vocab.txt`, `labels.txt`) and `assets.extra/keras_electra.json` (the `ExportInfo` that
`keras_electra.export.predictor` reads). Serve it as model NAME by mounting `OUTPUT` at
`/models/NAME`.

Signatures:

- `serving_default`: raw strings [batch] (a pair task takes `text_a`, `text_b`; QA takes
  `question`, `context`; multiple choice `context`, `question`, `choices` [batch, C]).
  Tokenises with tensorflow-text (the task's own preprocessor) and returns
  - classification / relation: `label` (string), `label_id`, `probability`, `probabilities`, `logits`;
  - regression: `score`, `logits`;
  - NER: per position `tokens`, `token_labels` (the entity tag on each word's first
    sub-word, "" elsewhere), `token_label_ids` (-1 elsewhere), `probabilities`, `word_ids`,
    `char_start`/`char_end` (character offsets), `is_word_start`, `logits`;
  - QA: `answer`, `start`/`end` (character offsets in the context, -1 for no answer), `score`;
  - multiple choice: `choice`, `answer`, `probability`, `probabilities`, `logits`.
- `token_ids`: `token_ids`, `segment_ids`, `padding_mask` int32 [batch, L] → `logits`.
  This is the graph that the TFLite and ONNX exports convert.

Loading needs the tensorflow-text ops registered (`import tensorflow_text`), nothing from
keras_electra.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import keras
import tensorflow as tf

from keras_electra.export.common import (
    IDS_SIGNATURE,
    LABELS_METADATA,
    METADATA_FILE,
    MODEL_KEYS,
    SERVING_SIGNATURE,
    VOCAB_METADATA,
    ExportError,
    ExportInfo,
    export_info,
    load_for_export,
    slim_model,
    tracked_variables,
    with_seq_length,
)
from keras_electra.utils.io import atomic_directory

NEG_INF = float("-inf")


class ElectraServingModule(tf.Module):
    """The serving graph of a task model: string signature + token-id signature.

    Args:
        model: a keras_electra task model (its preprocessor supplies the tokenizer).
        info: its `ExportInfo` (task type, labels, sequence length).
        preprocessor: the preprocessor to use (defaults to the model's), e.g. one with a
            different `seq_length`.
        assets_dir: a directory holding `vocab.txt` and `labels.txt` to attach as assets.
    """

    def __init__(self, model: keras.Model, info: ExportInfo, preprocessor=None, assets_dir: Path | None = None):
        super().__init__(name="electra_serving")
        self.model = model
        self.preprocessor = preprocessor or model.preprocessor
        self.info = info
        self.model_variables = tracked_variables(model)
        labels = info.labels or []
        self._labels = tf.constant(labels or [""], tf.string)
        self._vocabulary = tf.constant(self.preprocessor.tokenizer.vocabulary, tf.string)
        if assets_dir is not None:
            self.vocab_file = tf.saved_model.Asset(str(assets_dir / VOCAB_METADATA))
            self.labels_file = tf.saved_model.Asset(str(assets_dir / LABELS_METADATA))
        ids_spec = [tf.TensorSpec(info.model_input_shape, tf.int32, name=k) for k in MODEL_KEYS]
        self.token_ids = tf.function(self._token_ids, input_signature=ids_spec)
        self.serve = self._serving_function()

    # ------------------------------------------------------------------ graphs
    def logits(self, inputs: dict) -> tf.Tensor:
        return tf.cast(self.model({k: inputs[k] for k in MODEL_KEYS}, training=False), tf.float32)

    def _token_ids(self, token_ids, segment_ids, padding_mask):
        return {"logits": self.logits({"token_ids": token_ids, "segment_ids": segment_ids,
                                       "padding_mask": padding_mask})}

    def _serving_function(self):
        task = self.info.task_type
        string = lambda name: tf.TensorSpec([None], tf.string, name=name)  # noqa: E731
        if task in ("classification", "regression", "relation_classification"):
            post = self._regression if task == "regression" else self._classification
            if self.info.pair:
                def serve(text_a, text_b):
                    return post(self.logits(self.preprocessor((text_a, text_b))))

                return tf.function(serve, input_signature=[string("text_a"), string("text_b")])

            def serve(text):
                return post(self.logits(self.preprocessor(text)))

            return tf.function(serve, input_signature=[string("text")])
        if task == "token_classification":
            return tf.function(self._tag, input_signature=[string("text")])
        if task == "question_answering":
            return tf.function(self._answer, input_signature=[string("question"), string("context")])
        if task == "multiple_choice":
            choices = tf.TensorSpec([None, self.info.num_choices], tf.string, name="choices")
            return tf.function(self._choose, input_signature=[string("context"), string("question"), choices])
        raise ExportError(f"no serving signature for task type {task!r}")

    def _classification(self, logits):
        probabilities = tf.nn.softmax(logits, axis=-1)
        label_id = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "label": tf.gather(self._labels, label_id),
            "label_id": label_id,
            "probability": tf.reduce_max(probabilities, axis=-1),
            "probabilities": probabilities,
            "logits": logits,
        }

    def _regression(self, logits):
        return {"score": logits[:, 0], "logits": logits}

    def _tag(self, text):
        packed = self.preprocessor.encode_text(text)
        logits = self.logits(packed)
        probabilities = tf.nn.softmax(logits, axis=-1)
        word_ids = packed["word_ids"]
        previous = tf.pad(word_ids[:, :-1], [[0, 0], [1, 0]], constant_values=-1)
        # The model predicts a word's tag on its first sub-word (as decode_text reads it).
        is_word_start = (word_ids >= 0) & (word_ids != previous)
        label_ids = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "tokens": tf.where(packed["padding_mask"] > 0, tf.gather(self._vocabulary, packed["token_ids"]), ""),
            "token_labels": tf.where(is_word_start, tf.gather(self._labels, label_ids), ""),
            "token_label_ids": tf.where(is_word_start, label_ids, -1),
            "probabilities": tf.reduce_max(probabilities, axis=-1),
            "is_word_start": is_word_start,
            "word_ids": word_ids,
            "char_start": packed["char_start"],
            "char_end": packed["char_end"],
            "logits": logits,
        }

    def _choose(self, context, question, choices):
        logits = self.logits(self.preprocessor((context, question, choices)))
        probabilities = tf.nn.softmax(logits, axis=-1)
        choice = tf.argmax(logits, axis=-1, output_type=tf.int32)
        return {
            "choice": choice,
            "answer": tf.gather(choices, choice, batch_dims=1),
            "probability": tf.reduce_max(probabilities, axis=-1),
            "probabilities": probabilities,
            "logits": logits,
        }

    def _answer(self, question, context):
        """The best span per (question, context) over all document windows, in the graph.

        Mirrors `tasks.question_answerer.decode_answers`: candidates inside the context,
        start ≤ end, at most `max_answer_length` tokens, the start scored only in the window
        where it has maximal context; for the "huggingface" head the n-best starts and ends of
        each window, for the "electra" head each beam start with its beam ends; the head's
        no-answer rule when `allow_no_answer` is set.
        """
        options = self.info.decoding
        packed = self.preprocessor.encode(question, context)
        outputs = self.logits(packed)
        example = packed["example_index"]
        ctx = packed["context_token_index"]
        num_examples = tf.shape(question)[0]
        valid = ctx >= 0
        is_max = _max_context(example, ctx, valid)
        electra = options.get("head", "huggingface") == "electra"
        window_best = _electra_window_best if electra else _span_window_best
        row_score, best_start, best_end, row_null = window_best(outputs, valid, is_max, options)

        example_score = tf.math.unsorted_segment_max(row_score, example, num_examples)
        rows = tf.range(tf.shape(example)[0])
        big = tf.int32.max
        is_top = row_score >= tf.gather(example_score, example)
        best_row = tf.math.unsorted_segment_min(tf.where(is_top, rows, big), example, num_examples)
        best_row = tf.minimum(best_row, tf.shape(example)[0] - 1)
        has_answer = example_score > NEG_INF
        s = tf.gather(best_start, best_row)
        e = tf.gather(best_end, best_row)
        start_char = tf.gather_nd(packed["char_start"], tf.stack([best_row, s], axis=1))
        end_char = tf.gather_nd(packed["char_end"], tf.stack([best_row, e], axis=1))
        null_score = tf.math.unsorted_segment_min(row_null, example, num_examples)
        answered = has_answer
        score = tf.where(has_answer, example_score, NEG_INF)
        if options.get("allow_no_answer"):
            # "electra": the answerability logit itself; "huggingface": null score − best span score.
            diff = null_score if electra else null_score - example_score
            answered = has_answer & (diff <= options["null_score_threshold"])
            score = tf.where(answered, example_score, null_score)
        start_char = tf.where(answered, start_char, -1)
        end_char = tf.where(answered, end_char, -1)
        text = tf.strings.substr(context, tf.maximum(start_char, 0), tf.maximum(end_char - start_char, 0),
                                 unit="UTF8_CHAR")
        return {"answer": tf.where(answered, text, ""), "start": start_char, "end": end_char, "score": score}


def _span_window_best(logits, valid, is_max, options):
    """Hugging Face head: (best span score, its start, its end, null score) per window from
    start/end logits [N, L, 2]: the n-best starts × the n-best ends."""
    start_logits, end_logits = logits[:, :, 0], logits[:, :, 1]
    length = tf.shape(valid)[1]
    k = tf.minimum(options["n_best"], length)
    top_starts = tf.reduce_max(tf.one_hot(tf.math.top_k(start_logits, k).indices, length), axis=1) > 0
    top_ends = tf.reduce_max(tf.one_hot(tf.math.top_k(end_logits, k).indices, length), axis=1) > 0
    start_ok = top_starts & valid & is_max
    end_ok = top_ends & valid
    positions = tf.range(length)
    span = positions[None, :] - positions[:, None]  # e - s, [L(start), L(end)]
    span_ok = (span >= 0) & (span < options["max_answer_length"])
    allowed = start_ok[:, :, None] & end_ok[:, None, :] & span_ok[None]
    scores = tf.where(allowed, start_logits[:, :, None] + end_logits[:, None, :], NEG_INF)
    flat = tf.reshape(scores, [tf.shape(scores)[0], -1])
    best_flat = tf.argmax(flat, axis=-1, output_type=tf.int32)
    return (tf.reduce_max(flat, axis=-1), best_flat // length, best_flat % length,
            start_logits[:, 0] + end_logits[:, 0])


def _electra_window_best(beam, valid, is_max, options):
    """ELECTRA head: the same per window from its beam [N, K, 2K+3] (`unpack_beam`): each
    beam start (not [CLS]) with each of its beam ends; the null score is the answerability logit."""
    k = tf.shape(beam)[1]
    n = tf.shape(beam)[0]
    start_log_probs = beam[:, :, 0]
    starts = tf.cast(tf.round(beam[:, :, 1]), tf.int32)  # [N, K]
    end_log_probs = beam[:, :, 2:2 + k]
    ends = tf.cast(tf.round(beam[:, :, 2 + k:2 + 2 * k]), tf.int32)  # [N, K, K]
    start_ok = tf.gather(valid & is_max, starts, batch_dims=1) & (starts > 0)
    end_ok = tf.reshape(tf.gather(valid, tf.reshape(ends, [n, -1]), batch_dims=1), [n, k, k])
    span = ends - starts[:, :, None]
    allowed = start_ok[:, :, None] & end_ok & (span >= 0) & (span < options["max_answer_length"])
    scores = tf.where(allowed, start_log_probs[:, :, None] + end_log_probs, NEG_INF)
    flat = tf.reshape(scores, [n, -1])
    best_flat = tf.argmax(flat, axis=-1, output_type=tf.int32)
    best_start = tf.gather(starts, best_flat // k, batch_dims=1)
    best_end = tf.gather(tf.reshape(ends, [n, -1]), best_flat, batch_dims=1)
    return tf.reduce_max(flat, axis=-1), best_start, best_end, beam[:, 0, 2 + 2 * k]


def _max_context(example, ctx, valid):
    """[N, L] True where window N gives context token ctx[N, L] its maximal context.

    BERT's `_check_is_max_context` in integers: 100·min(left, right) + window length, the
    first window winning ties (as the Python decoder does).
    """
    big = tf.int32.max
    lo = tf.reduce_min(tf.where(valid, ctx, big), axis=1, keepdims=True)
    hi = tf.reduce_max(tf.where(valid, ctx, -1), axis=1, keepdims=True)
    score = 100 * tf.minimum(ctx - lo, hi - ctx) + (hi - lo + 1)
    span = tf.reduce_max(ctx) + 2
    segment = tf.where(valid, example[:, None] * span + ctx, 0)
    num_segments = (tf.reduce_max(example) + 1) * span
    score = tf.where(valid, score, -1)
    best = tf.math.unsorted_segment_max(tf.reshape(score, [-1]), tf.reshape(segment, [-1]), num_segments)
    is_best = valid & tf.equal(score, tf.gather(best, segment))
    rows = tf.broadcast_to(tf.range(tf.shape(ctx)[0])[:, None], tf.shape(ctx))
    first = tf.math.unsorted_segment_min(tf.reshape(tf.where(is_best, rows, big), [-1]), tf.reshape(segment, [-1]),
                                         num_segments)
    return is_best & tf.equal(rows, tf.gather(first, segment))


# ------------------------------------------------------------------------ export
def prepare_model(model_or_path, pair: bool | None = None, max_seq_len: int | None = None,
                  keep_layers: int | None = None):
    """(model, preprocessor, info) ready to export: loaded, slimmed and re-lengthed as asked."""
    if isinstance(model_or_path, keras.Model):
        model, info = model_or_path, export_info(model_or_path, pair=pair)
    else:
        model, info = load_for_export(model_or_path, pair=pair)
    if keep_layers is not None:
        model = slim_model(model, keep_layers)
        info.num_layers = int(keep_layers)
    preprocessor = with_seq_length(model, max_seq_len)
    info.seq_length = int(preprocessor.seq_length)
    info.preprocessor["config"]["seq_length"] = info.seq_length
    return model, preprocessor, info


def write_assets(directory: Path, vocabulary, labels) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / VOCAB_METADATA).write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    (directory / LABELS_METADATA).write_text("".join(f"{label}\n" for label in labels or ()), encoding="utf-8")


def save_module(module: ElectraServingModule, directory: Path, signatures: dict) -> None:
    tf.saved_model.save(module, str(directory), signatures=signatures)
    extra = directory / "assets.extra"
    extra.mkdir(exist_ok=True)
    (extra / METADATA_FILE).write_text(module.info.to_json() + "\n", encoding="utf-8")


def export_saved_model(
    model_or_path,
    output: str | Path,
    version: int = 1,
    pair: bool | None = None,
    max_seq_len: int | None = None,
    keep_layers: int | None = None,
) -> Path:
    """Write `output/<version>/` (TF Serving layout) atomically; returns the version directory.

    model_or_path: a fine-tuned model directory, a `.keras` file or a task model.
    pair: classification on sentence pairs (None: from `task.json`).
    max_seq_len: pack to this length instead of the fine-tuning length.
    keep_layers: keep only the bottom K transformer layers.
    """
    if int(version) < 1:
        raise ExportError(f"SavedModel version must be a positive integer, got {version}")
    model, preprocessor, info = prepare_model(model_or_path, pair, max_seq_len, keep_layers)
    target = Path(output) / str(int(version))
    with tempfile.TemporaryDirectory(prefix="electra-assets-") as assets:
        assets = Path(assets)
        write_assets(assets, preprocessor.tokenizer.vocabulary, info.labels)
        module = ElectraServingModule(model, info, preprocessor, assets)
        with atomic_directory(target) as tmp:
            save_module(module, tmp, {SERVING_SIGNATURE: module.serve, IDS_SIGNATURE: module.token_ids})
    return target


def export_token_ids_saved_model(model, info: ExportInfo, directory: Path) -> Path:
    """A SavedModel with the `token_ids` signature only (no tensorflow-text ops): the graph
    the TFLite and ONNX converters read."""
    module = ElectraServingModule(model, info)
    save_module(module, directory, {IDS_SIGNATURE: module.token_ids})
    return directory


def resolve_saved_model_dir(path: str | Path) -> Path:
    """A SavedModel directory: `path` itself, or the highest numeric version inside it."""
    path = Path(path)
    if (path / "saved_model.pb").is_file():
        return path
    versions = sorted((int(p.name), p) for p in path.iterdir() if p.name.isdigit() and p.is_dir()) \
        if path.is_dir() else []
    for _, candidate in reversed(versions):
        if (candidate / "saved_model.pb").is_file():
            return candidate
    raise ExportError(f"{path}: no saved_model.pb (neither here nor in a numeric version directory)")


def read_saved_model_info(path: str | Path) -> tuple[ExportInfo, list[str]]:
    """(ExportInfo, vocabulary) of a SavedModel written by `export_saved_model`."""
    directory = resolve_saved_model_dir(path)
    meta = directory / "assets.extra" / METADATA_FILE
    vocab = directory / "assets" / VOCAB_METADATA
    if not meta.is_file() or not vocab.is_file():
        raise ExportError(f"{directory}: not a keras_electra export (no assets.extra/{METADATA_FILE} "
                          f"or assets/{VOCAB_METADATA})")
    info = ExportInfo.from_json(meta.read_text(encoding="utf-8"), str(meta))
    vocabulary = vocab.read_text(encoding="utf-8").split("\n")
    if vocabulary and vocabulary[-1] == "":
        vocabulary.pop()
    return info, vocabulary
