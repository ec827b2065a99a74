"""Word, position and token-type embeddings, then LayerNorm and dropout.

One instance is shared by the generator and the discriminator during pretraining,
LayerNorm included (official code: both nets read `electra/embeddings/*`).
"""

from __future__ import annotations

import keras
from keras import ops

from keras_electra.layers.initializers import truncated_normal
from keras_electra.layers.random import Dropout


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraEmbeddings(keras.layers.Layer):
    """Sum of word, position and token-type embeddings of size `embedding_size`."""

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.dropout_rate = dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        self.layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, name="LayerNorm", dtype=self.dtype_policy
        )
        self.dropout = Dropout(dropout, dtype=self.dtype_policy)

    def build(self, input_shape=None) -> None:
        init = truncated_normal(self.initializer_range)
        self.word_embeddings = self.add_weight(
            name="word_embeddings", shape=(self.vocab_size, self.embedding_size), initializer=init
        )
        self.position_embeddings = self.add_weight(
            name="position_embeddings",
            shape=(self.max_position_embeddings, self.embedding_size),
            initializer=init,
        )
        self.token_type_embeddings = self.add_weight(
            name="token_type_embeddings",
            shape=(self.type_vocab_size, self.embedding_size),
            initializer=init,
        )
        self.layer_norm.build((None, None, self.embedding_size))
        self.built = True

    def call(self, token_ids, segment_ids, training: bool | None = None):
        seq_length = ops.shape(token_ids)[1]
        dtype = self.compute_dtype  # variables are autocast to it under mixed precision
        words = ops.cast(ops.take(self.word_embeddings, token_ids, axis=0), dtype)
        positions = ops.cast(self.position_embeddings[:seq_length][None, :, :], dtype)
        # A one-hot matmul is faster than a gather for the tiny type vocabulary (official code).
        types = ops.matmul(
            ops.one_hot(segment_ids, self.type_vocab_size, dtype=dtype),
            ops.cast(self.token_type_embeddings, dtype),
        )
        x = words + positions + types
        x = self.layer_norm(x)
        return self.dropout(x, training=training)

    def attend(self, hidden):
        """Logits over the vocabulary: `hidden @ word_embeddings^T` (the tied MLM output)."""
        return ops.matmul(hidden, ops.transpose(ops.cast(self.word_embeddings, hidden.dtype)))

    def compute_output_shape(self, token_ids_shape, segment_ids_shape=None):
        return (*token_ids_shape, self.embedding_size)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocab_size": self.vocab_size,
            "embedding_size": self.embedding_size,
            "max_position_embeddings": self.max_position_embeddings,
            "type_vocab_size": self.type_vocab_size,
            "dropout": self.dropout_rate,
            "layer_norm_eps": self.layer_norm_eps,
            "initializer_range": self.initializer_range,
        }
