"""`ElectraRelationClassifier`: entity markers in the text, then classification."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_electra.data.readers.examples import mark_entities
from keras_electra.errors import DataError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks import metrics as task_metrics
from keras_electra.tasks.base import (
    MODEL_KEYS,
    ClassificationHeadMixin,
    ElectraTask,
)
from keras_electra.tasks.classifier import ClassificationRunner
from keras_electra.tasks.preprocessors import DEFAULT_ENTITY_MARKERS, ElectraRelationClassifierPreprocessor
from keras_electra.tasks.runner import AUTOTUNE, LabelMap, TaskRunner, check_nonempty, softmax

POOLINGS = ("cls", "entity_start")


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraRelationClassifier(ClassificationHeadMixin, ElectraTask):
    """Relation logits [B, num_classes] from text with entity markers.

    pooling "cls": the [CLS] state (head "electra" or "huggingface", as `ElectraClassifier`);
    pooling "entity_start": the concatenated states of the E1 and E2 start markers
    (Baldini Soares et al. 2019, the stronger variant) → dropout → dense.
    `entity_marker_ids` are the ids of the E1 and E2 start markers in `token_ids`.
    """

    preprocessor_cls = ElectraRelationClassifierPreprocessor
    task_type = "relation_classification"

    def __init__(
        self,
        backbone: ElectraBackbone,
        num_classes: int,
        entity_marker_ids: tuple[int, int] | list[int] = (1, 3),
        pooling: str = "entity_start",
        head: str = "electra",
        dropout: float = 0.1,
        preprocessor: ElectraRelationClassifierPreprocessor | None = None,
        label_names: list[str] | None = None,
        adversarial_epsilon: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(backbone, preprocessor, label_names, adversarial_epsilon, **kwargs)
        if pooling not in POOLINGS:
            raise ValueError(f"unknown pooling {pooling!r}; choose from {', '.join(POOLINGS)}")
        self.num_classes = int(num_classes)
        self.entity_marker_ids = [int(i) for i in entity_marker_ids]
        self.pooling = pooling
        if pooling == "entity_start" and head != "electra":
            raise ValueError("entity_start pooling uses the electra head (dropout → dense)")
        hidden = backbone.hidden_size
        self.build_classification_head(backbone, self.num_classes, head, dropout,
                                       2 * hidden if pooling == "entity_start" else hidden)
        self.built = True  # every layer is built: `.keras` loading needs no sample call

    @classmethod
    def from_backbone(cls, backbone, tokenizer, seq_length=128, preprocessor_kwargs=None, **kwargs):
        preprocessor = ElectraRelationClassifierPreprocessor(tokenizer, seq_length, **(preprocessor_kwargs or {}))
        kwargs.setdefault("entity_marker_ids", [preprocessor.marker_ids[0], preprocessor.marker_ids[2]])
        return cls(backbone, preprocessor=preprocessor, **kwargs)

    def call(self, inputs, training=None):
        hidden = self.backbone({k: inputs[k] for k in MODEL_KEYS}, training=training)
        if self.pooling == "cls":
            pooled = hidden[:, 0, :]
        else:
            ids = inputs["token_ids"]
            length = ops.shape(ids)[1]
            states = []
            for marker in self.entity_marker_ids:
                # First occurrence of the marker; [CLS] (position 0) if truncation removed it.
                position = ops.argmax(ops.cast(ops.equal(ids, marker), "int32"), axis=1)
                pick = ops.one_hot(position, length, dtype=hidden.dtype)
                states.append(ops.einsum("bl,blh->bh", pick, hidden))
            pooled = ops.concatenate(states, axis=-1)
        return self.classify(pooled, training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "entity_marker_ids": self.entity_marker_ids,
                "pooling": self.pooling, "head": self.head, "dropout": self.dropout_rate}


# ------------------------------------------------------------------------ runner
def marked_texts(examples, markers=DEFAULT_ENTITY_MARKERS) -> list[str]:
    return [mark_entities(e.text, e.e1, e.e2, tuple(markers), space=True) for e in examples]


class RelationRunner(TaskRunner):
    """SemEval-2010 Task 8 style: a directional relation between two marked nominals."""

    kind = "relation"
    label_smoothing = True

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        if not labels:
            raise DataError("a relation task needs its label set")
        return ElectraRelationClassifier.from_backbone(
            backbone, tokenizer, seq_length, num_classes=len(labels), pooling=options.get("pooling", "entity_start"),
            dropout=options.get("dropout", 0.1), label_names=list(labels),
        )

    # Same loss and metric as sentence classification (label smoothing included).
    compile_args = ClassificationRunner.compile_args

    def check(self, examples, model, where):
        labels = LabelMap(model.label_names, "relations")
        for e in examples:
            check_nonempty(e.text, f"{where}: example {e.guid}")
            if e.label is not None:
                labels.encode(e.label, f"{where}: example {e.guid}")

    def label_ids(self, examples, model, where):
        labels = LabelMap(model.label_names, "relations")
        missing = [e.guid for e in examples if e.label is None]
        if missing:
            raise DataError(f"{where}: example {missing[0]} has no label")
        return np.array([labels.encode(e.label, f"{where}: example {e.guid}") for e in examples], np.int32)

    def _texts(self, model, examples):
        import tensorflow as tf

        return tf.constant(marked_texts(examples, model.preprocessor.markers), tf.string, shape=[len(examples)])

    def train_dataset(self, model, examples, batch_size, seed, shuffle=True):
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self._texts(model, examples),
                                                 self.label_ids(examples, model, "training data")))
        if shuffle:
            ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=len(examples) >= batch_size)
        return ds.map(model.preprocessor, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    def predict(self, model, examples, batch_size):
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((self._texts(model, examples),)).batch(batch_size)
        return {"scores": softmax(model.predict(ds.map(model.preprocessor, num_parallel_calls=AUTOTUNE), verbose=0))}

    def score(self, task, examples, predictions, model):
        preds = [model.label_names[i] for i in predictions["scores"].argmax(-1)]
        gold = [str(e.label) for e in examples]
        scores = task_metrics.semeval_scores(preds, gold)
        return {k: v for k, v in scores.items() if not isinstance(v, dict)}
