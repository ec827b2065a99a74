"""`keras_electra.load_model`: open any `.keras` file this package wrote.

`keras.models.load_model` finds custom classes only once their modules are imported (that is
when `register_keras_serializable` runs), and `import keras_electra` is lazy. This imports every
module that registers a class, then loads.
"""

from __future__ import annotations

import importlib
from pathlib import Path

from keras_electra.errors import CheckpointError

MODEL_FILE = "model.keras"

# Every module with a `register_keras_serializable` class.
SERIALIZABLE_MODULES = (
    "keras_electra.layers.embeddings",
    "keras_electra.layers.heads",
    "keras_electra.layers.random",
    "keras_electra.layers.transformer",
    "keras_electra.models.backbone",
    "keras_electra.models.discriminator",
    "keras_electra.models.generator",
    "keras_electra.data.tokenizer",
    "keras_electra.pretraining.optimization",
    "keras_electra.pretraining.pretrainer",
    "keras_electra.tasks.base",
    "keras_electra.tasks.preprocessors",
    "keras_electra.tasks.classifier",
    "keras_electra.tasks.token_classifier",
    "keras_electra.tasks.question_answerer",
    "keras_electra.tasks.multiple_choice",
    "keras_electra.tasks.relation_classifier",
)


def register_all() -> None:
    """Import every module that registers a serialisable class."""
    for module in SERIALIZABLE_MODULES:
        importlib.import_module(module)


def load_model(path: str | Path, **kwargs):
    """A model saved by keras_electra: a `.keras` file, or a model directory holding `model.keras`."""
    import keras

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    register_all()
    return keras.models.load_model(path, **kwargs)
