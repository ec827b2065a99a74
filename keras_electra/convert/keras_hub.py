"""keras-hub `ElectraBackbone` presets saved to a local directory (`backbone.save_to_preset(dir)`).

keras-hub presets hold the encoder only: **no generator head (MLM) and no
discriminator (RTD) head**, because keras-hub's converter loads HF's `AutoModel`.
So a preset loads as an `ElectraBackbone` (for fine-tuning), never as a generator or
discriminator, and cannot continue ELECTRA pretraining.

Mapping (keras-hub variable path → canonical name), with the attention reshapes:

    token_embedding/embeddings                      electra/embeddings/word_embeddings
    position_embedding/embeddings                   electra/embeddings/position_embeddings
    segment_embedding/embeddings                    electra/embeddings/token_type_embeddings
    embeddings_layer_norm/{gamma,beta}              electra/embeddings/LayerNorm/{gamma,beta}
    embeddings_projection/{kernel,bias}             electra/embeddings_project/{kernel,bias}
    transformer_layer_i/self_attention_layer/
        {query,key,value}/kernel [H, heads, d]      .../attention/self/{query,key,value}/kernel [H, H]
        {query,key,value}/bias   [heads, d]         .../bias [H]
        attention_output/kernel  [heads, d, H]      .../attention/output/dense/kernel [H, H]
    transformer_layer_i/self_attention_layer_norm   .../attention/output/LayerNorm
    transformer_layer_i/feedforward_intermediate_dense  .../intermediate/dense
    transformer_layer_i/feedforward_output_dense    .../output/dense
    transformer_layer_i/feedforward_layer_norm      .../output/LayerNorm

Ignored on purpose: `pooled_dense/*`, the tanh pooler keras-hub adds. ELECTRA has no
pooler, and keras-hub's converter leaves it randomly initialised.

Numerics: keras-hub's `ElectraBackbone` hard-codes the tanh approximation of GELU
(`gelu_approximate`) and LayerNorm epsilon 1e-12; its saved config.json records
neither. The original ELECTRA (and Hugging Face) use exact GELU. By default the
converted model uses `gelu_approximate`, so it reproduces the preset's outputs; pass
`config={"hidden_act": "gelu"}` to get the original ELECTRA numerics instead.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.config import ElectraConfig
from keras_electra.convert.common import Checkpoint, SourceTensor, check_vocabulary, parse_config
from keras_electra.errors import CheckpointError
from keras_electra.utils.io import read_json

REGISTERED_NAME = "keras_hub>ElectraBackbone"
WEIGHTS_FILE = "model.weights.h5"
VOCAB_FILE = Path("assets") / "tokenizer" / "vocabulary.txt"
KERAS_HUB_ACTIVATION = "gelu_approximate"

_FIXED = {
    "token_embedding/embeddings": "embeddings/word_embeddings",
    "position_embedding/embeddings": "embeddings/position_embeddings",
    "segment_embedding/embeddings": "embeddings/token_type_embeddings",
    "embeddings_layer_norm/gamma": "embeddings/LayerNorm/gamma",
    "embeddings_layer_norm/beta": "embeddings/LayerNorm/beta",
    "embeddings_projection/kernel": "embeddings_project/kernel",
    "embeddings_projection/bias": "embeddings_project/bias",
}
_LAYER_PARTS = {
    "self_attention_layer/query": "attention/self/query",
    "self_attention_layer/key": "attention/self/key",
    "self_attention_layer/value": "attention/self/value",
    "self_attention_layer/attention_output": "attention/output/dense",
    "self_attention_layer_norm": "attention/output/LayerNorm",
    "feedforward_intermediate_dense": "intermediate/dense",
    "feedforward_output_dense": "output/dense",
    "feedforward_layer_norm": "output/LayerNorm",
}
_LAYER = re.compile(r"^transformer_layer_(\d+)/(.+)/(kernel|bias|gamma|beta)$")
IGNORED_PREFIXES = {"pooled_dense/": "keras-hub's tanh pooler (not part of ELECTRA; randomly initialised)"}


def preset_class(path: str | Path) -> str | None:
    """The keras-hub registered class name of a preset directory, if it is one."""
    config = Path(path) / "config.json"
    if not config.is_file():
        return None
    try:
        values = read_json(config, CheckpointError, require_object=True)
    except CheckpointError:
        return None
    name = values.get("registered_name") or ""
    module = values.get("module") or ""
    return name if name.startswith("keras_hub>") or module.startswith("keras_hub") else None


def is_keras_hub_preset(path: str | Path) -> bool:
    return preset_class(path) is not None


def kh_to_canonical(path: str) -> str | None:
    """keras-hub variable path → canonical name (under `electra/`), or None."""
    if path in _FIXED:
        return f"electra/{_FIXED[path]}"
    match = _LAYER.match(path)
    if match and match.group(2) in _LAYER_PARTS:
        return f"electra/encoder/layer_{match.group(1)}/{_LAYER_PARTS[match.group(2)]}/{match.group(3)}"
    return None


def _to_ours(canonical: str, value: np.ndarray) -> np.ndarray:
    """Fold keras-hub's per-head EinsumDense layout back into [H, H] / [H]."""
    if "/attention/self/" in canonical:
        if canonical.endswith("/kernel"):  # [H, heads, head_dim] -> [H, heads * head_dim]
            return value.reshape(value.shape[0], -1)
        return value.reshape(-1)  # bias [heads, head_dim] -> [H]
    if canonical.endswith("/attention/output/dense/kernel"):  # [heads, head_dim, H] -> [H, H]
        return value.reshape(-1, value.shape[-1])
    return value


def read_keras_hub(path: str | Path, config: Any = None) -> Checkpoint:
    """Read a keras-hub ElectraBackbone preset directory into canonical names."""
    directory = Path(path)
    registered = preset_class(directory)
    if registered is None:
        raise CheckpointError(
            f"{directory} is not a keras-hub preset: expected config.json naming {REGISTERED_NAME} "
            f"and {WEIGHTS_FILE} (as written by backbone.save_to_preset(dir))"
        )
    if registered != REGISTERED_NAME:
        raise CheckpointError(f"{directory} is a keras-hub preset of {registered}, not {REGISTERED_NAME}")
    if not (directory / WEIGHTS_FILE).is_file():
        raise CheckpointError(f"{directory} has no {WEIGHTS_FILE}")
    import keras_hub

    try:
        backbone = keras_hub.models.ElectraBackbone.from_preset(str(directory))
    except Exception as err:  # noqa: BLE001 - keras-hub raises many error types for a bad preset
        raise CheckpointError(f"{directory}: keras-hub cannot load this preset: {err}") from None

    tensors: dict[str, SourceTensor] = {}
    ignored: dict[str, str] = {}
    unmapped: list[str] = []
    for variable in backbone.weights:
        source = variable.path
        reason = next((why for prefix, why in IGNORED_PREFIXES.items() if source.startswith(prefix)), None)
        if reason:
            ignored[source] = reason
            continue
        canonical = kh_to_canonical(source)
        if canonical is None:
            unmapped.append(source)
            continue
        stored = np.asarray(variable.numpy(), dtype=np.float32)
        value = _to_ours(canonical, stored)
        tensors[canonical] = SourceTensor(
            source, value.shape, _constant(value), source_shape=stored.shape,
            note="per-head layout merged" if value.shape != stored.shape else "",
        )

    values = read_json(directory / "config.json", CheckpointError, require_object=True).get("config", {})
    checkpoint = Checkpoint(
        format="keras-hub", path=directory, tensors=tensors, config=_config(values, config, directory),
        ignored=ignored, unmapped=unmapped, architecture="ElectraBackbone", raw_config=values,
    )
    checkpoint.notes.append(
        "keras-hub presets carry no generator (MLM) head and no discriminator (RTD) head: only the backbone loads"
    )
    _tokenizer(checkpoint, directory)
    check_vocabulary(checkpoint)
    return checkpoint


def _constant(value: np.ndarray):
    return lambda: value


def _config(values: dict[str, Any], config: Any, directory: Path) -> ElectraConfig:
    try:
        fields = dict(
            vocab_size=values["vocab_size"],
            embedding_size=values["embedding_dim"],
            hidden_size=values["hidden_dim"],
            num_layers=values["num_layers"],
            num_heads=values["num_heads"],
            intermediate_size=values["intermediate_dim"],
            hidden_act=KERAS_HUB_ACTIVATION,
            hidden_dropout=float(values.get("dropout", 0.1)),
            attention_dropout=float(values.get("dropout", 0.1)),
            max_position_embeddings=values.get("max_sequence_length", 512),
            type_vocab_size=values.get("num_segments", 2),
            layer_norm_eps=1e-12,
        )
    except KeyError as err:
        raise CheckpointError(f"{directory / 'config.json'} lacks {err.args[0]}") from None
    base = ElectraConfig.from_dict(fields)
    if config is None:
        return base
    if isinstance(config, dict) and set(config) <= set(fields) | {"initializer_range", "generator_fraction"}:
        return base.replace(**config)  # overrides, e.g. {"hidden_act": "gelu"}
    return parse_config(config)


def _tokenizer(checkpoint: Checkpoint, directory: Path) -> None:
    """Vocabulary and casing from the preset's tokenizer, when it was saved with one."""
    from keras_electra.data.tokenizer import load_vocabulary

    if (directory / VOCAB_FILE).is_file():
        checkpoint.vocabulary = load_vocabulary(directory / VOCAB_FILE)
    elif (directory / "vocab.txt").is_file():
        checkpoint.vocabulary = load_vocabulary(directory / "vocab.txt")
    settings = {}
    if (directory / "tokenizer.json").is_file():
        settings = read_json(directory / "tokenizer.json", CheckpointError, require_object=True).get("config", {})
    if "lowercase" in settings:
        checkpoint.lower_case = bool(settings["lowercase"])
        checkpoint.strip_accents = bool(settings.get("strip_accents", False))
    if checkpoint.vocabulary and not checkpoint.lower_case and _uncased(checkpoint.vocabulary):
        # keras-hub's converter builds uncased presets without lowercase=True; with an
        # all-lower-case vocabulary every capitalised word would become [UNK].
        checkpoint.notes.append(
            "the preset's tokenizer says lowercase=false but its vocabulary has no capital letters: "
            "lower-casing (with accent stripping, as BERT's uncased tokenizer) is turned on"
        )
        checkpoint.lower_case, checkpoint.strip_accents = True, None


def _uncased(vocabulary: list[str]) -> bool:
    """No ASCII capital in any ordinary token (BERT's uncased vocab has none; the cased one has 8,000+)."""
    return not any("A" <= ch <= "Z" for token in vocabulary if not token.startswith("[") for ch in token)
