"""Released ELECTRA checkpoints in and out: Google TF1, Hugging Face, keras-hub.

One mapping table per source format (`tf1`, `huggingface`, `keras_hub`) onto the
canonical (official TF1) names our models expose via `canonical_weights()`; `common`
does the accounting and shape checks; `api` detects formats and builds models.
"""

from keras_electra.convert.api import (
    FORMATS,
    PARTS,
    check_shared_embeddings,
    convert,
    detect_format,
    from_pretrained,
    init_pretrainer,
    load_backbone,
    load_discriminator,
    load_generator,
    load_into,
    load_pretraining_pair,
    load_task,
    pretraining_config,
    read_checkpoint,
    save_huggingface,
    tokenizer_from_checkpoint,
)
from keras_electra.convert.common import Checkpoint, LoadReport

__all__ = [
    "FORMATS", "PARTS", "Checkpoint", "LoadReport", "check_shared_embeddings", "convert", "detect_format",
    "from_pretrained", "init_pretrainer", "load_backbone", "load_discriminator", "load_generator", "load_into",
    "load_task", "load_pretraining_pair", "pretraining_config", "read_checkpoint", "save_huggingface",
    "tokenizer_from_checkpoint",
]
