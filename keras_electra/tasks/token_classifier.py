"""`ElectraTokenClassifier`: one tag per word (NER), predicted on each word's first sub-word."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from keras_electra.errors import DataError
from keras_electra.layers.random import Dropout
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks import metrics as task_metrics
from keras_electra.tasks.base import (
    MODEL_KEYS,
    ElectraTask,
    MaskedAccuracy,
    MaskedSparseCrossentropy,
    add_dense,
    dense_head,
    float_logits,
)
from keras_electra.tasks.preprocessors import ElectraTokenClassifierPreprocessor
from keras_electra.tasks.runner import AUTOTUNE, LabelMap, TaskRunner, softmax

TAGGING_HEADS = ("huggingface", "official")


def tag_spans_to_tags(spans: Sequence[tuple[str, int, int]], length: int, scheme: str) -> list[str]:
    """Word tags of (type, first, last) spans in "IOB2" or "BIOES" (single-word entities S-, last words E-)."""
    tags = ["O"] * length
    for kind, first, last in spans:
        if scheme == "BIOES" and first == last:
            tags[first] = f"S-{kind}"
            continue
        tags[first] = f"B-{kind}"
        for i in range(first + 1, last + 1):
            tags[i] = f"I-{kind}"
        if scheme == "BIOES":
            tags[last] = f"E-{kind}"
    return tags


def convert_tags(tags: Sequence[str], scheme: str) -> list[str]:
    """The same entities written in `scheme` ("IOB2" or "BIOES"); reads IOB1/IOB2/BIOES."""
    return tag_spans_to_tags(task_metrics.get_entities(list(tags)), len(tags), scheme)


def bioes_labels(labels: Sequence[str]) -> list[str]:
    """An IOB2 tag set → the BIOES one: O first, then B-, I-, E-, S- of each type in order."""
    kinds = list(dict.fromkeys(t.split("-", 1)[1] for t in labels if t != "O"))
    return ["O"] + [f"{p}-{k}" for k in kinds for p in ("B", "I", "E", "S")]


def is_bioes(labels: Sequence[str] | None) -> bool:
    return bool(labels) and any(t.startswith(("E-", "S-")) for t in labels)


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTokenClassifier(ElectraTask):
    """Per-token logits [B, L, num_classes]: dropout → dense (`classifier/{kernel,bias}`).

    Training labels sit on each word's first sub-word; the other positions are ignored.
    `decode_words` / `decode_text` turn the logits back into word tags and entity spans.

    `tagging_head`:
        "huggingface" (default): dropout → dense, IOB2 tags, cross-entropy averaged over the
            labelled words of the batch (HF `ElectraForTokenClassification`).
        "official": the official ELECTRA tagger (`finetune/tagging/tagging_tasks.py`): no
            dropout, BIOES tags (`label_names` are BIOES; predictions are turned back into IOB2
            for scoring and output), cross-entropy summed over each sentence's words and
            averaged over sentences.
    """

    preprocessor_cls = ElectraTokenClassifierPreprocessor
    task_type = "token_classification"

    def __init__(
        self,
        backbone: ElectraBackbone,
        num_classes: int,
        dropout: float = 0.1,
        preprocessor: ElectraTokenClassifierPreprocessor | None = None,
        label_names: list[str] | None = None,
        adversarial_epsilon: float = 0.0,
        tagging_head: str = "huggingface",
        **kwargs,
    ) -> None:
        super().__init__(backbone, preprocessor, label_names, adversarial_epsilon, **kwargs)
        if tagging_head not in TAGGING_HEADS:
            raise ValueError(f"unknown tagging_head {tagging_head!r}; choose from {', '.join(TAGGING_HEADS)}")
        self.tagging_head = tagging_head
        self.num_classes = int(num_classes)
        self.dropout_rate = 0.0 if tagging_head == "official" else float(dropout)
        policy = backbone.dtype_policy
        self.dropout = Dropout(self.dropout_rate, name="classifier_dropout", dtype=policy)
        self.classifier = dense_head(self.num_classes, "classifier", backbone.initializer_range, policy,
                                     backbone.default_initializer)
        self.classifier.build((None, None, backbone.hidden_size))
        self.built = True  # every layer is built: `.keras` loading needs no sample call

    def call(self, inputs, training=None):
        hidden = self.backbone({k: inputs[k] for k in MODEL_KEYS}, training=training)
        return float_logits(self.classifier(self.dropout(hidden, training=training)))

    def head_weights(self) -> dict[str, keras.Variable]:
        names: dict[str, keras.Variable] = {}
        add_dense(names, "classifier", self.classifier)
        return names

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "dropout": self.dropout_rate,
                "tagging_head": self.tagging_head}


# ----------------------------------------------------------------------- decoding
def word_tags(scores: np.ndarray, word_ids: np.ndarray, num_words: int, label_names: Sequence[str],
              outside: str = "O") -> tuple[list[str], list[float]]:
    """Tags of `num_words` words from one row of per-position scores [L, C] and word ids [L].

    Each word takes the prediction at its first sub-word; words that were truncated away
    or produced no token get `outside`.
    """
    tags = [outside] * num_words
    probs = [1.0] * num_words
    previous = -1
    for position, word in enumerate(word_ids):
        if word < 0 or word == previous:
            previous = word if word >= 0 else previous
            continue
        previous = word
        if word < num_words:
            best = int(scores[position].argmax())
            tags[word] = label_names[best]
            probs[word] = float(scores[position][best])
    if is_bioes(label_names):  # the official tagger's BIOES, written back as IOB2
        tags = convert_tags(tags, "IOB2")
    return tags, probs


def entities_from_tags(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, first word, last word) chunks, conlleval-style (stray I- tags start a chunk)."""
    return task_metrics.get_entities(list(tags))


def decode_text(model: ElectraTokenClassifier, texts: Sequence[str]) -> list[dict]:
    """Entities in raw text: words are the tokenizer's basic tokens; spans are character offsets."""
    import tensorflow as tf

    packed = model.preprocessor.encode_text(tf.constant(list(texts), tf.string))
    scores = softmax(model.predict({k: packed[k].numpy() for k in MODEL_KEYS}, verbose=0))
    word_ids = packed["word_ids"].numpy()
    starts, ends = packed["char_start"].numpy(), packed["char_end"].numpy()
    results = []
    for row, text in enumerate(texts):
        ids = word_ids[row]
        num_words = int(ids.max()) + 1 if (ids >= 0).any() else 0
        span_start = {}
        span_end = {}
        for pos, w in enumerate(ids):
            if w < 0:
                continue
            span_start.setdefault(int(w), int(starts[row, pos]))
            span_end[int(w)] = int(ends[row, pos])
        tags, probs = word_tags(scores[row], ids, num_words, model.label_names)
        entities = []
        for kind, first, last in entities_from_tags(tags):
            start, end = span_start[first], span_end[last]
            entities.append({"type": kind, "text": text[start:end], "start": start, "end": end,
                             "probability": float(np.mean(probs[first:last + 1]))})
        words = [text[span_start[w]:span_end[w]] for w in range(num_words)]
        results.append({"tokens": words, "tags": tags, "entities": entities})
    return results


# ------------------------------------------------------------------------ runner
def _ragged_words(examples: Sequence):  # -> tf.RaggedTensor
    import tensorflow as tf

    return tf.ragged.constant([list(e.words) for e in examples], dtype=tf.string, ragged_rank=1)


class TokenClassificationRunner(TaskRunner):
    """Word-level IOB2 tagging (CoNLL-2003, CLUENER)."""

    kind = "token"
    label_smoothing = True  # its head is chosen with the `tagging_head` option (--tagging-head)

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        if not labels:
            raise DataError("a token classification task needs its tag set")
        head = options.get("tagging_head", "huggingface")
        labels = bioes_labels(labels) if head == "official" else list(labels)
        return ElectraTokenClassifier.from_backbone(
            backbone, tokenizer, seq_length, num_classes=len(labels), dropout=options.get("dropout", 0.1),
            label_names=labels, tagging_head=head,
        )

    def compile_args(self, model, options):
        normalize = "rows" if getattr(model, "tagging_head", "huggingface") == "official" else "labels"
        return {"loss": MaskedSparseCrossentropy(label_smoothing=options.get("label_smoothing", 0.0),
                                                 normalize=normalize),
                "metrics": [MaskedAccuracy(name="token_accuracy")]}

    @staticmethod
    def model_tags(tags: Sequence[str], model) -> list[str]:
        """Gold IOB2 tags in the model's own scheme (BIOES for the official tagger)."""
        return convert_tags(tags, "BIOES") if is_bioes(model.label_names) else list(tags)

    def check(self, examples, model, where):
        tags = LabelMap(model.label_names, "tags")
        for e in examples:
            if not e.words:
                raise DataError(f"{where}: example {e.guid} has no words")
            for word in e.words:
                if not str(word).strip():
                    raise DataError(f"{where}: example {e.guid} has an empty word")
            for tag in e.tags or ():  # IOB2 tags are also in a BIOES tag set
                tags.encode(tag, f"{where}: example {e.guid}")

    def tag_ids(self, examples, model, where):
        import tensorflow as tf

        tags = LabelMap(model.label_names, "tags")
        rows = []
        for e in examples:
            if e.tags is None:
                raise DataError(f"{where}: example {e.guid} has no tags")
            rows.append([tags.encode(t, f"{where}: example {e.guid}") for t in self.model_tags(e.tags, model)])
        return tf.ragged.constant(rows, dtype=tf.int32, ragged_rank=1)

    def train_dataset(self, model, examples, batch_size, seed, shuffle=True):
        import tensorflow as tf

        words, tags = _ragged_words(examples), self.tag_ids(examples, model, "training data")
        ds = tf.data.Dataset.from_tensor_slices((words, tags))
        if shuffle:
            ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        ds = ds.ragged_batch(batch_size, drop_remainder=len(examples) >= batch_size)
        return ds.map(model.preprocessor, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    def encode(self, model, examples, batch_size):
        """Model inputs and word ids of every example, as numpy (the alignment used to decode)."""
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices(_ragged_words(examples)).ragged_batch(batch_size)
        ds = ds.map(model.preprocessor.encode_words, num_parallel_calls=AUTOTUNE)
        parts = list(ds.as_numpy_iterator())
        return {k: np.concatenate([p[k] for p in parts]) for k in (*MODEL_KEYS, "word_ids")}

    def predict(self, model, examples, batch_size):
        encoded = self.encode(model, examples, batch_size)
        logits = model.predict({k: encoded[k] for k in MODEL_KEYS}, batch_size=batch_size, verbose=0)
        return {"scores": softmax(logits), "word_ids": encoded["word_ids"]}

    def predicted_tags(self, examples, predictions, model) -> list[list[str]]:
        return [
            word_tags(predictions["scores"][i], predictions["word_ids"][i], len(e.words), model.label_names)[0]
            for i, e in enumerate(examples)
        ]

    def score(self, task, examples, predictions, model):
        pred = self.predicted_tags(examples, predictions, model)
        gold = [list(e.tags) for e in examples]
        result = task_metrics.entity_prf(gold, pred)
        token_total = sum(len(g) for g in gold)
        result["token_accuracy"] = sum(p == t for g, q in zip(gold, pred) for p, t in zip(q, g)) / max(token_total, 1)
        return result
