"""`ElectraGenerator`: a small masked-LM whose output layer is tied to the word embeddings."""

from __future__ import annotations

import keras
from keras import ops

from keras_electra.config import ElectraConfig
from keras_electra.layers.heads import MaskedLMHead
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.serialization import deserialize_backbone, serialize_backbone


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraGenerator(keras.Model):
    """Backbone + MLM head. Call with `mask_positions` [B, P] to score only those positions.

    Gathering the masked positions before the head is what keeps pretraining
    cheap: full-sequence vocabulary logits are never materialised.
    """

    def __init__(self, backbone: ElectraBackbone, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.mlm_head = MaskedLMHead(
            backbone.embedding_size, backbone.vocab_size, backbone.hidden_act,
            backbone.layer_norm_eps, backbone.initializer_range,
            name="generator_predictions", dtype=backbone.dtype_policy,
        )
        self.mlm_head.build((None, None, backbone.hidden_size))
        self.built = True

    @classmethod
    def from_electra_config(cls, config: ElectraConfig, embeddings=None, **kwargs) -> ElectraGenerator:
        backbone = ElectraBackbone.from_electra_config(
            config.generator_config(), embeddings=embeddings, name="generator_backbone",
            dtype=kwargs.pop("dtype", None),
        )
        return cls(backbone, **kwargs)

    def call(self, inputs, mask_positions=None, training=None):
        hidden = self.backbone(inputs, training=training)
        if mask_positions is not None:
            hidden = ops.take_along_axis(hidden, ops.cast(mask_positions, "int32")[..., None], axis=1)
        return self.mlm_head.logits(self.mlm_head(hidden), self.backbone.embeddings)

    def canonical_weights(self) -> dict[str, keras.Variable]:
        """Official TF1 names: generator encoder under `generator/`, shared embeddings under `electra/`."""
        names = {}
        for name, var in self.backbone.canonical_weights().items():
            scope = "electra" if name.startswith("embeddings/") else "generator"
            names[f"{scope}/{name}"] = var
        head = self.mlm_head
        names["generator_predictions/dense/kernel"] = head.dense.kernel
        names["generator_predictions/dense/bias"] = head.dense.bias
        names["generator_predictions/LayerNorm/gamma"] = head.layer_norm.gamma
        names["generator_predictions/LayerNorm/beta"] = head.layer_norm.beta
        names["generator_predictions/output_bias"] = head.output_bias
        return names

    def get_config(self) -> dict:
        return {**super().get_config(), "backbone": serialize_backbone(self.backbone)}

    @classmethod
    def from_config(cls, config: dict) -> ElectraGenerator:
        config = dict(config)
        config["backbone"] = deserialize_backbone(config["backbone"])
        return cls(**config)
