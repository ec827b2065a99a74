"""`ElectraMultipleChoice`: score each `[CLS] context [SEP] question choice [SEP]`, softmax over choices."""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from keras_electra.errors import DataError
from keras_electra.layers.random import Dropout
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks import metrics as task_metrics
from keras_electra.tasks.base import (
    HEADS,
    MODEL_KEYS,
    ElectraTask,
    MaskedSparseCrossentropy,
    SequenceSummary,
    add_dense,
    check_head,
    dense_head,
)
from keras_electra.tasks.preprocessors import ElectraMultipleChoicePreprocessor
from keras_electra.tasks.runner import AUTOTUNE, TaskRunner, check_nonempty, softmax

# Logit of a missing choice (an all-padding row): never chosen, no NaN in the softmax.
MISSING_CHOICE_LOGIT = -1e9


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraMultipleChoice(ElectraTask):
    """Inputs [B, C, L], logits [B, C] float32.

    head "electra": dropout → dense(1) on [CLS] (`classifier/{kernel,bias}`);
    head "huggingface": HF `ElectraForMultipleChoice` — `sequence_summary` (dense(H) → GELU
    → dropout on the first token) then `classifier` dense(1).
    """

    preprocessor_cls = ElectraMultipleChoicePreprocessor
    task_type = "multiple_choice"

    def __init__(
        self,
        backbone: ElectraBackbone,
        num_choices: int = 4,
        head: str = "electra",
        dropout: float = 0.1,
        preprocessor: ElectraMultipleChoicePreprocessor | None = None,
        label_names: list[str] | None = None,
        adversarial_epsilon: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(backbone, preprocessor, label_names, adversarial_epsilon, **kwargs)
        self.num_choices = int(num_choices)
        self.head = check_head(head)
        self.dropout_rate = float(dropout)
        hidden, init, policy = backbone.hidden_size, backbone.initializer_range, backbone.dtype_policy
        self.sequence_summary = None
        if self.head == "huggingface":
            self.sequence_summary = SequenceSummary(hidden, dropout, init, name="sequence_summary", dtype=policy)
            self.sequence_summary.build((None, hidden))
            self.dropout = None
        else:
            self.dropout = Dropout(dropout, name="classifier_dropout", dtype=policy)
        self.classifier = dense_head(1, "classifier", init, policy, backbone.default_initializer)
        self.classifier.build((None, hidden))
        self.built = True  # every layer is built: `.keras` loading needs no sample call

    @classmethod
    def from_backbone(cls, backbone, tokenizer, seq_length=128, preprocessor_kwargs=None, **kwargs):
        preprocessor_kwargs = {"num_choices": kwargs.get("num_choices", 4), **(preprocessor_kwargs or {})}
        return super().from_backbone(backbone, tokenizer, seq_length, preprocessor_kwargs, **kwargs)

    def call(self, inputs, training=None):
        shape = ops.shape(inputs["token_ids"])
        flat = {k: ops.reshape(inputs[k], (-1, shape[-1])) for k in MODEL_KEYS}
        first = self.backbone(flat, training=training)[:, 0, :]
        if self.sequence_summary is not None:
            first = self.sequence_summary(first, training=training)
        else:
            first = self.dropout(first, training=training)
        logits = ops.cast(ops.reshape(self.classifier(first), (-1, shape[1])), "float32")
        present = ops.greater(inputs["padding_mask"][:, :, 0], 0)
        return ops.where(present, logits, MISSING_CHOICE_LOGIT)

    def head_weights(self) -> dict[str, keras.Variable]:
        names: dict[str, keras.Variable] = {}
        if self.sequence_summary is not None:
            add_dense(names, "sequence_summary/summary", self.sequence_summary.summary)
        add_dense(names, "classifier", self.classifier)
        return names

    def get_config(self) -> dict:
        return {**super().get_config(), "num_choices": self.num_choices, "head": self.head,
                "dropout": self.dropout_rate}


# ------------------------------------------------------------------------ runner
def _inputs(examples, num_choices: int):
    import tensorflow as tf

    choices = []
    for e in examples:
        if len(e.choices) > num_choices:
            raise DataError(f"example {e.guid} has {len(e.choices)} choices, more than the model's {num_choices}")
        choices.append(list(e.choices) + [""] * (num_choices - len(e.choices)))
    return (tf.constant([e.context for e in examples], tf.string, shape=[len(examples)]),
            tf.constant([e.question for e in examples], tf.string, shape=[len(examples)]),
            tf.constant(choices, tf.string, shape=[len(examples), num_choices]))


class MultipleChoiceRunner(TaskRunner):
    """C3-style multiple choice: pick one of up to `num_choices` answers."""

    kind = "choice"
    heads = HEADS
    label_smoothing = True

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        return ElectraMultipleChoice.from_backbone(
            backbone, tokenizer, seq_length, num_choices=options.get("num_choices", 4),
            head=options.get("head", "electra"), dropout=options.get("dropout", 0.1),
        )

    def compile_args(self, model, options):
        return {"loss": MaskedSparseCrossentropy(label_smoothing=options.get("label_smoothing", 0.0)),
                "metrics": [keras.metrics.SparseCategoricalAccuracy(name="accuracy")]}

    def check(self, examples, model, where):
        for e in examples:
            check_nonempty(e.context, f"{where}: example {e.guid}", "context")
            if len(e.choices) > model.num_choices:
                raise DataError(
                    f"{where}: example {e.guid} has {len(e.choices)} choices, more than {model.num_choices}"
                )
            for c in e.choices:
                check_nonempty(c, f"{where}: example {e.guid}", "choice")
            if e.label is not None and not 0 <= int(e.label) < len(e.choices):
                raise DataError(f"{where}: example {e.guid}: answer index {e.label} is outside its "
                                f"{len(e.choices)} choices")

    def labels(self, examples, where):
        missing = [e.guid for e in examples if e.label is None]
        if missing:
            raise DataError(f"{where}: example {missing[0]} has no answer")
        return np.array([int(e.label) for e in examples], np.int32)

    def train_dataset(self, model, examples, batch_size, seed, shuffle=True):
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((_inputs(examples, model.num_choices),
                                                 self.labels(examples, "training data")))
        if shuffle:
            ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        ds = ds.batch(batch_size, drop_remainder=len(examples) >= batch_size)
        return ds.map(model.preprocessor, num_parallel_calls=AUTOTUNE).prefetch(AUTOTUNE)

    def predict(self, model, examples, batch_size):
        import tensorflow as tf

        ds = tf.data.Dataset.from_tensor_slices((_inputs(examples, model.num_choices),)).batch(batch_size)
        logits = model.predict(ds.map(model.preprocessor, num_parallel_calls=AUTOTUNE), verbose=0)
        return {"scores": softmax(logits)}

    def score(self, task, examples, predictions, model):
        gold = self.labels(examples, "evaluation data")
        return {"accuracy": task_metrics.accuracy(predictions["scores"].argmax(-1), gold)}
