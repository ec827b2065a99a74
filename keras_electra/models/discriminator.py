"""`ElectraDiscriminator`: the backbone people keep, plus the replaced-token-detection head."""

from __future__ import annotations

import keras

from keras_electra.config import ElectraConfig
from keras_electra.layers.heads import ReplacedTokenHead
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.serialization import deserialize_backbone, serialize_backbone


def replaced_token_head(backbone: ElectraBackbone) -> ReplacedTokenHead:
    """The built RTD head on `backbone` (the official `discriminator_predictions` name): the
    discriminator's, and the prompt classifier's, which scores label words with it."""
    head = ReplacedTokenHead(
        backbone.hidden_size, backbone.hidden_act, backbone.initializer_range, backbone.default_initializer,
        name="discriminator_predictions", dtype=backbone.dtype_policy,
    )
    head.build((None, None, backbone.hidden_size))
    return head


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraDiscriminator(keras.Model):
    """Backbone + RTD head; outputs one float32 "was replaced" logit per token [B, L]."""

    def __init__(self, backbone: ElectraBackbone, **kwargs) -> None:
        super().__init__(**kwargs)
        self.backbone = backbone
        self.rtd_head = replaced_token_head(backbone)
        self.built = True

    @classmethod
    def from_electra_config(cls, config: ElectraConfig, **kwargs) -> ElectraDiscriminator:
        backbone = ElectraBackbone.from_electra_config(
            config, name="discriminator_backbone", dtype=kwargs.pop("dtype", None)
        )
        return cls(backbone, **kwargs)

    def call(self, inputs, training=None):
        return self.rtd_head(self.backbone(inputs, training=training))

    def canonical_weights(self) -> dict[str, keras.Variable]:
        names = {f"electra/{k}": v for k, v in self.backbone.canonical_weights().items()}
        head = self.rtd_head
        names["discriminator_predictions/dense/kernel"] = head.dense.kernel
        names["discriminator_predictions/dense/bias"] = head.dense.bias
        names["discriminator_predictions/dense_1/kernel"] = head.dense_1.kernel
        names["discriminator_predictions/dense_1/bias"] = head.dense_1.bias
        return names

    def get_config(self) -> dict:
        return {**super().get_config(), "backbone": serialize_backbone(self.backbone)}

    @classmethod
    def from_config(cls, config: dict) -> ElectraDiscriminator:
        config = dict(config)
        config["backbone"] = deserialize_backbone(config["backbone"])
        return cls(**config)
