"""`ElectraClassifier`: single sentences, sentence pairs and regression on [CLS]."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np

from keras_electra.errors import DataError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks import metrics as task_metrics
from keras_electra.tasks.base import (
    HEADS,
    MODEL_KEYS,
    ClassificationHeadMixin,
    ElectraTask,
    MaskedSparseCrossentropy,
)
from keras_electra.tasks.preprocessors import ElectraTextClassifierPreprocessor
from keras_electra.tasks.runner import (
    LabelMap,
    TaskRunner,
    check_nonempty,
    finish,
    maybe_shuffle,
    predict_in_batches,
    softmax,
)


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraClassifier(ClassificationHeadMixin, ElectraTask):
    """Sequence classification (`num_classes` ≥ 2) or regression (`num_classes=1`, MSE).

    Args:
        backbone: the discriminator's `ElectraBackbone`.
        num_classes: number of classes; 1 makes it a regressor (STS-B).
        head: "electra" — the paper's dropout → dense on [CLS] (`classifier/{kernel,bias}`);
            "huggingface" — HF's dropout → dense(H) → GELU → dropout → out_proj
            (`classifier/dense/*`, `classifier/out_proj/*`), for converted models.
        dropout: dropout rate of the head.
        preprocessor: an `ElectraTextClassifierPreprocessor` (kept with the model).
        label_names: class names, index = class id.
    """

    preprocessor_cls = ElectraTextClassifierPreprocessor
    task_type = "classification"

    def __init__(
        self,
        backbone: ElectraBackbone,
        num_classes: int,
        head: str = "electra",
        dropout: float = 0.1,
        preprocessor: ElectraTextClassifierPreprocessor | None = None,
        label_names: list[str] | None = None,
        adversarial_epsilon: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(backbone, preprocessor, label_names, adversarial_epsilon, **kwargs)
        if num_classes < 1:
            raise ValueError(f"num_classes must be >= 1, got {num_classes}")
        self.num_classes = int(num_classes)
        self.build_classification_head(backbone, self.num_classes, head, dropout, backbone.hidden_size)
        self.built = True  # every layer is built: `.keras` loading needs no sample call

    @property
    def is_regression(self) -> bool:
        return self.num_classes == 1

    def call(self, inputs, training=None):
        hidden = self.backbone({k: inputs[k] for k in MODEL_KEYS}, training=training)
        return self.classify(hidden[:, 0, :], training=training)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_classes": self.num_classes, "head": self.head,
                "dropout": self.dropout_rate}


# ------------------------------------------------------------------------ runners
def _inputs(examples: Sequence):
    """The preprocessor's `x`: texts [N], or a pair of them."""
    import tensorflow as tf

    a = tf.constant([e.text_a for e in examples], tf.string, shape=[len(examples)])
    if any(e.text_b is not None for e in examples):
        return a, tf.constant([e.text_b or "" for e in examples], tf.string, shape=[len(examples)])
    return a


def _predict_dataset(model, examples: Sequence, batch_size: int):
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((_inputs(examples),)).batch(batch_size)
    return ds.map(model.preprocessor, num_parallel_calls=tf.data.AUTOTUNE)


class ClassificationRunner(TaskRunner):
    """Single-label classification of one text or a pair (GLUE, ChnSentiCorp, CSV tables)."""

    kind = "classification"
    heads = HEADS
    label_smoothing = True

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        if not labels:
            raise DataError("a classification task needs its label set")
        return ElectraClassifier.from_backbone(
            backbone, tokenizer, seq_length, num_classes=len(labels), head=options.get("head", "electra"),
            dropout=options.get("dropout", 0.1), label_names=list(labels),
        )

    def compile_args(self, model, options):
        return {"loss": MaskedSparseCrossentropy(label_smoothing=options.get("label_smoothing", 0.0)),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def check(self, examples, model, where):
        labels = LabelMap(model.label_names, "labels")
        for e in examples:
            check_nonempty(e.text_a, f"{where}: example {e.guid}")
            if e.text_b is not None:
                check_nonempty(e.text_b, f"{where}: example {e.guid}", "second text")
            if e.label is not None:
                labels.encode(e.label, f"{where}: example {e.guid}")

    def label_ids(self, examples, model, where: str) -> np.ndarray:
        labels = LabelMap(model.label_names, "labels")
        missing = [e.guid for e in examples if e.label is None]
        if missing:
            raise DataError(f"{where}: example {missing[0]} has no label")
        return np.array([labels.encode(e.label, f"{where}: example {e.guid}") for e in examples], np.int32)

    def train_dataset(self, model, examples, batch_size, seed, shuffle=True):
        import tensorflow as tf

        y = self.label_ids(examples, model, "training data")
        ds = tf.data.Dataset.from_tensor_slices((_inputs(examples), y))
        ds = maybe_shuffle(ds, len(examples), seed, shuffle)
        return finish(ds, model.preprocessor, batch_size, drop_remainder=len(examples) >= batch_size)

    def predict(self, model, examples, batch_size):
        logits = predict_in_batches(model, _predict_dataset(model, examples, batch_size))
        return {"scores": softmax(logits)}

    def score(self, task, examples, predictions, model):
        y = self.label_ids(examples, model, "evaluation data")
        preds = predictions["scores"].argmax(-1)
        if task_metrics._GLUE_ALIASES.get(task, task) in task_metrics._GLUE_LABELS:  # mnli-mm too
            return task_metrics.glue_metrics(task, [model.label_names[i] for i in preds],
                                             [model.label_names[i] for i in y])
        out = {"accuracy": task_metrics.accuracy(preds, y)}
        if len(model.label_names) == 2:
            out["f1"] = task_metrics.f1_binary(preds, y, positive=1)
        return out


class RegressionRunner(ClassificationRunner):
    """One real-valued score per text pair (STS-B), MSE loss."""

    kind = "regression"
    label_smoothing = False  # MSE: there are no classes to smooth

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        return ElectraClassifier.from_backbone(
            backbone, tokenizer, seq_length, num_classes=1, head=options.get("head", "electra"),
            dropout=options.get("dropout", 0.1), label_names=["score"],
        )

    def compile_args(self, model, options):
        return {"loss": keras.losses.MeanSquaredError(), "metrics": [keras.metrics.MeanAbsoluteError(name="mae")]}

    def check(self, examples, model, where):
        for e in examples:
            check_nonempty(e.text_a, f"{where}: example {e.guid}")
            if e.label is not None and not isinstance(e.label, int | float):
                raise DataError(f"{where}: example {e.guid}: label {e.label!r} is not a number")

    def label_ids(self, examples, model, where):
        missing = [e.guid for e in examples if e.label is None]
        if missing:
            raise DataError(f"{where}: example {missing[0]} has no label")
        return np.array([[float(e.label)] for e in examples], np.float32)

    def predict(self, model, examples, batch_size):
        return {"scores": predict_in_batches(model, _predict_dataset(model, examples, batch_size)).reshape(-1, 1)}

    def score(self, task, examples, predictions, model):
        y = self.label_ids(examples, model, "evaluation data")[:, 0]
        preds = predictions["scores"][:, 0]
        if task == "stsb":
            return task_metrics.glue_metrics("stsb", preds, y)
        return {"pearson": task_metrics.pearson(preds, y), "spearman": task_metrics.spearman(preds, y),
                "mse": float(np.mean((preds - y) ** 2))}
