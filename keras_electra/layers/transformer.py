"""The post-LayerNorm transformer block of BERT/ELECTRA.

Sub-layer names mirror the official checkpoint layout
(`encoder/layer_i/attention/self/{query,key,value}`, `attention/output/dense`, ...),
and every dense kernel is stored as [in, out], so converters are a name table.
"""

from __future__ import annotations

import keras
from keras import ops

from keras_electra.layers.initializers import activation, truncated_normal
from keras_electra.layers.random import Dropout

# The official code adds -10000 to the scores of padding keys; kept for parity.
MASK_BIAS = -10000.0


def _dense(units: int, name: str, initializer_range: float, dtype) -> keras.layers.Dense:
    return keras.layers.Dense(
        units, kernel_initializer=truncated_normal(initializer_range), name=name, dtype=dtype
    )


@keras.saving.register_keras_serializable(package="keras_electra")
class SelfAttention(keras.layers.Layer):
    """Multi-head self-attention with separate [H, H] query/key/value kernels.

    `prefix_length` P > 0 (prefix tuning, Li & Liang 2021): P trainable key and value vectors
    (`prefix_key`, `prefix_value`, [P, H]) are put before the projected keys and values of every
    sequence; every query attends to them (their attention bias is 0). While training, the
    values come from a reparameterisation MLP instead (`keras_electra.tasks.peft.PrefixEncoder`,
    attached by `attach_prefix_source`), which is folded into these plain tensors for saving.
    """

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        attention_dropout: float = 0.1,
        initializer_range: float = 0.02,
        prefix_length: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.head_size = hidden_size // num_heads
        self.attention_dropout = attention_dropout
        self.initializer_range = initializer_range
        policy = self.dtype_policy
        self.query = _dense(hidden_size, "query", initializer_range, policy)
        self.key = _dense(hidden_size, "key", initializer_range, policy)
        self.value = _dense(hidden_size, "value", initializer_range, policy)
        self.dropout = Dropout(attention_dropout, dtype=policy)
        self.prefix_length = int(prefix_length) if prefix_length else None
        self.prefix_key = self.prefix_value = None
        self._prefix_source = None  # (PrefixEncoder, layer index) while training through the MLP; not tracked

    def build(self, hidden_shape, attention_bias_shape=None) -> None:
        for layer in (self.query, self.key, self.value):
            layer.build(hidden_shape)
        if self.prefix_length:
            self._add_prefix_weights()
        self.built = True

    def _add_prefix_weights(self) -> None:
        shape = (self.prefix_length, self.hidden_size)
        self.prefix_key = self.add_weight(shape=shape, initializer="zeros", name="prefix_key")
        self.prefix_value = self.add_weight(shape=shape, initializer="zeros", name="prefix_value")

    def enable_prefix(self, length: int) -> None:
        """Add prefix key/value tensors to a built layer (like `Dense.enable_lora`)."""
        if self.prefix_length:
            raise ValueError(f"{self.name} already has a prefix of length {self.prefix_length}")
        self.prefix_length = int(length)
        self._tracker.unlock()
        self._add_prefix_weights()
        self._tracker.lock()

    def attach_prefix_source(self, source, index: int | None) -> None:
        """Take the prefixes from `source.layer_prefix(index)` (a reparameterisation MLP), or, with
        `source=None`, from this layer's own `prefix_key`/`prefix_value` again."""
        # object.__setattr__: the source belongs to the task model; tracking it here too would
        # list its variables under every attention layer.
        object.__setattr__(self, "_prefix_source", None if source is None else (source, int(index)))

    def prefixes(self):
        """The ([P, H] key, [P, H] value) prefixes this layer uses now."""
        if self._prefix_source is not None:
            source, index = self._prefix_source
            return source.layer_prefix(index)
        return self.prefix_key, self.prefix_value

    def _split_heads(self, x, batch, length):
        x = ops.reshape(x, (batch, length, self.num_heads, self.head_size))
        return ops.transpose(x, (0, 2, 1, 3))

    def call(self, hidden, attention_bias, training: bool | None = None):
        batch, length = ops.shape(hidden)[0], ops.shape(hidden)[1]
        q = self._split_heads(self.query(hidden), batch, length)
        k = self._split_heads(self.key(hidden), batch, length)
        v = self._split_heads(self.value(hidden), batch, length)
        if self.prefix_length:
            k, v, attention_bias = self._with_prefix(k, v, attention_bias, batch)
        scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
        # Softmax in float32 even under mixed precision: it is where fp16 overflows.
        scores = ops.cast(scores, "float32") * (1.0 / self.head_size**0.5) + ops.cast(attention_bias, "float32")
        probs = ops.cast(ops.softmax(scores, axis=-1), self.compute_dtype)
        probs = self.dropout(probs, training=training)
        context = ops.transpose(ops.matmul(probs, v), (0, 2, 1, 3))
        return ops.reshape(context, (batch, length, self.hidden_size))

    def _with_prefix(self, k, v, attention_bias, batch):
        """Keys and values [B, h, P+L, d] with the prefix first; the bias gets P zeros (always attended)."""
        prefix_key, prefix_value = self.prefixes()

        def heads(prefix):  # [P, H] → [B, h, P, d]
            prefix = ops.cast(prefix, k.dtype)
            prefix = ops.transpose(ops.reshape(prefix, (1, self.prefix_length, self.num_heads, self.head_size)),
                                   (0, 2, 1, 3))
            return ops.tile(prefix, (batch, 1, 1, 1))

        k = ops.concatenate([heads(prefix_key), k], axis=2)
        v = ops.concatenate([heads(prefix_value), v], axis=2)
        attention_bias = ops.pad(attention_bias, ((0, 0), (0, 0), (0, 0), (self.prefix_length, 0)))
        return k, v, attention_bias

    def compute_output_shape(self, hidden_shape, attention_bias_shape=None):
        return hidden_shape

    def get_config(self) -> dict:
        config = {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "attention_dropout": self.attention_dropout,
            "initializer_range": self.initializer_range,
        }
        if self.prefix_length:  # only when set: configs saved before prefixes existed stay the same
            config["prefix_length"] = self.prefix_length
        return config


@keras.saving.register_keras_serializable(package="keras_electra")
class Adapter(keras.layers.Layer):
    """Bottleneck adapter (Houlsby et al. 2019): x + up(gelu(down(x))), the identity at initialisation."""

    def __init__(self, size: int, hidden_size: int, initializer_range: float = 0.02, **kwargs) -> None:
        super().__init__(**kwargs)
        self.size = size
        self.hidden_size = hidden_size
        self.initializer_range = initializer_range
        self.down = _dense(size, "down", initializer_range, self.dtype_policy)
        self.up = keras.layers.Dense(hidden_size, kernel_initializer="zeros", name="up", dtype=self.dtype_policy)

    def build(self, input_shape) -> None:
        self.down.build(input_shape)
        self.up.build((*input_shape[:-1], self.size))
        self.built = True

    def call(self, x):
        return x + self.up(ops.gelu(self.down(x), approximate=False))

    def get_config(self) -> dict:
        return {**super().get_config(), "size": self.size, "hidden_size": self.hidden_size,
                "initializer_range": self.initializer_range}


@keras.saving.register_keras_serializable(package="keras_electra")
class TransformerBlock(keras.layers.Layer):
    """Attention → dense → dropout → residual LayerNorm → FFN → dropout → residual LayerNorm."""

    def __init__(
        self,
        hidden_size: int,
        num_heads: int,
        intermediate_size: int,
        hidden_act: str = "gelu",
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        layer_norm_eps: float = 1e-12,
        initializer_range: float = 0.02,
        adapter_size: int | None = None,
        prefix_length: int | None = None,
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.hidden_size = hidden_size
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.layer_norm_eps = layer_norm_eps
        self.initializer_range = initializer_range
        policy = self.dtype_policy
        self.attention = SelfAttention(
            hidden_size, num_heads, attention_dropout, initializer_range, prefix_length=prefix_length,
            name="attention", dtype=policy,
        )
        self.attention_output_dense = _dense(hidden_size, "attention_output_dense", initializer_range, policy)
        self.attention_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, name="attention_layer_norm", dtype=policy
        )
        self.intermediate_dense = _dense(intermediate_size, "intermediate_dense", initializer_range, policy)
        self.output_dense = _dense(hidden_size, "output_dense", initializer_range, policy)
        self.output_layer_norm = keras.layers.LayerNormalization(
            epsilon=layer_norm_eps, name="output_layer_norm", dtype=policy
        )
        self.dropout = Dropout(hidden_dropout, dtype=policy)
        self._activation = activation(hidden_act)
        self.adapter_size = None
        self.attention_adapter = self.output_adapter = None
        if adapter_size:
            self._create_adapters(adapter_size)

    def _create_adapters(self, size: int) -> None:
        self.adapter_size = int(size)
        self.attention_adapter = Adapter(size, self.hidden_size, self.initializer_range,
                                         name="attention_adapter", dtype=self.dtype_policy)
        self.output_adapter = Adapter(size, self.hidden_size, self.initializer_range,
                                      name="output_adapter", dtype=self.dtype_policy)

    def enable_adapters(self, size: int) -> None:
        """Add adapters to a built block (like `Dense.enable_lora`): after the attention and FFN outputs."""
        if self.adapter_size:
            raise ValueError(f"{self.name} already has adapters of size {self.adapter_size}")
        self._tracker.unlock()
        self._create_adapters(size)
        self._tracker.lock()
        shape = (None, None, self.hidden_size)
        with keras.name_scope(self.name):  # paths like layer_3/attention_adapter/..., as if built with the block
            self.attention_adapter.build(shape)
            self.output_adapter.build(shape)

    def build(self, hidden_shape, attention_bias_shape=None) -> None:
        self.attention.build(hidden_shape)
        self.attention_output_dense.build(hidden_shape)
        self.attention_layer_norm.build(hidden_shape)
        self.intermediate_dense.build(hidden_shape)
        self.output_dense.build((*hidden_shape[:-1], self.intermediate_size))
        self.output_layer_norm.build(hidden_shape)
        if self.adapter_size:
            self.attention_adapter.build(hidden_shape)
            self.output_adapter.build(hidden_shape)
        self.built = True

    def call(self, hidden, attention_bias, training: bool | None = None):
        attended = self.attention(hidden, attention_bias, training=training)
        attended = self.dropout(self.attention_output_dense(attended), training=training)
        if self.attention_adapter is not None:
            attended = self.attention_adapter(attended)
        hidden = self.attention_layer_norm(attended + hidden)
        ffn = self._activation(self.intermediate_dense(hidden))
        ffn = self.dropout(self.output_dense(ffn), training=training)
        if self.output_adapter is not None:
            ffn = self.output_adapter(ffn)
        return self.output_layer_norm(ffn + hidden)

    def compute_output_shape(self, hidden_shape, attention_bias_shape=None):
        return hidden_shape

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "hidden_size": self.hidden_size,
            "num_heads": self.num_heads,
            "intermediate_size": self.intermediate_size,
            "hidden_act": self.hidden_act,
            "hidden_dropout": self.hidden_dropout,
            "attention_dropout": self.attention_dropout,
            "layer_norm_eps": self.layer_norm_eps,
            "initializer_range": self.initializer_range,
            "adapter_size": self.adapter_size,
            **({"prefix_length": self.attention.prefix_length} if self.attention.prefix_length else {}),
        }


def attention_bias_from_padding_mask(padding_mask):
    """[B, L] padding mask (1 = token) → [B, 1, 1, L] additive float32 bias."""
    mask = ops.cast(padding_mask, "float32")
    return ops.expand_dims(ops.expand_dims((mask - 1.0) * -MASK_BIAS, 1), 1)
