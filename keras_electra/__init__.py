"""keras_electra: ELECTRA pretraining, fine-tuning, checkpoint interop and export for Keras 3.

Names are imported lazily, so `import keras_electra.data.readers` (pure Python) does not
pay for importing TensorFlow.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "ElectraConfig": "keras_electra.config",
    "ElectraTokenizer": "keras_electra.data.tokenizer",
    "CheckpointError": "keras_electra.errors",
    "DataError": "keras_electra.errors",
    "ElectraError": "keras_electra.errors",
    "TrainingError": "keras_electra.errors",
    "VocabularyError": "keras_electra.errors",
    "ElectraBackbone": "keras_electra.models.backbone",
    "ElectraDiscriminator": "keras_electra.models.discriminator",
    "ElectraGenerator": "keras_electra.models.generator",
    "ElectraAdamW": "keras_electra.optimization",
    "WarmupLinearDecay": "keras_electra.optimization",
    "create_optimizer": "keras_electra.optimization",
    "ElectraPretrainer": "keras_electra.pretraining.pretrainer",
    "load_model": "keras_electra.saving",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'keras_electra' has no attribute {name!r}")


def __dir__() -> list[str]:
    return __all__
