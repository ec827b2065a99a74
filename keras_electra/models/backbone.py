"""`ElectraBackbone`: embeddings, optional E→H projection and the transformer stack.

A functional Keras model (keras-hub style): inputs are a dict of `token_ids`,
`segment_ids` and `padding_mask`, the output is the last hidden state [B, L, H].
Why it is a `keras.Model` and not a `keras_hub.models.Backbone` (measured, decided):
see the docstring of `keras_electra/convert/resolve.py`.
"""

from __future__ import annotations

import keras

from keras_electra.config import ElectraConfig
from keras_electra.layers.embeddings import ElectraEmbeddings
from keras_electra.layers.initializers import default_initializer as default_initializer_for
from keras_electra.layers.transformer import TransformerBlock, attention_bias_from_padding_mask

BACKBONE_ARGS = (
    "vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads",
    "intermediate_size", "hidden_act", "hidden_dropout", "attention_dropout",
    "max_position_embeddings", "type_vocab_size", "initializer_range", "layer_norm_eps", "default_initializer",
)


def backbone_inputs() -> dict[str, keras.KerasTensor]:
    return {
        "token_ids": keras.Input(shape=(None,), dtype="int32", name="token_ids"),
        "segment_ids": keras.Input(shape=(None,), dtype="int32", name="segment_ids"),
        "padding_mask": keras.Input(shape=(None,), dtype="int32", name="padding_mask"),
    }


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraBackbone(keras.Model):
    """The ELECTRA encoder. Pass `embeddings` to share an embedding layer (generator).

    `default_initializer` is the initialiser of `embeddings_project` (and, through the models
    built on this backbone, of the RTD output and the task heads): "glorot_uniform" officially,
    or "truncated_normal" (see `ElectraConfig.default_initializer`). A config saved before the
    field existed loads with the official value.
    """

    def __init__(
        self,
        vocab_size: int,
        embedding_size: int,
        hidden_size: int,
        num_layers: int,
        num_heads: int,
        intermediate_size: int,
        hidden_act: str = "gelu",
        hidden_dropout: float = 0.1,
        attention_dropout: float = 0.1,
        max_position_embeddings: int = 512,
        type_vocab_size: int = 2,
        initializer_range: float = 0.02,
        layer_norm_eps: float = 1e-12,
        default_initializer: str = "glorot_uniform",
        embeddings: ElectraEmbeddings | None = None,
        adapter_size: int | None = None,
        prefix_length: int | None = None,
        dtype=None,
        **kwargs,
    ) -> None:
        # === Layers ===
        if embeddings is None:
            embeddings = ElectraEmbeddings(
                vocab_size, embedding_size, max_position_embeddings, type_vocab_size,
                hidden_dropout, layer_norm_eps, initializer_range, name="embeddings", dtype=dtype,
            )
        elif (embeddings.vocab_size, embeddings.embedding_size) != (vocab_size, embedding_size):
            raise ValueError(
                f"shared embeddings are [{embeddings.vocab_size}, {embeddings.embedding_size}] "
                f"but this backbone needs [{vocab_size}, {embedding_size}]"
            )
        self.embeddings = embeddings
        self.embeddings_project = None
        if embedding_size != hidden_size:
            self.embeddings_project = keras.layers.Dense(
                hidden_size, kernel_initializer=default_initializer_for(default_initializer, initializer_range),
                name="embeddings_project", dtype=dtype,
            )
        self.transformer_layers = [
            TransformerBlock(
                hidden_size, num_heads, intermediate_size, hidden_act, hidden_dropout,
                attention_dropout, layer_norm_eps, initializer_range, adapter_size=adapter_size,
                prefix_length=prefix_length, name=f"layer_{i}", dtype=dtype,
            )
            for i in range(num_layers)
        ]

        # === Functional model ===
        inputs = backbone_inputs()
        x = self.embeddings(inputs["token_ids"], inputs["segment_ids"])
        if self.embeddings_project is not None:
            x = self.embeddings_project(x)
        bias = attention_bias_from_padding_mask(inputs["padding_mask"])
        for block in self.transformer_layers:
            x = block(x, bias)
        super().__init__(inputs=inputs, outputs=x, dtype=dtype, **kwargs)

        # === Config ===
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.num_heads = num_heads
        self.intermediate_size = intermediate_size
        self.hidden_act = hidden_act
        self.hidden_dropout = hidden_dropout
        self.attention_dropout = attention_dropout
        self.max_position_embeddings = max_position_embeddings
        self.type_vocab_size = type_vocab_size
        self.initializer_range = initializer_range
        self.layer_norm_eps = layer_norm_eps
        self.default_initializer = default_initializer
        self.adapter_size = adapter_size
        self.prefix_length = int(prefix_length) if prefix_length else None

    def enable_adapters(self, size: int) -> None:
        """Insert bottleneck adapters into every block of a built (e.g. pretrained) backbone."""
        for block in self.transformer_layers:
            block.enable_adapters(size)
        self.adapter_size = int(size)

    def enable_prefix(self, length: int) -> None:
        """Give every block's attention `length` prefix keys and values (prefix tuning)."""
        for block in self.transformer_layers:
            block.attention.enable_prefix(length)
        self.prefix_length = int(length)

    @classmethod
    def from_electra_config(
        cls, config: ElectraConfig, embeddings: ElectraEmbeddings | None = None, **kwargs
    ) -> ElectraBackbone:
        values = config.to_dict()
        return cls(**{k: values[k] for k in BACKBONE_ARGS}, embeddings=embeddings, **kwargs)

    def get_config(self) -> dict:
        return {
            "name": self.name,
            "trainable": self.trainable,
            "dtype": keras.dtype_policies.serialize(self.dtype_policy),
            **{k: getattr(self, k) for k in BACKBONE_ARGS},
            "adapter_size": self.adapter_size,
            **({"prefix_length": self.prefix_length} if self.prefix_length else {}),
        }

    @classmethod
    def from_config(cls, config: dict) -> ElectraBackbone:
        config = dict(config)
        if isinstance(config.get("dtype"), dict):
            config["dtype"] = keras.dtype_policies.deserialize(config["dtype"])
        return cls(**config)

    def canonical_weights(self) -> dict[str, keras.Variable]:
        """Every variable under its official TF1 name (without the `electra/` scope).

        The converters map each source format onto these names, so this one table
        is the only place that knows how our layers line up with the checkpoints.
        """
        names: dict[str, keras.Variable] = {}
        emb = self.embeddings
        names["embeddings/word_embeddings"] = emb.word_embeddings
        names["embeddings/position_embeddings"] = emb.position_embeddings
        names["embeddings/token_type_embeddings"] = emb.token_type_embeddings
        _add_layer_norm(names, "embeddings/LayerNorm", emb.layer_norm)
        if self.embeddings_project is not None:
            _add_dense(names, "embeddings_project", self.embeddings_project)
        for i, block in enumerate(self.transformer_layers):
            prefix = f"encoder/layer_{i}"
            for part in ("query", "key", "value"):
                _add_dense(names, f"{prefix}/attention/self/{part}", getattr(block.attention, part))
            _add_dense(names, f"{prefix}/attention/output/dense", block.attention_output_dense)
            _add_layer_norm(names, f"{prefix}/attention/output/LayerNorm", block.attention_layer_norm)
            _add_dense(names, f"{prefix}/intermediate/dense", block.intermediate_dense)
            _add_dense(names, f"{prefix}/output/dense", block.output_dense)
            _add_layer_norm(names, f"{prefix}/output/LayerNorm", block.output_layer_norm)
        return names


def _add_dense(names: dict, prefix: str, layer: keras.layers.Dense) -> None:
    names[f"{prefix}/kernel"] = layer.kernel
    names[f"{prefix}/bias"] = layer.bias


def _add_layer_norm(names: dict, prefix: str, layer: keras.layers.LayerNormalization) -> None:
    names[f"{prefix}/gamma"] = layer.gamma
    names[f"{prefix}/beta"] = layer.beta
