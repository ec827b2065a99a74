"""The pretraining heads: the generator's MLM head and the discriminator's RTD head."""

from __future__ import annotations

import keras
from keras import ops

from keras_electra.layers.embeddings import ElectraEmbeddings
from keras_electra.layers.initializers import activation, default_initializer, truncated_normal
from keras_electra.layers.random import Dropout


@keras.saving.register_keras_serializable(package="keras_electra")
class MaskedLMHead(keras.layers.Layer):
    """dense(E) → activation → LayerNorm → tied word embeddings + own bias.

    Official names: `generator_predictions/{dense,LayerNorm,output_bias}`.
    """

    def __init__(
        self,
        embedding_size: int,
        vocab_size: int,
        hidden_act: str = "gelu",
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.embedding_size = embedding_size
        self.vocab_size = vocab_size
        self.hidden_act = hidden_act
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.dense = keras.layers.Dense(
            embedding_size, kernel_initializer=truncated_normal(initializer_range),
            name="dense", dtype=self.dtype_policy,
        )
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, name="LayerNorm", dtype=self.dtype_policy
        )
        self._activation = activation(hidden_act)

    def build(self, input_shape) -> None:
        self.dense.build(input_shape)
        self.layer_norm.build((*input_shape[:-1], self.embedding_size))
        self.output_bias = self.add_weight(name="output_bias", shape=(self.vocab_size,), initializer="zeros")
        self.built = True

    def call(self, hidden):
        """The transformed hidden state [.., E]; `logits` turns it into vocabulary scores."""
        return self.layer_norm(self._activation(self.dense(hidden)))

    def logits(self, transformed, embeddings: ElectraEmbeddings):
        # Vocabulary logits in float32: the loss and Gumbel sampling need the range.
        return embeddings.attend(ops.cast(transformed, "float32")) + self.output_bias

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "embedding_size": self.embedding_size,
            "vocab_size": self.vocab_size,
            "hidden_act": self.hidden_act,
            "layer_norm_eps": self.layer_norm_eps,
            "initializer_range": self.initializer_range,
        }


@keras.saving.register_keras_serializable(package="keras_electra")
class ReplacedTokenHead(keras.layers.Layer):
    """dense(H) → activation → dense(1): one "replaced" logit per token.

    Official names: `discriminator_predictions/{dense,dense_1}`. Officially `dense` is
    truncated normal(0.02) and `dense_1` glorot_uniform (`output_initializer`).
    """

    def __init__(
        self,
        hidden_size: int,
        hidden_act: str = "gelu",
        initializer_range: float = 0.02,
        output_initializer: str = "glorot_uniform",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.hidden_act = hidden_act
        self.initializer_range = initializer_range
        self.output_initializer = output_initializer
        self.dense = keras.layers.Dense(hidden_size, kernel_initializer=truncated_normal(initializer_range),
                                        name="dense", dtype=self.dtype_policy)
        self.dense_1 = keras.layers.Dense(1, kernel_initializer=default_initializer(output_initializer,
                                                                                    initializer_range),
                                          name="dense_1", dtype=self.dtype_policy)
        self._activation = activation(hidden_act)

    def build(self, input_shape) -> None:
        self.dense.build(input_shape)
        self.dense_1.build((*input_shape[:-1], self.hidden_size))
        self.built = True

    def call(self, hidden):
        logits = self.dense_1(self._activation(self.dense(hidden)))
        return ops.cast(ops.squeeze(logits, -1), "float32")

    def compute_output_shape(self, input_shape):
        return input_shape[:-1]

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "hidden_act": self.hidden_act,
            "initializer_range": self.initializer_range,
            "output_initializer": self.output_initializer,
        }


@keras.saving.register_keras_serializable(package="keras_electra")
class SentencePairHead(keras.layers.Layer):
    """[CLS] → dense(tanh) → dropout → dense(2): the optional NSP/SOP head (BERT's pooler)."""

    def __init__(self, hidden_size: int, initializer_range: float = 0.02, dropout: float = 0.1, **kwargs) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        self.dropout_rate = dropout
        init = truncated_normal(initializer_range)
        self.pooler = keras.layers.Dense(
            hidden_size, activation="tanh", kernel_initializer=init, name="pooler", dtype=self.dtype_policy
        )
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)
        self.classifier = keras.layers.Dense(2, kernel_initializer=init, name="classifier", dtype=self.dtype_policy)

    def build(self, input_shape) -> None:
        self.pooler.build(input_shape)
        self.classifier.build((*input_shape[:-1], self.hidden_size))
        self.built = True

    def call(self, cls_hidden, training=None):
        return self.classifier(self.dropout(self.pooler(cls_hidden), training=training))

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "initializer_range": self.initializer_range,
            "dropout": self.dropout_rate,
        }
