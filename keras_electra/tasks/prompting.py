"""Zero-shot and few-shot classification with the discriminator's replaced-token detection.

ELECTRA's RTD head says, for every token, how likely it was *replaced*. Fill a template such as
"{text} It was {label}." with each candidate label word ("good", "bad"), and the label whose word
the discriminator finds least replaced is the prediction (Ni & Kao 2022, "ELECTRA is a zero-shot
learner, too"; Xia et al. 2022, "Prompting ELECTRA"). A word of several word pieces scores the
average of its pieces' "original" probabilities, 1 - sigmoid(RTD logit).

Few-shot fine-tuning uses the same scoring as its objective (Xia et al.): binary cross-entropy on
each candidate's score, the correct label word "original" (1) and every other "replaced" (0); the
RTD head and the encoder train together, and the saved model predicts with the same scoring.

- `PromptPreprocessor`: texts in, `token_ids`/`segment_ids`/`padding_mask`/`label_mask` of shape
  [B, C, L] out (C = candidates), in TF graph ops, static shapes. All pieces go into segment 0.
- `PromptClassifier`: backbone + RTD head; outputs [B, C], each candidate's "original" probability.
- `PromptRunner`: the `TaskRunner` of kind "prompt" (train/predict/score) for `finetune --prompt`.
- `zero_shot(...)`: score a discriminator on a dataset with no training (`keras-electra zero-shot`).
"""

from __future__ import annotations

import dataclasses
import string
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from keras import ops

from keras_electra.errors import CheckpointError, DataError, ElectraError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.discriminator import replaced_token_head
from keras_electra.tasks.base import ElectraTask, _is_raw_text, _text_tensors, add_dense
from keras_electra.tasks.classifier import ClassificationRunner, _inputs
from keras_electra.tasks.preprocessors import ElectraPreprocessor, _strings, no_autograph, trim_pair_lengths
from keras_electra.tasks.runner import finish, maybe_shuffle, predict_in_batches

PROMPT_KEYS = ("token_ids", "segment_ids", "padding_mask", "label_mask")
# Placeholder name -> text slot (0: the first text, 1: the second of a pair).
TEXT_FIELDS = {"text": 0, "text_a": 0, "sentence": 0, "sentence1": 0, "text_b": 1, "sentence2": 1}
LABEL_FIELD = "label"


# ------------------------------------------------------------------- templates
@dataclasses.dataclass(frozen=True)
class Piece:
    kind: str  # "text", "literal" or "label"
    value: str | int = ""  # the literal's text, or the text slot


def parse_template(template: str, columns: Sequence[str] = ()) -> list[Piece]:
    """"{text} It was {label}." -> pieces. `columns` (a table's text columns) are also placeholders,
    naming the first and second text. Exactly one {label}, at least one text; `{{`/`}}` are braces."""
    fields = dict(TEXT_FIELDS)
    fields.update({name: i for i, name in enumerate(columns)})
    pieces: list[Piece] = []
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as err:
        raise DataError(f"--template {template!r}: {err}") from None
    for literal, field, spec, conversion in parsed:
        if literal:
            pieces.append(Piece("literal", literal))
        if field is None:
            continue
        if spec or conversion:
            raise DataError(f"--template {template!r}: {{{field}}} takes no format spec or conversion")
        if field == LABEL_FIELD:
            pieces.append(Piece("label"))
        elif field in fields:
            pieces.append(Piece("text", fields[field]))
        else:
            known = ", ".join(f"{{{name}}}" for name in [LABEL_FIELD, *fields])
            raise DataError(f"--template {template!r}: unknown placeholder {{{field}}} (known: {known})")
    labels = sum(p.kind == "label" for p in pieces)
    if labels != 1:
        raise DataError(f"--template {template!r} must contain {{label}} exactly once (found {labels}), e.g. "
                        "\"{text} It was {label}.\"")
    if not any(p.kind == "text" for p in pieces):
        raise DataError(f"--template {template!r} has no text placeholder, e.g. {{text}} (or {{text_a}}, {{text_b}})")
    return pieces


def num_texts(pieces: Sequence[Piece]) -> int:
    slots = {int(p.value) for p in pieces if p.kind == "text"}
    return max(slots) + 1


def parse_label_words(items: Sequence[str], labels: Sequence[str] | None = None) -> tuple[list[str], list[str]]:
    """["great=1", "terrible=0"] -> (words, labels) in the order of `labels` (the task's label set)
    when it is given, else in the order given. Each label gets one word; a word may be several tokens."""
    if not items:
        raise DataError("--labels is required with a prompt: WORD=LABEL for every label, e.g. great=1 terrible=0")
    pairs: dict[str, str] = {}
    for item in items:
        word, sep, label = str(item).partition("=")
        word, label = word.strip(), label.strip()
        if not sep or not word or not label:
            raise DataError(f"--labels {item!r}: write WORD=LABEL, e.g. great=1")
        if label in pairs:
            raise DataError(f"--labels: label {label!r} has two words ({pairs[label]!r}, {word!r})")
        pairs[label] = word
    if labels is None:
        return list(pairs.values()), list(pairs)
    labels = [str(x) for x in labels]
    unknown = [label for label in pairs if label not in labels]
    if unknown:
        raise DataError(f"--labels: unknown label {unknown[0]!r} (the task's labels: {', '.join(labels)})")
    missing = [label for label in labels if label not in pairs]
    if missing:
        raise DataError(f"--labels: no word for label {missing[0]!r} (give WORD=LABEL for each of "
                        f"{', '.join(labels)})")
    return [pairs[label] for label in labels], labels


# -------------------------------------------------------------- preprocessor
@keras.saving.register_keras_serializable(package="keras_electra")
class PromptPreprocessor(ElectraPreprocessor):
    """One text (or a pair) -> the template filled with each of C label words, packed [CLS] ... [SEP].

    `call(x, y=None, sample_weight=None)`: `x` a string tensor [B] or a tuple of two. Returns the
    model dict: `token_ids`, `segment_ids`, `padding_mask` and `label_mask` (1 at the label word's
    tokens), int32 [B, C, seq_length]. Texts are cut (the longer of a pair first) so that the
    template's other tokens and the longest label word always fit.
    """

    def __init__(self, tokenizer, template: str, label_words: Sequence[str], seq_length: int = 128,
                 columns: Sequence[str] = (), **kwargs) -> None:
        super().__init__(tokenizer, seq_length, **kwargs)
        self.template = str(template)
        self.columns = [str(c) for c in columns]
        self.pieces = parse_template(self.template, self.columns)
        self.num_texts = num_texts(self.pieces)
        self.label_words = [str(w) for w in label_words]
        if len(self.label_words) < 2:
            raise DataError(f"a prompt needs at least two label words, got {self.label_words}")
        self._label_ids = [self._constant_ids(w, f"label word {w!r}") for w in self.label_words]
        self._literal_ids = [self._constant_ids(p.value, None) if p.kind == "literal" else None for p in self.pieces]
        fixed = sum(len(ids) for ids in self._literal_ids if ids is not None) + max(map(len, self._label_ids))
        self.text_budget = self.seq_length - 2 - fixed  # tokens left for the text(s)
        if self.text_budget < self.num_texts:
            raise DataError(f"--template {self.template!r} with its longest label word takes {fixed + 2} of the "
                            f"{self.seq_length} tokens; raise --seq-length")

    def _constant_ids(self, text: str, what: str | None) -> list[int]:
        ids = [int(i) for i in self.tokenizer.tokenize(tf.constant([text])).to_list()[0]]
        if what and not ids:
            raise DataError(f"{what} makes no token")
        if what and self.tokenizer.unk_id in ids:
            raise DataError(f"{what} is not in the vocabulary (it tokenizes to [UNK])")
        return ids

    @no_autograph
    def call(self, x, y=None, sample_weight=None):
        texts = list(x) if isinstance(x, tuple | list) else [x]
        if len(texts) < self.num_texts:
            raise DataError(f"the template {self.template!r} needs {self.num_texts} texts, got {len(texts)}")
        segments, scalar = [], False
        for text in texts[: self.num_texts]:
            text, scalar = _strings(text)
            segments.append(self.tokenizer.tokenize(text))
        if self.num_texts == 1:
            lengths = [tf.minimum(segments[0].row_lengths(), self.text_budget)]
        else:
            lengths = list(trim_pair_lengths(segments[0].row_lengths(), segments[1].row_lengths(), self.text_budget))
        kept = [_keep_first(s, n) for s, n in zip(segments, lengths)]
        batch = tf.shape(segments[0].row_lengths())[0]
        per_label = [self._fill(kept, ids, batch) for ids in self._label_ids]
        out = {k: tf.stack([p[k] for p in per_label], axis=1) for k in PROMPT_KEYS}
        if scalar:
            out = {k: v[0] for k, v in out.items()}
        return keras.utils.pack_x_y_sample_weight(out, y, sample_weight)

    def _fill(self, texts: list[tf.RaggedTensor], label_ids: list[int], batch) -> dict[str, tf.Tensor]:
        """The template filled with one label word: packed ids and the label word's mask, [B, L]."""
        ids, mask = [], []
        for piece, literal in zip(self.pieces, self._literal_ids):
            if piece.kind == "text":
                part = texts[int(piece.value)]
            else:
                values = label_ids if piece.kind == "label" else literal
                if not values:  # a literal of only spaces
                    continue
                row = tf.constant(values, tf.int32)
                part = tf.RaggedTensor.from_tensor(tf.tile(row[None, :], [batch, 1]))
            ids.append(tf.cast(part, tf.int32))
            mask.append(tf.ones_like(part, tf.int32) * int(piece.kind == "label"))
        tokens = tf.concat(ids, axis=1)
        packed = self._pack([tokens], [tokens.row_lengths()], side={"label_mask": ([tf.concat(mask, axis=1)], 0)})
        return {k: packed[k] for k in PROMPT_KEYS}

    def get_config(self) -> dict:
        return {**super().get_config(), "template": self.template, "label_words": self.label_words,
                "columns": self.columns}


def _keep_first(tokens: tf.RaggedTensor, lengths) -> tf.RaggedTensor:
    """The first `lengths[i]` tokens of each row."""
    keep = tf.ragged.range(tokens.row_lengths()) < tf.cast(lengths, tf.int64)[:, None]
    return tf.ragged.boolean_mask(tokens, keep)


# --------------------------------------------------------------------- model
@keras.saving.register_keras_serializable(package="keras_electra")
class PromptClassifier(ElectraTask):
    """Classification by replaced-token detection on a filled template.

    Inputs: the `PromptPreprocessor` dict, [B, C, L] each. Output: float32 [B, C], the average
    "original" probability (1 - sigmoid(RTD logit)) over each candidate label word's tokens.
    The RTD head keeps the official names (`discriminator_predictions/{dense,dense_1}`).
    """

    task_type = "prompt_classification"

    def __init__(self, backbone: ElectraBackbone, preprocessor: PromptPreprocessor | None = None,
                 label_names: list[str] | None = None, adversarial_epsilon: float = 0.0, **kwargs) -> None:
        super().__init__(backbone, preprocessor, label_names, adversarial_epsilon, **kwargs)
        self.rtd_head = replaced_token_head(backbone)
        self.built = True

    @classmethod
    def from_discriminator(cls, discriminator, preprocessor: PromptPreprocessor,
                           label_names: Sequence[str]) -> PromptClassifier:
        """Share the discriminator's encoder and copy its RTD head's weights."""
        model = cls(discriminator.backbone, preprocessor=preprocessor, label_names=list(label_names))
        model.rtd_head.set_weights(discriminator.rtd_head.get_weights())
        return model

    def call(self, inputs, training=None):
        shape = ops.shape(inputs["token_ids"])
        length = shape[-1]
        flat = {k: ops.reshape(inputs[k], (-1, length)) for k in ("token_ids", "segment_ids", "padding_mask")}
        logits = self.rtd_head(self.backbone(flat, training=training))  # [B*C, L], "replaced" logits
        original = ops.sigmoid(-ops.reshape(ops.cast(logits, "float32"), (-1, shape[1], length)))
        mask = ops.cast(inputs["label_mask"], "float32")
        return ops.sum(original * mask, axis=-1) / ops.maximum(ops.sum(mask, axis=-1), 1.0)

    def head_weights(self) -> dict[str, keras.Variable]:
        names: dict[str, keras.Variable] = {}
        add_dense(names, "discriminator_predictions/dense", self.rtd_head.dense)
        add_dense(names, "discriminator_predictions/dense_1", self.rtd_head.dense_1)
        return names

    def predict(self, x, *args, **kwargs):
        """Scores [B, C]; raw text (a list of strings, or a tuple of two lists) goes through the preprocessor."""
        if _is_raw_text(x):
            x = self.preprocessor(_text_tensors(x))
            x = {k: x[k] for k in PROMPT_KEYS}
        return keras.Model.predict(self, x, *args, **kwargs)


# ------------------------------------------------------------------- loading
def load_discriminator_for_prompts(path: str | Path):
    """(ElectraDiscriminator with its RTD head, tokenizer) from any checkpoint `convert` reads."""
    from keras_electra.convert.api import load_discriminator, read_checkpoint, tokenizer_from_checkpoint
    from keras_electra.convert.resolve import resolve_optional

    path = resolve_optional(str(path))
    if not Path(path).exists():
        raise CheckpointError(f"--model {path}: no such checkpoint")
    checkpoint = read_checkpoint(path)
    if checkpoint.model is not None:
        from keras_electra.models.discriminator import ElectraDiscriminator
        from keras_electra.tasks.base import load_tokenizer

        if isinstance(checkpoint.model, PromptClassifier):  # a prompt model: start from its encoder and head
            return checkpoint.model, checkpoint.model.preprocessor.tokenizer
        if not isinstance(checkpoint.model, ElectraDiscriminator):
            raise CheckpointError(f"{checkpoint.path} holds a {type(checkpoint.model).__name__}, not a discriminator "
                                  "with a replaced-token-detection head; prompts need one (a pretrain output)")
        return checkpoint.model, load_tokenizer(checkpoint.path, fallback=Path(path) if Path(path).is_dir() else None)
    if not checkpoint.has_discriminator_head:
        raise CheckpointError(
            f"{checkpoint.path} has no replaced-token-detection head (discriminator_predictions): prompts score "
            "label words with it. A plain encoder (BERT, MiniLM, an ElectraModel) has none; continue its pretraining "
            "first (keras-electra pretrain --init ...) or use an ElectraForPreTraining discriminator")
    discriminator = load_discriminator(checkpoint)
    tokenizer = tokenizer_from_checkpoint(checkpoint)
    if tokenizer is None:
        raise CheckpointError(f"{checkpoint.path} has no vocab.txt; the checkpoint must come with its vocabulary")
    return discriminator, tokenizer


def build_prompt_model(init: str | Path, template: str, label_items: Sequence[str], labels: Sequence[str] | None,
                       seq_length: int, columns: Sequence[str] = ()) -> tuple[PromptClassifier, Any]:
    """A `PromptClassifier` on the discriminator at `init`; `label_items` are WORD=LABEL."""
    parse_template(template, columns)  # before loading any weights: a bad template is one line
    words, labels = parse_label_words(label_items, labels)
    discriminator, tokenizer = load_discriminator_for_prompts(init)
    if seq_length > discriminator.backbone.max_position_embeddings:
        raise ElectraError(f"--seq-length {seq_length} exceeds the model's "
                           f"{discriminator.backbone.max_position_embeddings} positions")
    preprocessor = PromptPreprocessor(tokenizer, template, words, seq_length=seq_length, columns=columns)
    return PromptClassifier.from_discriminator(discriminator, preprocessor, labels), tokenizer


# -------------------------------------------------------------------- runner
def _prompt_dataset(model, examples: Sequence, batch_size: int) -> tf.data.Dataset:
    ds = tf.data.Dataset.from_tensor_slices((_inputs(examples),)).batch(batch_size)
    return ds.map(model.preprocessor, num_parallel_calls=tf.data.AUTOTUNE)


class PromptRunner(ClassificationRunner):
    """Classification through a prompt: labels as in `ClassificationRunner`, targets one-hot over the
    candidates (the correct word "original", the others "replaced"), binary cross-entropy."""

    kind = "prompt"

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        raise ElectraError("a prompt model is built from a discriminator with its RTD head: build_prompt_model")

    def compile_args(self, model, options):
        return {"loss": keras.losses.BinaryCrossentropy(), "metrics": [keras.metrics.CategoricalAccuracy(
            name="accuracy")]}

    def check(self, examples, model, where):
        super().check(examples, model, where)
        pair = any(e.text_b is not None for e in examples)
        if model.preprocessor.num_texts == 2 and examples and not pair:
            raise DataError(f"{where}: the template {model.preprocessor.template!r} uses {{text_b}}, but the "
                            "examples are single texts")

    def train_dataset(self, model, examples, batch_size, seed, shuffle=True):
        y = self.label_ids(examples, model, "training data")
        targets = np.eye(len(model.label_names), dtype=np.float32)[y]
        ds = tf.data.Dataset.from_tensor_slices((_inputs(examples), targets))
        ds = maybe_shuffle(ds, len(examples), seed, shuffle)
        return finish(ds, model.preprocessor, batch_size, drop_remainder=len(examples) >= batch_size)

    def predict(self, model, examples, batch_size):
        original = predict_in_batches(model, _prompt_dataset(model, examples, batch_size))
        return {"scores": normalise(original), "original": original}


def normalise(original: np.ndarray) -> np.ndarray:
    """Each candidate's share of the summed "original" probabilities: averageable over seeds, argmax unchanged."""
    original = np.asarray(original, np.float64)
    return (original / np.maximum(original.sum(-1, keepdims=True), 1e-12)).astype(np.float32)


def prompt_result(probs: np.ndarray, original: np.ndarray, model) -> dict:
    best = int(np.argmax(probs))
    words = model.preprocessor.label_words
    return {"label": model.label_names[best], "probability": float(probs[best]),
            "probabilities": {name: float(p) for name, p in zip(model.label_names, probs)},
            "label_word": words[best],
            "original_probability": {w: float(o) for w, o in zip(words, original)}}


def predict_prompt_texts(model: PromptClassifier, texts: Sequence[str], batch_size: int = 32) -> list[dict]:
    """`keras-electra predict` for a prompt model: one text, or a pair as "a ||| b" / "a<TAB>b"."""
    from keras_electra.tasks.predict import split_pair
    from keras_electra.tasks.registry import check_pair_inputs

    pairs = [split_pair(t) for t in texts]
    check_pair_inputs(pairs, model.preprocessor.num_texts == 2)
    if model.preprocessor.num_texts == 2:
        x = (tf.constant([a for a, _ in pairs]), tf.constant([b or "" for _, b in pairs]))
    else:
        x = tf.constant(list(texts))
    original = np.asarray(model.predict(x, batch_size=batch_size, verbose=0))
    probs = normalise(original)
    return [{"text": t, **prompt_result(p, o, model)} for t, p, o in zip(texts, probs, original)]


# ------------------------------------------------------------------ zero-shot
def infer_task(data: str | Path) -> str:
    """The GLUE task of a data directory named like one (SST-2, MRPC...); else the generic table task."""
    from keras_electra.tasks.registry import get_task

    path = Path(data)
    for name in (path.name, path.parent.name):
        try:
            spec = get_task(name)
        except DataError:
            continue
        return spec.name
    return "table"


def zero_shot(model: str | Path, template: str, label_items: Sequence[str], data: str | Path | None = None,
              task: str | None = None, split: str = "dev", max_examples: int | None = None, batch_size: int = 32,
              seq_length: int = 128, text_columns: Sequence[str] | None = None, label_column: str | None = None,
              output: str | Path | None = None, overwrite: bool = False, seed: int = 0) -> dict[str, Any]:
    """Score a discriminator, untrained, on one split of a classification task (and/or save the prompt model
    to `output`, for `keras-electra predict`). Returns the scores and the setup."""
    from keras_electra.tasks.outputs import check_output, save_task_model
    from keras_electra.tasks.registry import TableSource, get_task, read_split
    from keras_electra.tasks.task_data import subsample
    from keras_electra.utils.io import output_lock, write_json

    if data is None and output is None:
        raise ElectraError("give --data to score a dataset, --output to save the prompt model, or both")
    spec = get_task(task or (infer_task(data) if data is not None else "table"))
    if spec.kind != "classification":
        raise ElectraError(f"prompts classify; {spec.name} is a {spec.kind} task")
    columns = tuple(text_columns or ())
    parse_template(template, columns)  # fail before reading data or weights
    examples: list = []
    labels = spec.labels
    table = None
    if spec.dataset is None:
        table = TableSource(columns or ("text",), label_column or "label")
    if data is not None:
        examples, _ = read_split(spec, data, split, table)
        if not examples:
            raise DataError(f"{data}: the {split} split of {spec.name} has no examples")
        examples = subsample(examples, max_examples, seed)
        if labels is None:
            labels = sorted({str(e.label) for e in examples if e.label is not None}) or None
    if labels is None:  # saving without data: the labels as --labels gives them
        labels = parse_label_words(label_items)[1]
    prompt_model, tokenizer = build_prompt_model(model, template, label_items, labels, seq_length, columns)
    result: dict[str, Any] = {"task": spec.name, "model": str(model), "template": template,
                              "label_words": dict(zip(prompt_model.label_names, prompt_model.preprocessor.label_words)),
                              "seq_length": seq_length}
    if examples:
        runner = PromptRunner()
        runner.check(examples, prompt_model, f"{split} data")
        predictions = runner.predict(prompt_model, examples, batch_size)
        scores = runner.score(spec.name, examples, predictions, prompt_model)
        counts = np.bincount(predictions["scores"].argmax(-1), minlength=len(prompt_model.label_names))
        result.update(split=split, num_examples=len(examples), metric=spec.metric,
                      scores={k: float(v) for k, v in scores.items() if isinstance(v, int | float)},
                      predicted_label_counts=dict(zip(prompt_model.label_names, map(int, counts))),
                      data=str(data))
    if output is not None:
        out = Path(output)
        with output_lock(out):
            check_output(out, overwrite)
            extra = {"prompt": {"template": template, "label_words": result["label_words"]}, "init": str(model),
                     "zero_shot": True, **({"text_columns": list(columns), "label_column": label_column or "label"}
                                           if spec.dataset is None else {})}
            save_task_model(prompt_model, tokenizer, out, dataclasses.replace(spec, kind="prompt"), extra)
            write_json(out / "zero_shot.json", result)
        result["output"] = str(out)
    return result


def prompt_spec(spec, config):
    """The task's spec with the prompt runner, after checking that the options fit a prompt."""
    if spec.kind != "classification":
        raise ElectraError(f"--prompt classifies; {spec.name} is a {spec.kind} task")
    if config.peft != "none" or config.freeze_layers or config.fgm_epsilon:
        raise ElectraError("--prompt trains the whole encoder and the RTD head; --peft, --freeze-layers and "
                           "--fgm-epsilon are not supported with it")
    if config.head is not None or config.label_smoothing:
        raise ElectraError("--prompt has no classification head: --head and --label-smoothing do not apply")
    if config.init == "random":
        raise ElectraError("--prompt needs a pretrained discriminator with its RTD head, not --init random")
    parse_template(config.prompt, config.text_columns or ())
    parse_label_words(config.label_words or (), spec.labels)
    return dataclasses.replace(spec, kind="prompt")
