"""Hugging Face checkpoints: a directory with `config.json` and `model.safetensors`.

The mapping is one generic rule between state-dict keys and canonical (official TF1)
names, so every ELECTRA class and task head is covered without per-class code:

    electra.encoder.layer.3.attention.self.query.weight  <->  electra/encoder/layer_3/attention/self/query/kernel
    <module>.weight (2-D Linear, stored [out, in])       <->  <module>/kernel ([in, out]: transposed)
    <module>.weight / .bias of a LayerNorm (1-D weight)  <->  <module>/gamma / <module>/beta
    *_embeddings.weight                                  <->  *_embeddings
    discriminator_predictions.dense_prediction           <->  discriminator_predictions/dense_1
    generator_lm_head.bias                               <->  generator_predictions/output_bias
    classifier.out_proj.weight                           <->  classifier/out_proj/kernel   (task heads likewise)

In an `ElectraForMaskedLM` (a generator) the `electra.` encoder is the generator's:
`electra.encoder.*` <-> `generator/encoder/*`, while `electra.embeddings.*` stays
`electra/embeddings/*`, the embeddings shared with the discriminator. Bare
`ElectraModel` saves have no `electra.` prefix; both forms are read.

Ignored on purpose: the `position_ids` / `token_type_ids` buffers older versions saved,
and `generator_lm_head.weight` once checked equal to the word embeddings it is tied to.

BERT (`model_type: bert`: `BertModel`, `BertForPreTraining`, `BertForMaskedLM`,
`BertFor*Classification`, ...) goes through the same rule after renaming its keys
to ELECTRA's (`bert_to_electra_key`): the encoder is ELECTRA's discriminator encoder
(E == H, no projection), and BERT's MLM head has the generator head's structure:

    bert.embeddings.* / bert.encoder.*                 ->  electra.embeddings.* / electra.encoder.*
    cls.predictions.transform.{dense,LayerNorm}.*      ->  generator_predictions.{dense,LayerNorm}.*
    cls.predictions.bias                               ->  generator_lm_head.bias
    cls.predictions.decoder.weight / .bias             ->  tied: checked equal, then ignored

A BERT MLM encoder is read both as the discriminator encoder (the default part: a
backbone to fine-tune) and as a full-size generator's (`part="generator"`). BERT's
pooler, its next-sentence head and its task heads (the pooler feeds BERT's sequence
classifier, so its `classifier` is not ELECTRA's) are ignored on purpose and reported.
"""

from __future__ import annotations

import importlib.util
import json
import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.convert.common import (
    HF_ACTIVATIONS,
    OUR_TO_HF_ACTIVATION,
    Checkpoint,
    SourceTensor,
    check_vocabulary,
    config_from_hf,
    discover_vocabulary,
    parse_config,
)
from keras_electra.errors import CheckpointError
from keras_electra.utils.io import atomic_directory, read_json

CONFIG_FILE = "config.json"
SAFETENSORS = "model.safetensors"
SAFETENSORS_INDEX = "model.safetensors.index.json"
TORCH_BIN = "pytorch_model.bin"
TORCH_BIN_INDEX = "pytorch_model.bin.index.json"
WEIGHT_FILES = (SAFETENSORS, SAFETENSORS_INDEX, TORCH_BIN, TORCH_BIN_INDEX)

PRETRAINING = "ElectraForPreTraining"
MASKED_LM = "ElectraForMaskedLM"
BASE_MODEL = "ElectraModel"
TASK_ARCHITECTURES = (
    "ElectraForSequenceClassification",
    "ElectraForTokenClassification",
    "ElectraForQuestionAnswering",
    "ElectraForMultipleChoice",
)
ARCHITECTURES = (PRETRAINING, MASKED_LM, BASE_MODEL, *TASK_ARCHITECTURES)
BACKBONE_ROOTS = ("embeddings", "embeddings_project", "encoder")
BUFFERS = ("position_ids", "token_type_ids")
BERT_ARCHITECTURES = (
    "BertModel", "BertForPreTraining", "BertForMaskedLM", "BertForSequenceClassification",
    "BertForTokenClassification", "BertForMultipleChoice", "BertForQuestionAnswering",
    "BertForNextSentencePrediction",
)
# Tied MLM output matrices: checked equal to the word embeddings, then ignored.
TIED_OUTPUTS = ("generator_lm_head.weight", "cls.predictions.decoder.weight")


def is_hf_directory(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and (path / CONFIG_FILE).is_file() and any((path / f).is_file() for f in WEIGHT_FILES)


# ------------------------------------------------------------------------ key rules
def hf_to_canonical(key: str, generator: bool, ndim_of: Mapping[str, int]) -> tuple[str, str] | None:
    """(canonical name, transform) for one state-dict key; None when the key fits no rule.

    `transform` is "copy" or "transpose"; `ndim_of` gives every key's rank (a 1-D
    `weight` is a LayerNorm gain, and its sibling `bias` is the LayerNorm shift).
    """
    if key == "generator_lm_head.bias":
        return "generator_predictions/output_bias", "copy"
    parts = key.split(".")
    if parts[0] == "electra":
        parts, backbone = parts[1:], True
    else:
        backbone = parts[0] in BACKBONE_ROOTS
    if not parts:
        return None
    if backbone:
        scope = "generator" if generator and parts[0] != "embeddings" else "electra"
    else:
        scope = None
    if parts[:2] == ["discriminator_predictions", "dense_prediction"]:
        parts = ["discriminator_predictions", "dense_1", *parts[2:]]
    names: list[str] = []
    i = 0
    while i < len(parts):
        if parts[i] == "layer" and i + 1 < len(parts) and parts[i + 1].isdigit():
            names.append(f"layer_{parts[i + 1]}")
            i += 2
        else:
            names.append(parts[i])
            i += 1
    leaf, module = names[-1], names[:-1]
    if not module:
        return None
    transform = "copy"
    if leaf == "weight":
        ndim = ndim_of.get(key)
        if module[-1].endswith("_embeddings") and ndim == 2:
            path = module
        elif ndim == 2:
            path, transform = [*module, "kernel"], "transpose"
        elif ndim == 1:
            path = [*module, "gamma"]
        else:
            return None
    elif leaf == "bias":
        sibling = key[: -len("bias")] + "weight"
        path = [*module, "beta" if ndim_of.get(sibling) == 1 else "bias"]
    else:
        return None
    return "/".join(([scope] if scope else []) + path), transform


def canonical_to_hf(name: str, base_model_prefix: bool = True) -> tuple[str, str]:
    """(state-dict key, transform) for one canonical name: the inverse of `hf_to_canonical`."""
    if name == "generator_predictions/output_bias":
        return "generator_lm_head.bias", "copy"
    parts = name.split("/")
    prefix: list[str] = []
    if parts[0] in ("electra", "generator"):
        parts = parts[1:]
        prefix = ["electra"] if base_model_prefix else []
    if parts[:2] == ["discriminator_predictions", "dense_1"]:
        parts = ["discriminator_predictions", "dense_prediction", *parts[2:]]
    out: list[str] = []
    for part in parts:
        if part.startswith("layer_") and part[len("layer_"):].isdigit():
            out += ["layer", part[len("layer_"):]]
        else:
            out.append(part)
    leaf = out[-1]
    transform = "copy"
    if leaf == "kernel":
        out[-1], transform = "weight", "transpose"
    elif leaf == "gamma":
        out[-1] = "weight"
    elif leaf == "beta":
        out[-1] = "bias"
    elif leaf.endswith("_embeddings"):
        out.append("weight")
    elif leaf != "bias":
        raise CheckpointError(f"no Hugging Face name for {name}")
    return ".".join(prefix + out), transform


def bert_to_electra_key(key: str, architecture: str) -> tuple[str | None, str | None]:
    """(ELECTRA state-dict key, None) for a BERT key that maps, or (None, why it is ignored).

    Unknown keys come back as themselves, so the ELECTRA rule (and then the accounting)
    names them.
    """
    parts = key.split(".")
    if parts[-1] in ("gamma", "beta"):  # TF-converted BERT saves: LayerNorm.gamma / .beta
        parts[-1] = "weight" if parts[-1] == "gamma" else "bias"
    if parts[0] == "bert":
        parts = parts[1:]
    root = parts[0] if parts else ""
    if root in ("embeddings", "encoder"):
        return ".".join(["electra", *parts]), None
    if root == "pooler":
        return None, "BERT pooler (dense + tanh on [CLS]): ELECTRA has none"
    if parts[:2] == ["cls", "seq_relationship"]:
        return None, "BERT next-sentence-prediction head (not part of ELECTRA)"
    if parts[:3] == ["cls", "predictions", "transform"]:
        return ".".join(["generator_predictions", *parts[3:]]), None
    if parts == ["cls", "predictions", "bias"]:
        return "generator_lm_head.bias", None
    if root in ("classifier", "qa_outputs"):
        return None, (f"{architecture} task head: BERT's heads read its pooler, unlike ELECTRA's, so it is "
                      "not loaded (fine-tune a fresh head)")
    return ".".join(parts), None


# --------------------------------------------------------------------------- reading
class _WeightFiles:
    """Names, shapes and lazy loaders of the tensors in the HF weight file(s)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.shapes: dict[str, tuple[int, ...]] = {}
        self.file_of: dict[str, Path] = {}
        self._torch_state: dict[str, Any] | None = None
        if (directory / SAFETENSORS).is_file():
            self.kind = "safetensors"
            self._index_safetensors(directory / SAFETENSORS)
        elif (directory / SAFETENSORS_INDEX).is_file():
            self.kind = "safetensors"
            for file in sorted(set(self._weight_map(directory / SAFETENSORS_INDEX).values())):
                self._index_safetensors(directory / file)
        elif (directory / TORCH_BIN).is_file() or (directory / TORCH_BIN_INDEX).is_file():
            self.kind = "torch"
            self._load_torch()
        else:
            raise CheckpointError(
                f"{directory} has config.json but no weights: expected {SAFETENSORS} (or {TORCH_BIN})"
            )

    @staticmethod
    def _weight_map(index: Path) -> dict[str, str]:
        values = read_json(index, CheckpointError, require_object=True)
        if not isinstance(values.get("weight_map"), dict):
            raise CheckpointError(f"{index} has no weight_map")
        return values["weight_map"]

    def _index_safetensors(self, file: Path) -> None:
        from safetensors import safe_open

        if not file.is_file():
            raise CheckpointError(f"weight shard {file} is missing")
        try:
            with safe_open(str(file), framework="np") as handle:
                for key in handle.keys():  # noqa: SIM118 - safe_open has no __iter__
                    self.shapes[key] = tuple(int(d) for d in handle.get_slice(key).get_shape())
                    self.file_of[key] = file
        except Exception as err:  # noqa: BLE001 - safetensors raises its own error types
            raise CheckpointError(f"{file} is not a readable safetensors file: {err}") from None

    def _load_torch(self) -> None:
        if importlib.util.find_spec("torch") is None:
            raise CheckpointError(
                f"{self.directory} only has {TORCH_BIN}, which needs torch to read; install torch or save the "
                "model as safetensors (model.save_pretrained(dir, safe_serialization=True))"
            )
        import torch

        files = [self.directory / TORCH_BIN]
        if not files[0].is_file():
            shards = self._weight_map(self.directory / TORCH_BIN_INDEX).values()
            files = [self.directory / f for f in sorted(set(shards))]
        state: dict[str, Any] = {}
        for file in files:
            try:
                # weights_only: a pickle from the internet must not run code.
                state.update(torch.load(str(file), map_location="cpu", weights_only=True))
            except Exception as err:  # noqa: BLE001
                if isinstance(err, pickle.UnpicklingError) or "weights_only" in str(err):
                    # torch's own text is many lines and advises weights_only=False, i.e. running the code.
                    raise CheckpointError(
                        f"{file} is refused as unsafe: its pickle holds more than tensors and loading it could "
                        "run code; ask for (or convert a trusted copy to) model.safetensors") from None
                reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
                raise CheckpointError(f"{file} cannot be read with torch.load(weights_only=True): {reason}") from None
        self._torch_state = state
        for key, value in state.items():
            self.shapes[key] = tuple(int(d) for d in value.shape)

    def loader(self, key: str, transform: str):
        def load() -> np.ndarray:
            value = self._read(key)
            return np.ascontiguousarray(value.T) if transform == "transpose" else value

        return load

    def _read(self, key: str) -> np.ndarray:
        if self._torch_state is not None:
            return self._torch_state[key].detach().float().numpy()
        from safetensors import safe_open

        try:
            with safe_open(str(self.file_of[key]), framework="np") as handle:
                return np.asarray(handle.get_tensor(key), dtype=np.float32)
        except TypeError:  # bfloat16 has no numpy dtype: read through torch when it is there
            if importlib.util.find_spec("torch") is None:
                raise CheckpointError(f"{key} is stored as bfloat16, which needs torch to read") from None
            with safe_open(str(self.file_of[key]), framework="pt") as handle:
                return handle.get_tensor(key).float().numpy()


def detect_architecture(values: Mapping[str, Any], keys: list[str], directory: Path) -> str:
    """The HF class, from `architectures` in config.json, else from the key prefixes."""
    declared = [a for a in values.get("architectures") or [] if a.startswith("Electra")]
    if declared:
        arch = declared[0]
        if arch not in ARCHITECTURES:
            raise CheckpointError(f"{directory / CONFIG_FILE}: architecture {arch} is not supported; known: "
                                  f"{', '.join(ARCHITECTURES)}")
        return arch
    roots = {k.split(".")[0] for k in keys}
    if "discriminator_predictions" in roots:
        return PRETRAINING
    if roots & {"generator_predictions", "generator_lm_head"}:
        return MASKED_LM
    if "qa_outputs" in roots:
        return "ElectraForQuestionAnswering"
    if "sequence_summary" in roots:
        return "ElectraForMultipleChoice"
    if "classifier" in roots:
        dense = any(k.startswith("classifier.dense.") for k in keys)
        return "ElectraForSequenceClassification" if dense else "ElectraForTokenClassification"
    return BASE_MODEL


def detect_bert_architecture(values: Mapping[str, Any], keys: list[str], directory: Path) -> str:
    """The HF BERT class, from `architectures` in config.json, else from the key prefixes."""
    declared = [a for a in values.get("architectures") or [] if a.startswith("Bert")]
    if declared:
        if declared[0] not in BERT_ARCHITECTURES:
            raise CheckpointError(f"{directory / CONFIG_FILE}: architecture {declared[0]} is not supported; "
                                  f"known: {', '.join(BERT_ARCHITECTURES)}")
        return declared[0]
    stripped = {k[len("bert."):] if k.startswith("bert.") else k for k in keys}
    mlm = any(k.startswith("cls.predictions.") for k in stripped)
    nsp = any(k.startswith("cls.seq_relationship.") for k in stripped)
    if mlm:
        return "BertForPreTraining" if nsp else "BertForMaskedLM"
    if nsp:
        return "BertForNextSentencePrediction"
    if any(k.startswith("qa_outputs.") for k in stripped):
        return "BertForQuestionAnswering"
    if any(k.startswith("classifier.") for k in stripped):
        return "BertForSequenceClassification"
    return "BertModel"


def _read_bert(directory: Path, values: Mapping[str, Any], files: _WeightFiles):
    """(tensors, ignored, unmapped, architecture, has an MLM head) of a BERT checkpoint, in canonical names."""
    keys = sorted(files.shapes)
    architecture = detect_bert_architecture(values, keys, directory)
    ignored: dict[str, str] = {}
    renamed: dict[str, str] = {}  # ELECTRA key -> BERT key
    for key in keys:
        if key.split(".")[-1] in BUFFERS:
            ignored[key] = "position/type id buffer (not a weight)"
            continue
        electra_key, why = bert_to_electra_key(key, architecture)
        if electra_key is None:
            ignored[key] = why
        else:
            renamed[electra_key] = key
    ndims = {k: len(files.shapes[v]) for k, v in renamed.items()}
    has_mlm = any(k.startswith("generator_predictions.") or k == "generator_lm_head.bias" for k in renamed)
    tensors: dict[str, SourceTensor] = {}
    unmapped: list[str] = []
    for electra_key, key in renamed.items():
        if key in TIED_OUTPUTS:
            continue
        if key == "cls.predictions.decoder.bias":
            continue  # transformers ties it to cls.predictions.bias: checked below
        # The MLM encoder is both the discriminator's (default) and a full-size generator's.
        scopes = (False, True) if has_mlm and electra_key.startswith("electra.encoder.") else (False,)
        for generator in scopes:
            mapped = hf_to_canonical(electra_key, generator, ndims)
            if mapped is None:
                unmapped.append(key)
                break
            _add_tensor(tensors, files, key, *mapped)
    _check_decoder_bias(files, ignored)
    return tensors, ignored, unmapped, architecture, has_mlm


def _add_tensor(tensors: dict[str, SourceTensor], files: _WeightFiles, key: str, name: str, transform: str) -> None:
    shape = files.shapes[key]
    ours = tuple(reversed(shape)) if transform == "transpose" else shape
    tensors[name] = SourceTensor(
        key, ours, files.loader(key, transform), source_shape=shape,
        note="torch [out, in], transposed" if transform == "transpose" else "",
    )


def _check_decoder_bias(files: _WeightFiles, ignored: dict[str, str]) -> None:
    """BERT saves may hold `cls.predictions.decoder.bias` beside (tied to) `cls.predictions.bias`."""
    key = "cls.predictions.decoder.bias"
    if key not in files.shapes:
        return
    bias = "cls.predictions.bias"
    if bias not in files.shapes:
        raise CheckpointError(f"{files.directory}: {key} without cls.predictions.bias is not supported")
    if not np.array_equal(files.loader(key, "copy")(), files.loader(bias, "copy")()):
        raise CheckpointError(f"{files.directory}: {key} differs from {bias}; an untied MLM output bias is "
                              "not supported")
    ignored[key] = f"tied to {bias} (checked equal)"


def read_huggingface(path: str | Path, config: Any = None) -> Checkpoint:
    """Read an HF ELECTRA or BERT directory (any of the classes above) into canonical names."""
    directory = Path(path)
    if not directory.is_dir() or not (directory / CONFIG_FILE).is_file():
        raise CheckpointError(
            f"{directory} is not a Hugging Face model directory: expected {CONFIG_FILE} and {SAFETENSORS} "
            f"(or {TORCH_BIN}), as written by save_pretrained"
        )
    values = read_json(directory / CONFIG_FILE, CheckpointError, require_object=True)
    model_type = values.get("model_type")
    if model_type is not None and model_type not in ("electra", "bert"):
        raise CheckpointError(f"{directory / CONFIG_FILE} describes a {model_type!r} model, not ELECTRA or BERT")
    files = _WeightFiles(directory)
    if model_type == "bert":
        return _bert_checkpoint(directory, values, files, config)
    keys = sorted(files.shapes)
    architecture = detect_architecture(values, keys, directory)
    generator = architecture == MASKED_LM
    ndims = {k: len(s) for k, s in files.shapes.items()}

    tensors: dict[str, SourceTensor] = {}
    ignored: dict[str, str] = {}
    unmapped: list[str] = []
    for key in keys:
        if key.split(".")[-1] in BUFFERS:
            ignored[key] = "position/type id buffer (not a weight)"
            continue
        if key in TIED_OUTPUTS:
            continue  # checked against the word embeddings below
        mapped = hf_to_canonical(key, generator, ndims)
        if mapped is None:
            unmapped.append(key)
            continue
        _add_tensor(tensors, files, key, *mapped)
    _check_tied_output(files, tensors, ignored)

    hf_config = config_from_hf(values, str(directory / CONFIG_FILE), generator_fraction=1.0 if generator else None)
    if generator and values.get("hidden_act", "gelu") != "gelu":
        # HF's generator head always applies exact GELU; ours (like the official code) follows hidden_act.
        raise CheckpointError(
            f"{directory / CONFIG_FILE}: hidden_act {values['hidden_act']!r}: Hugging Face's generator head "
            "always uses exact GELU, keras-electra's follows hidden_act, so the MLM logits would differ"
        )
    explicit = parse_config(config) if config is not None else None
    checkpoint = Checkpoint(
        format="hf", path=directory, tensors=tensors, config=explicit or hf_config, ignored=ignored,
        unmapped=unmapped, architecture=architecture, raw_config=values,
        vocabulary=_vocabulary(directory),
        generator_config=(explicit or hf_config) if generator else None,
    )
    checkpoint.lower_case, checkpoint.strip_accents = _casing(directory)
    check_vocabulary(checkpoint)
    return checkpoint


def _bert_checkpoint(directory: Path, values: Mapping[str, Any], files: _WeightFiles, config: Any) -> Checkpoint:
    tensors, ignored, unmapped, architecture, has_mlm = _read_bert(directory, values, files)
    _check_tied_output(files, tensors, ignored)
    source = str(directory / CONFIG_FILE)
    if "embedding_size" in values and values["embedding_size"] != values.get("hidden_size"):
        raise CheckpointError(f"{source}: a BERT config has no embedding_size different from hidden_size")
    own = config_from_hf(values, source)
    explicit = parse_config(config) if config is not None else None
    checkpoint = Checkpoint(
        format="hf", path=directory, tensors=tensors, config=explicit or own, ignored=ignored,
        unmapped=unmapped, architecture=architecture, raw_config=dict(values),
        vocabulary=_vocabulary(directory),
        # BERT's MLM head + encoder is a full-size generator (generator_fraction 1), loaded on request.
        generator_config=(explicit or own).replace(generator_fraction=1.0) if has_mlm else None,
    )
    checkpoint.lower_case, checkpoint.strip_accents = _casing(directory)
    check_vocabulary(checkpoint)
    return checkpoint


def _check_tied_output(files: _WeightFiles, tensors: dict[str, SourceTensor], ignored: dict[str, str]) -> None:
    """Saves may include the tied MLM output matrix; it must equal the word embeddings."""
    for key in TIED_OUTPUTS:
        if key not in files.shapes:
            continue
        words = tensors.get("electra/embeddings/word_embeddings")
        output = files.loader(key, "copy")()
        if words is None or output.shape != words.shape or not np.array_equal(output, words.load()):
            raise CheckpointError(
                f"{key} differs from the word embeddings: untied MLM output embeddings are not supported "
                "(ELECTRA ties them)"
            )
        ignored[key] = "tied to the word embeddings (checked equal)"


def _vocabulary(directory: Path) -> list[str] | None:
    vocab = discover_vocabulary(directory)
    if vocab is not None:
        return vocab
    fast = directory / "tokenizer.json"  # a fast-tokenizer file alone: its WordPiece table
    if fast.is_file():
        model = read_json(fast, CheckpointError, require_object=True).get("model") or {}
        table = model.get("vocab")
        if model.get("type") == "WordPiece" and isinstance(table, dict):
            from keras_electra.data.tokenizer import validate_vocabulary

            return validate_vocabulary([t for t, _ in sorted(table.items(), key=lambda kv: kv[1])], str(fast))
    return None


def _casing(directory: Path) -> tuple[bool, bool | None]:
    """`do_lower_case` / `strip_accents` from tokenizer_config.json; ELECTRA's default is uncased."""
    config = directory / "tokenizer_config.json"
    if config.is_file():
        values = read_json(config, CheckpointError, require_object=True)
        if "do_lower_case" in values:
            return bool(values["do_lower_case"]), values.get("strip_accents")
    fast = directory / "tokenizer.json"
    if fast.is_file():
        normalizer = read_json(fast, CheckpointError, require_object=True).get("normalizer") or {}
        if normalizer.get("type") == "BertNormalizer":
            return bool(normalizer.get("lowercase", True)), normalizer.get("strip_accents")
    return True, None


# --------------------------------------------------------------------------- writing
def hf_config_dict(backbone, architecture: str, extra: Mapping[str, Any] | None = None,
                   pad_token_id: int = 0) -> dict[str, Any]:
    """config.json for a backbone's sizes, in HF's field names."""
    if backbone.hidden_act not in OUR_TO_HF_ACTIVATION:
        raise CheckpointError(f"hidden_act {backbone.hidden_act!r} has no Hugging Face equivalent")
    values = {
        "architectures": [architecture],
        "model_type": "electra",
        "vocab_size": backbone.vocab_size,
        "embedding_size": backbone.embedding_size,
        "hidden_size": backbone.hidden_size,
        "num_hidden_layers": backbone.num_layers,
        "num_attention_heads": backbone.num_heads,
        "intermediate_size": backbone.intermediate_size,
        "hidden_act": OUR_TO_HF_ACTIVATION[backbone.hidden_act],
        "hidden_dropout_prob": backbone.hidden_dropout,
        "attention_probs_dropout_prob": backbone.attention_dropout,
        "max_position_embeddings": backbone.max_position_embeddings,
        "type_vocab_size": backbone.type_vocab_size,
        "initializer_range": backbone.initializer_range,
        "layer_norm_eps": backbone.layer_norm_eps,
        "position_embedding_type": "absolute",
        "pad_token_id": pad_token_id,
        "summary_type": "first",
        "summary_use_proj": True,
        "summary_activation": "gelu",
        "summary_last_dropout": 0.1,
        "tie_word_embeddings": True,
        "dtype": "float32",
    }
    values.update(extra or {})
    return values


def _architecture_of(model) -> str:
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.models.discriminator import ElectraDiscriminator
    from keras_electra.models.generator import ElectraGenerator

    if isinstance(model, ElectraDiscriminator):
        return PRETRAINING
    if isinstance(model, ElectraGenerator):
        return MASKED_LM
    if isinstance(model, ElectraBackbone):
        return BASE_MODEL
    raise CheckpointError(
        f"cannot tell the Hugging Face class of {type(model).__name__}; pass architecture=..."
    )


def save_huggingface(
    model,
    directory: str | Path,
    tokenizer=None,
    architecture: str | None = None,
    extra_config: Mapping[str, Any] | None = None,
) -> Path:
    """Write `model` as a Hugging Face directory: config.json + model.safetensors (+ tokenizer).

    `ElectraDiscriminator` → `ElectraForPreTraining`, `ElectraGenerator` →
    `ElectraForMaskedLM`, `ElectraBackbone` → `ElectraModel`; task models pass their
    `architecture` and `extra_config` (`id2label`, ...). The directory is written
    whole, atomically; an existing directory is replaced only if it already holds a
    config.json (a previous save), never an unrelated folder.
    """
    from safetensors.numpy import save_file

    from keras_electra.models.backbone import ElectraBackbone

    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()) and not (directory / CONFIG_FILE).is_file():
        raise CheckpointError(f"{directory} exists and is not a model directory; choose an empty or new directory")
    backbone = model if isinstance(model, ElectraBackbone) else getattr(model, "backbone", None)
    if getattr(backbone, "prefix_length", None) or getattr(backbone, "adapter_size", None):
        method = "prefix tuning" if getattr(backbone, "prefix_length", None) else "adapters"
        raise CheckpointError(f"a model fine-tuned with {method} has no Hugging Face ELECTRA equivalent (its extra "
                              "weights would be dropped); export it to SavedModel/TFLite/ONNX instead")
    architecture = architecture or _architecture_of(model)
    if getattr(model, "task_type", None) == "question_answering" and getattr(model, "head", None) == "electra":
        raise CheckpointError("the official ELECTRA QA head (head='electra') has no Hugging Face class; "
                              "fine-tune with head='huggingface' to save an ElectraForQuestionAnswering")
    backbone = model if isinstance(model, ElectraBackbone) else model.backbone
    weights = model.canonical_weights()
    if isinstance(model, ElectraBackbone):
        weights = {f"electra/{k}": v for k, v in weights.items()}
    if architecture == MASKED_LM and backbone.hidden_act != "gelu":
        raise CheckpointError(
            f"hidden_act {backbone.hidden_act!r}: Hugging Face's generator head always uses exact GELU, "
            "so the saved generator would not give the same MLM logits"
        )
    tensors: dict[str, np.ndarray] = {}
    for name, variable in weights.items():
        key, transform = canonical_to_hf(name, base_model_prefix=architecture != BASE_MODEL)
        value = np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable, dtype=np.float32)
        tensors[key] = np.ascontiguousarray(value.T if transform == "transpose" else value)
    pad_id = tokenizer.pad_id if tokenizer is not None else 0
    config = hf_config_dict(backbone, architecture, extra_config, pad_token_id=pad_id)
    with atomic_directory(directory) as tmp:
        save_file(tensors, str(tmp / SAFETENSORS), metadata={"format": "pt"})
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
        if tokenizer is not None:
            write_hf_tokenizer(tokenizer, tmp, backbone.max_position_embeddings)
    return directory


def write_hf_tokenizer(tokenizer, directory: Path, model_max_length: int = 512) -> None:
    """vocab.txt + tokenizer_config.json + special_tokens_map.json, as BERT/ELECTRA tokenizers read them.

    No `tokenizer.json` is written: in an HF directory that name means the fast-tokenizer
    serialisation, and transformers rebuilds it from vocab.txt.
    """
    (directory / "vocab.txt").write_text("\n".join(tokenizer.vocabulary) + "\n", encoding="utf-8")
    specials = {"unk_token": "[UNK]", "sep_token": "[SEP]", "pad_token": "[PAD]", "cls_token": "[CLS]",
                "mask_token": "[MASK]"}
    config = {
        "tokenizer_class": "ElectraTokenizer",
        "do_lower_case": tokenizer.lower_case,
        "strip_accents": None if tokenizer.strip_accents == tokenizer.lower_case else tokenizer.strip_accents,
        "tokenize_chinese_chars": True,
        "model_max_length": model_max_length,
        **specials,
    }
    (directory / "tokenizer_config.json").write_text(json.dumps(config, indent=2) + "\n")
    (directory / "special_tokens_map.json").write_text(json.dumps(specials, indent=2) + "\n")


__all__ = [
    "read_huggingface", "save_huggingface", "hf_to_canonical", "canonical_to_hf", "is_hf_directory",
    "HF_ACTIVATIONS", "bert_to_electra_key", "BERT_ARCHITECTURES",
]
