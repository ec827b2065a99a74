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
    "keras_electra.optimization",
    "keras_electra.pretraining.pretrainer",
    "keras_electra.tasks.base",
    "keras_electra.tasks.preprocessors",
    "keras_electra.tasks.classifier",
    "keras_electra.tasks.token_classifier",
    "keras_electra.tasks.question_answerer",
    "keras_electra.tasks.multiple_choice",
    "keras_electra.tasks.relation_classifier",
    "keras_electra.tasks.peft",
    "keras_electra.tasks.prompting",
)


def register_all() -> None:
    """Import every module that registers a serialisable class."""
    for module in SERIALIZABLE_MODULES:
        importlib.import_module(module)


def load_model(path: str | Path, **kwargs):
    """A model saved by keras_electra: a `.keras` file, or a model directory holding `model.keras`."""

    path = Path(path)
    if path.is_dir():
        path = path / MODEL_FILE
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    register_all()
    return load_keras_file(path, **kwargs)


def load_keras_file(path: str | Path, **kwargs):
    """`keras.saving.load_model` on one `.keras` file, every failure one line naming the file.

    Every loader of a `.keras` file goes through here. Keras reports a truncated archive as
    "File not found" (it falls back to other formats), so the archive is checked first.
    """
    import zipfile

    import keras

    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: no such model file")
    if not zipfile.is_zipfile(path):
        raise CheckpointError(f"{path} is not a readable .keras archive (truncated or damaged?)")
    try:
        return keras.saving.load_model(path, **kwargs)
    except (zipfile.BadZipFile, EOFError) as err:
        raise CheckpointError(f"{path} is not a readable .keras archive ({err})") from None
    except (ValueError, TypeError, KeyError, OSError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"cannot load {path}: {reason}") from None
