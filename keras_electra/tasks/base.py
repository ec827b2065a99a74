"""What every fine-tuning task shares: the backbone, a preprocessor, label names, heads,
losses, the FGM adversarial train step, and loading a pretrained discriminator.

A task model is a `keras.Model` on `ElectraBackbone`. It takes the preprocessed dict
(`token_ids`, `segment_ids`, `padding_mask`, int32 [B, L]) and returns float32 logits.
Its preprocessor (tokenizer + packing, TF graph ops only) travels with it in `.keras`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import keras
import numpy as np
from keras import ops

from keras_electra.config import ElectraConfig
from keras_electra.data.tokenizer import VOCAB_FILE, ElectraTokenizer, build_tokenizer
from keras_electra.errors import CheckpointError, ElectraError
from keras_electra.layers.initializers import activation, default_initializer, truncated_normal
from keras_electra.layers.random import Dropout
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.serialization import deserialize_backbone, serialize_backbone

# Label id of positions that carry no label (sub-words after the first, specials, padding).
IGNORE_INDEX = -100
MODEL_KEYS = ("token_ids", "segment_ids", "padding_mask")
MODEL_FILE = "model.keras"
HEADS = ("electra", "huggingface")


# --------------------------------------------------------------------------- heads
@keras.saving.register_keras_serializable(package="keras_electra")
class HuggingFaceClassificationHead(keras.layers.Layer):
    """HF `ElectraClassificationHead` on a pooled vector: dropout → dense(H) → GELU → dropout → out_proj."""

    def __init__(self, hidden_size: int, num_classes: int, dropout: float = 0.1,
                 initializer_range: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_classes = num_classes
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        init = truncated_normal(initializer_range)
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.dense = keras.layers.Dense(hidden_size, kernel_initializer=init, name="dense", dtype=self.dtype_policy)
        self.out_proj = keras.layers.Dense(num_classes, kernel_initializer=init, name="out_proj",
                                           dtype=self.dtype_policy)
        self._gelu = activation("gelu")

    def build(self, input_shape) -> None:
        self.dense.build(input_shape)
        self.out_proj.build((*input_shape[:-1], self.hidden_size))
        self.built = True

    def call(self, pooled, training=None):
        x = self.dense(self.dropout(pooled, training=training))
        return self.out_proj(self.dropout(self._gelu(x), training=training))

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.num_classes)

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size, "num_classes": self.num_classes,
                "dropout": self.dropout_rate, "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="keras_electra")
class SequenceSummary(keras.layers.Layer):
    """HF `ElectraSequenceSummary` on the first token: dense(H) → GELU → dropout."""

    def __init__(self, hidden_size: int, dropout: float = 0.1, initializer_range: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.dropout_rate = dropout
        self.initializer_range = initializer_range
        self.summary = keras.layers.Dense(hidden_size, kernel_initializer=truncated_normal(initializer_range),
                                          name="summary", dtype=self.dtype_policy)
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self._gelu = activation("gelu")

    def build(self, input_shape) -> None:
        self.summary.build(input_shape)
        self.built = True

    def call(self, first_token, training=None):
        return self.dropout(self._gelu(self.summary(first_token)), training=training)

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], self.hidden_size)

    def get_config(self) -> dict:
        return {**super().get_config(), "hidden_size": self.hidden_size, "dropout": self.dropout_rate,
                "initializer_range": self.initializer_range}


def dense_head(units: int, name: str, initializer_range: float, dtype,
               initializer: str = "truncated_normal") -> keras.layers.Dense:
    """A task head's output dense. The official heads are `tf.layers.dense` without an initialiser
    (glorot_uniform): pass `initializer=backbone.default_initializer` to follow the model's choice."""
    return keras.layers.Dense(units, kernel_initializer=default_initializer(initializer, initializer_range),
                              name=name, dtype=dtype)


def add_dense(names: dict, prefix: str, layer: keras.layers.Dense) -> None:
    # `kernel` (not `_kernel`): with LoRA enabled it is the merged [in, out] kernel.
    names[f"{prefix}/kernel"] = layer.kernel
    names[f"{prefix}/bias"] = layer.bias


def check_head(head: str) -> str:
    if head not in HEADS:
        raise ValueError(f"unknown head {head!r}; choose from {', '.join(HEADS)}")
    return head


class ClassificationHeadMixin:
    """The classification head shared by sentence and relation classifiers.

    "electra": the paper's dropout → dense (`classifier/{kernel,bias}`); "huggingface": HF's
    dropout → dense(H) → GELU → dropout → out_proj, for converted models.
    """

    def build_classification_head(self, backbone: ElectraBackbone, num_classes: int, head: str, dropout: float,
                                  input_size: int) -> None:
        self.head = check_head(head)
        self.dropout_rate = float(dropout)
        hidden, init, policy = backbone.hidden_size, backbone.initializer_range, backbone.dtype_policy
        if self.head == "electra":
            self.dropout = Dropout(dropout, name="classifier_dropout", dtype=policy)
            self.classifier = dense_head(num_classes, "classifier", init, policy, backbone.default_initializer)
        else:
            self.dropout = None
            self.classifier = HuggingFaceClassificationHead(hidden, num_classes, dropout, init,
                                                            name="classifier", dtype=policy)
        self.classifier.build((None, input_size))

    def classify(self, pooled, training=None):
        if self.dropout is not None:
            return float_logits(self.classifier(self.dropout(pooled, training=training)))
        return float_logits(self.classifier(pooled, training=training))

    def head_weights(self) -> dict[str, keras.Variable]:
        names: dict[str, keras.Variable] = {}
        if self.head == "electra":
            add_dense(names, "classifier", self.classifier)
        else:
            add_dense(names, "classifier/dense", self.classifier.dense)
            add_dense(names, "classifier/out_proj", self.classifier.out_proj)
        return names


# -------------------------------------------------------------------------- losses
@keras.saving.register_keras_serializable(package="keras_electra")
class MaskedSparseCrossentropy(keras.losses.Loss):
    """Softmax cross-entropy from logits over labels != `ignore_index`.

    `normalize="labels"` (default): the mean over labelled positions only, so the loss does
    not shrink with padding. `normalize="rows"`: summed within each row (sentence), then
    averaged over the rows, as the official tagging loss. `label_smoothing` mixes in the
    uniform distribution.
    """

    def __init__(self, ignore_index: int = IGNORE_INDEX, label_smoothing: float = 0.0,
                 name: str = "masked_sparse_crossentropy", normalize: str = "labels", **kwargs) -> None:
        super().__init__(name=name, reduction="sum", **kwargs)
        if normalize not in ("labels", "rows"):
            raise ValueError(f"normalize must be 'labels' or 'rows', got {normalize!r}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.normalize = normalize

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        valid = ops.cast(ops.not_equal(y_true, self.ignore_index), "float32")
        safe = ops.where(ops.equal(y_true, self.ignore_index), 0, y_true)
        log_probs = ops.log_softmax(logits, axis=-1)
        num_classes = ops.shape(logits)[-1]
        target = ops.one_hot(safe, num_classes, dtype="float32")
        if self.label_smoothing:
            target = target * (1.0 - self.label_smoothing) + self.label_smoothing / ops.cast(num_classes, "float32")
        per_item = -ops.sum(target * log_probs, axis=-1) * valid
        if self.normalize == "rows":
            return ops.sum(per_item) / ops.cast(ops.shape(per_item)[0], "float32")
        return ops.sum(per_item) / ops.maximum(ops.sum(valid), 1.0)

    def get_config(self) -> dict:
        return {"name": self.name, "ignore_index": self.ignore_index, "label_smoothing": self.label_smoothing,
                "normalize": self.normalize}


@keras.saving.register_keras_serializable(package="keras_electra")
class SpanLoss(keras.losses.Loss):
    """QA loss: mean of the start and end cross-entropies over the sequence.

    y_true [B, 2] (start, end token positions), y_pred [B, L, 2] logits.
    """

    def __init__(self, name: str = "span_loss", **kwargs) -> None:
        super().__init__(name=name, reduction="sum", **kwargs)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        log_probs = ops.log_softmax(logits, axis=1)  # over positions
        length = ops.shape(logits)[1]
        start = ops.one_hot(y_true[:, 0], length, dtype="float32")
        end = ops.one_hot(y_true[:, 1], length, dtype="float32")
        nll = -(ops.sum(start * log_probs[:, :, 0], axis=1) + ops.sum(end * log_probs[:, :, 1], axis=1)) / 2.0
        return ops.mean(nll)

    def get_config(self) -> dict:
        return {"name": self.name}


@keras.saving.register_keras_serializable(package="keras_electra")
class MaskedAccuracy(keras.metrics.Metric):
    """Accuracy of argmax(logits) over labels != `ignore_index` (token-level for NER)."""

    def __init__(self, ignore_index: int = IGNORE_INDEX, name: str = "accuracy", **kwargs) -> None:
        super().__init__(name=name, **kwargs)
        self.ignore_index = int(ignore_index)
        self.correct = self.add_variable(shape=(), initializer="zeros", name="correct")
        self.total = self.add_variable(shape=(), initializer="zeros", name="total")

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_true = ops.cast(y_true, "int32")
        valid = ops.cast(ops.not_equal(y_true, self.ignore_index), "float32")
        hit = ops.cast(ops.equal(ops.cast(ops.argmax(y_pred, axis=-1), "int32"), y_true), "float32") * valid
        self.correct.assign_add(ops.sum(hit))
        self.total.assign_add(ops.sum(valid))

    def result(self):
        return self.correct / ops.maximum(self.total, 1.0)

    def reset_state(self) -> None:
        self.correct.assign(0.0)
        self.total.assign(0.0)

    def get_config(self) -> dict:
        return {**super().get_config(), "ignore_index": self.ignore_index}


# ---------------------------------------------------------------------- base class
class ElectraTask(keras.Model):
    """Base of the task models: a backbone, its heads, an optional preprocessor and label names.

    Subclasses build their heads (built eagerly, so `.keras` loading needs no sample call),
    implement `call`, `head_weights` and `get_config`, and set `preprocessor_cls`.
    `adversarial_epsilon > 0` turns on FGM adversarial training on the word embeddings.
    """

    preprocessor_cls: ClassVar[type | None] = None
    task_type: ClassVar[str] = "task"

    def __init__(
        self,
        backbone: ElectraBackbone,
        preprocessor: keras.layers.Layer | None = None,
        label_names: list[str] | None = None,
        adversarial_epsilon: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.preprocessor = preprocessor
        self.label_names = [str(x) for x in label_names] if label_names is not None else None
        self.adversarial_epsilon = float(adversarial_epsilon)

    # ------------------------------------------------------------ names and config
    def head_weights(self) -> dict[str, keras.Variable]:
        raise NotImplementedError

    def canonical_weights(self) -> dict[str, keras.Variable]:
        """Every variable under its checkpoint name: backbone under `electra/`, heads as HF/TF1 name them."""
        names = {f"electra/{k}": v for k, v in self.backbone.canonical_weights().items()}
        names.update(self.head_weights())
        return names

    def get_config(self) -> dict:
        config = {**super().get_config(), "backbone": serialize_backbone(self.backbone)}
        config["preprocessor"] = (
            keras.saving.serialize_keras_object(self.preprocessor) if self.preprocessor is not None else None
        )
        config["label_names"] = self.label_names
        config["adversarial_epsilon"] = self.adversarial_epsilon
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["backbone"] = deserialize_backbone(config["backbone"])
        if isinstance(config.get("preprocessor"), dict):
            config["preprocessor"] = keras.saving.deserialize_keras_object(config["preprocessor"])
        return cls(**config)

    # ------------------------------------------------------------ construction
    @classmethod
    def from_pretrained(cls, path: str | Path, seq_length: int = 128, preprocessor_kwargs: dict | None = None,
                        **kwargs):
        """This task with a fresh head on the discriminator (or backbone) saved under `path`.

        `path` is a directory written by `keras-electra pretrain`/`convert`
        (`path/discriminator/model.keras` + `vocab.txt` + `tokenizer.json`), or a
        directory with `model.keras` and tokenizer files directly in it.
        """
        backbone, tokenizer = load_pretrained_backbone(path)
        return cls.from_backbone(backbone, tokenizer, seq_length, preprocessor_kwargs, **kwargs)

    @classmethod
    def from_backbone(cls, backbone: ElectraBackbone, tokenizer: ElectraTokenizer, seq_length: int = 128,
                      preprocessor_kwargs: dict | None = None, **kwargs):
        preprocessor = cls.preprocessor_cls(tokenizer, seq_length=seq_length, **(preprocessor_kwargs or {}))
        return cls(backbone, preprocessor=preprocessor, **kwargs)

    # ------------------------------------------------------------ raw text in
    def predict(self, x, *args, **kwargs):
        """Logits, like `keras.Model.predict`; raw strings go through the attached preprocessor first
        (keras-hub style): `task.predict(["a text"])`, a pair as `(["a"], ["b"])`, QA as
        `(questions, contexts)` (one row per window), multiple choice as `(contexts, questions, choices)`."""
        if _is_raw_text(x):
            if self.preprocessor is None:
                raise CheckpointError(f"this {type(self).__name__} has no preprocessor; pass token_ids, "
                                      "segment_ids and padding_mask")
            x = self.preprocessor(_text_tensors(x))
            x = {k: x[k] for k in MODEL_KEYS}
        return super().predict(x, *args, **kwargs)

    # ------------------------------------------------------------ FGM train step
    def train_step(self, *args):
        """Keras' own step (any backend) unless FGM is on. The TensorFlow trainer calls
        `train_step(data)`, the JAX one the stateless `train_step(state, data)`."""
        if not self.adversarial_epsilon:
            return super().train_step(*args)
        backend = keras.backend.backend()
        if backend == "tensorflow":
            return self._fgm_train_step(*args)
        if backend == "jax":
            return self._jax_fgm_train_step(*args)
        raise ElectraError(f"--adversarial-epsilon (FGM) needs the TensorFlow or JAX backend, not {backend}")

    def _fgm_train_step(self, data):
        """FGM (Miyato et al. 2017): perturb the word embeddings by ε·g/‖g‖, add the gradients
        of a second forward/backward pass on the perturbed embeddings, then restore them."""
        import tensorflow as tf

        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        embeddings = self.backbone.embeddings.word_embeddings
        variables = list(self.trainable_variables)

        def loss_and_grads(targets):
            with tf.GradientTape() as tape:
                y_pred = self(x, training=True)
                loss = self.compute_loss(x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True)
                scaled = self.optimizer.scale_loss(loss)
            return y_pred, loss, tape.gradient(scaled, targets)

        y_pred, loss, grads = loss_and_grads(variables + [embeddings])
        emb_grad = tf.convert_to_tensor(grads.pop())
        norm = tf.norm(emb_grad)
        delta = tf.where(norm > 0.0, self.adversarial_epsilon * emb_grad / (norm + 1e-12), tf.zeros_like(emb_grad))
        backup = tf.identity(embeddings.value)  # restore exactly, not by subtracting delta again
        embeddings.assign_add(tf.cast(delta, embeddings.dtype))
        _, _, adv_grads = loss_and_grads(variables)
        embeddings.assign(backup)

        total = []
        for g1, g2 in zip(grads, adv_grads):
            if g1 is None or g2 is None:
                total.append(g1 if g2 is None else g2)
            else:
                total.append(tf.convert_to_tensor(g1) + tf.convert_to_tensor(g2))
        self.optimizer.apply_gradients(zip(total, variables))
        self._loss_tracker.update_state(loss, sample_weight=tf.shape(tf.nest.flatten(x)[0])[0])
        return self.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    def _jax_fgm_train_step(self, state, data):
        """FGM in the JAX trainer's stateless step: the same two passes as `_fgm_train_step`.

        The perturbation enters as an extra argument δ added to the word embeddings, so
        ∂loss/∂δ at δ = 0 is the embedding gradient whether or not the embeddings train
        (PEFT freezes them). The second pass sees the RNG state the first one left, as on TensorFlow."""
        import jax
        import jax.numpy as jnp

        trainable, non_trainable, optimizer_variables, metrics_variables = state
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        embeddings = self.backbone.embeddings.word_embeddings
        slot = _variable_slot(embeddings, self.trainable_variables, self.non_trainable_variables)

        def perturbed(trainable, non_trainable, delta):
            lists = [list(trainable), list(non_trainable)]
            which, index = slot
            lists[which][index] = lists[which][index] + delta.astype(lists[which][index].dtype)
            return lists

        def loss_fn(trainable, delta, non_trainable):
            t, n = perturbed(trainable, non_trainable, delta)
            return self.compute_loss_and_updates(t, n, metrics_variables, x, y, sample_weight, training=True,
                                                 optimizer_variables=optimizer_variables)

        grad_fn = jax.value_and_grad(loss_fn, argnums=(0, 1), has_aux=True)
        zero = jnp.zeros(embeddings.shape, "float32")
        (_, aux), (grads, emb_grad) = grad_fn(trainable, zero, non_trainable)
        loss, y_pred, non_trainable, new_metrics = aux
        norm = jnp.linalg.norm(emb_grad)
        delta = jnp.where(norm > 0.0, self.adversarial_epsilon * emb_grad / (norm + 1e-12), 0.0)
        (_, adv_aux), (adv_grads, _) = grad_fn(trainable, delta, non_trainable)
        non_trainable = list(adv_aux[2])
        if slot[0] == 1:  # the perturbed table came back as a non-trainable state: put the original back
            non_trainable[slot[1]] = state[1][slot[1]]
        grads = jax.tree_util.tree_map(jnp.add, grads, adv_grads)
        trainable, optimizer_variables = self.optimizer.stateless_apply(optimizer_variables, grads, trainable)
        logs, metrics_variables = self._update_metrics_variables(new_metrics, loss, x, y, y_pred, sample_weight)
        return logs, (trainable, non_trainable, optimizer_variables, metrics_variables)


def _variable_slot(variable, trainable: list, non_trainable: list) -> tuple[int, int]:
    """(0, i) if `variable` is trainable_variables[i], (1, i) if non_trainable_variables[i]."""
    for which, group in enumerate((trainable, non_trainable)):
        for index, candidate in enumerate(group):
            if candidate is variable:
                return which, index
    raise ElectraError(f"FGM: {variable.path} is not among the model's variables")


def _is_raw_text(x) -> bool:
    """Strings (a str, a list/array/tensor of them, or a tuple of such segments) rather than model inputs."""
    if isinstance(x, str | bytes):
        return True
    if type(x).__module__.startswith("tensorflow"):  # a tf.Tensor / RaggedTensor: TensorFlow is already loaded
        import tensorflow as tf

        return isinstance(x, tf.Tensor | tf.RaggedTensor) and x.dtype == tf.string
    if isinstance(x, np.ndarray):
        return x.dtype.kind in "US" or (x.dtype == object and x.size > 0 and isinstance(x.flat[0], str | bytes))
    if isinstance(x, list | tuple) and x:
        return all(_is_raw_text(item) for item in x)
    return False


def _text_tensors(x):
    """Raw text → what the preprocessors take: a string tensor [B], or a tuple of segments. A single
    example (a str, or a tuple with a str segment) becomes a batch of one."""
    import tensorflow as tf  # the preprocessors are TensorFlow graphs (tensorflow-text)

    if isinstance(x, tuple):
        if any(isinstance(seg, str | bytes) for seg in x):
            x = tuple([seg] for seg in x)
        return tuple(tf.constant(seg, tf.string) if not isinstance(seg, tf.Tensor) else seg for seg in x)
    if isinstance(x, str | bytes):
        x = [x]
    return x if isinstance(x, tf.Tensor | tf.RaggedTensor) else tf.constant(x, tf.string)


def cls_hidden(hidden):
    return hidden[:, 0, :]


def float_logits(x):
    return ops.cast(x, "float32")


# ------------------------------------------------------------------- loading
def load_pretrained_backbone(path: str | Path) -> tuple[ElectraBackbone, ElectraTokenizer]:
    """(backbone, tokenizer) from any checkpoint `keras-electra convert` reads.

    A pretraining/convert output dir, a fine-tuned model dir, a TF1 checkpoint, a Hugging
    Face directory (ELECTRA or BERT) or a keras-hub preset: all read by
    `keras_electra.convert.read_checkpoint`, the one entry point. The encoder is the
    discriminator's (a checkpoint holding only a generator gives the generator's).
    """
    from keras_electra.convert.api import load_backbone, read_checkpoint, tokenizer_from_checkpoint

    path = Path(path)
    if not path.exists() and not Path(f"{path}.index").exists():
        raise CheckpointError(f"pretrained model directory not found: {path}")
    checkpoint = read_checkpoint(path)
    if checkpoint.model is not None:  # a keras-electra model: take its encoder as it is
        backbone = getattr(checkpoint.model, "backbone", checkpoint.model)
        if not isinstance(backbone, ElectraBackbone):
            raise CheckpointError(f"{checkpoint.path} holds a {type(checkpoint.model).__name__}, not an ELECTRA "
                                  "discriminator or backbone")
        tokenizer = load_tokenizer(checkpoint.path, fallback=path if path.is_dir() else None)
        if backbone.vocab_size != tokenizer.vocabulary_size:
            raise CheckpointError(
                f"{checkpoint.path} has a vocabulary of {backbone.vocab_size} but {tokenizer.vocabulary_size} "
                f"tokens are in the vocab.txt beside it"
            )
        return backbone, tokenizer
    tokenizer = tokenizer_from_checkpoint(checkpoint)
    if tokenizer is None:
        raise CheckpointError(f"{checkpoint.path} has no {VOCAB_FILE}; the checkpoint must come with its vocabulary")
    return load_backbone(checkpoint), tokenizer


def load_tokenizer(directory: Path, fallback: Path | None = None) -> ElectraTokenizer:
    for d in (directory, fallback, directory.parent):
        if d is not None and (d / VOCAB_FILE).is_file():
            return build_tokenizer(d)
    raise CheckpointError(f"no {VOCAB_FILE} beside {directory} (looked in {directory} and its parent)")


def random_backbone(preset: str = "tiny", vocabulary: str | Path | None = None, lower_case: bool | None = None,
                    seed: int | None = None, **overrides: Any) -> tuple[ElectraBackbone, ElectraTokenizer]:
    """A randomly initialised backbone of `preset` size with the tokenizer of `vocabulary`
    (casing: `lower_case`, else the vocabulary's tokenizer.json, else uncased)."""
    if vocabulary is None:
        raise CheckpointError("random initialisation needs a vocabulary: pass --vocab PATH")
    tokenizer = build_tokenizer(vocabulary, lower_case=lower_case)
    config = ElectraConfig.from_preset(preset, vocab_size=tokenizer.vocabulary_size, **overrides)
    if seed is not None:
        keras.utils.set_random_seed(seed)
    return ElectraBackbone.from_electra_config(config, name="backbone"), tokenizer

