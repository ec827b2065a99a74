"""Nested-backbone (de)serialisation shared by every model that wraps a backbone."""

from __future__ import annotations

import keras


def serialize_backbone(backbone: keras.Model) -> dict:
    return keras.saving.serialize_keras_object(backbone)


def deserialize_backbone(config):
    if isinstance(config, keras.Model):
        return config
    return keras.saving.deserialize_keras_object(config)
