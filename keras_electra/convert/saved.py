"""keras-electra's own layout, as `keras-electra convert` writes it: `model.keras` + config.json.

Reading it as a `Checkpoint` lets converted (or pretrained-here) models feed the same
code paths as the released formats: `load_pretraining_pair` re-ties the embeddings of a
`DIR/generator` + `DIR/discriminator` pair, and `save_huggingface` needs nothing else.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.convert.common import Checkpoint, SourceTensor, parse_config
from keras_electra.errors import CheckpointError
from keras_electra.utils.io import read_json

MODEL_FILE = "model.keras"
CONFIG_FILE = "config.json"
REPORT_FILE = "conversion.json"


def is_saved_directory(path: str | Path) -> bool:
    return (Path(path) / MODEL_FILE).is_file()


def load_saved_model(path: str | Path):
    """The model in a keras-electra directory (or `.keras` file): `keras_electra.saving.load_model`."""
    path = Path(path)
    file = path / MODEL_FILE if path.is_dir() else path
    if not file.is_file():
        raise CheckpointError(f"{path} has no {MODEL_FILE}")
    from keras_electra.saving import load_model

    return load_model(file, compile=False)


def read_saved(path: str | Path, config: Any = None) -> Checkpoint:
    """A keras-electra model directory as a Checkpoint of its canonical weights."""
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.models.generator import ElectraGenerator

    model = load_saved_model(path)
    directory = Path(path) if Path(path).is_dir() else Path(path).parent
    if not hasattr(model, "canonical_weights"):
        raise CheckpointError(f"{directory / MODEL_FILE} holds a {type(model).__name__}, not an ELECTRA model")
    weights = model.canonical_weights()
    if isinstance(model, ElectraBackbone):
        weights = {f"electra/{k}": v for k, v in weights.items()}
    tensors = {
        name: SourceTensor(name, tuple(int(d) for d in var.shape), _constant(np.asarray(var.numpy())))
        for name, var in weights.items()
    }
    if config is not None:
        resolved = parse_config(config)
    elif (directory / CONFIG_FILE).is_file():
        file = directory / CONFIG_FILE
        resolved = parse_config(read_json(file, CheckpointError, require_object=True), source=str(file))
    elif isinstance(getattr(model, "backbone", model), ElectraBackbone):
        resolved = _config_of(getattr(model, "backbone", model))  # a fine-tuned model: its backbone says it all
    else:
        raise CheckpointError(f"{directory} has {MODEL_FILE} but no {CONFIG_FILE}")
    checkpoint = Checkpoint(
        format="keras-electra", path=directory, tensors=tensors, config=resolved,
        architecture=type(model).__name__,
        generator_config=resolved.generator_config() if isinstance(model, ElectraGenerator) else None,
    )
    checkpoint.model = model  # the loaded model itself, for callers that want it as is
    if (directory / "vocab.txt").is_file():
        from keras_electra.data.tokenizer import build_tokenizer

        tokenizer = build_tokenizer(directory)
        checkpoint.vocabulary = tokenizer.vocabulary
        checkpoint.lower_case, checkpoint.strip_accents = tokenizer.lower_case, tokenizer.strip_accents
    return checkpoint


def _config_of(backbone) -> Any:
    from keras_electra.config import ElectraConfig
    from keras_electra.models.backbone import BACKBONE_ARGS

    return ElectraConfig.from_dict({k: getattr(backbone, k) for k in BACKBONE_ARGS})


def _constant(value: np.ndarray):
    return lambda: value


__all__ = ["read_saved", "load_saved_model", "is_saved_directory"]
