"""Google's original TF1 checkpoints (`model.ckpt-N.index` + data) from the official code.

The official variable names *are* our canonical names (`electra/...`, `generator/...`,
`generator_predictions/...`, `discriminator_predictions/...`), so the mapping table is
the identity, plus what is ignored on purpose:

- `global_step` (the step counter) and every `<name>/adam_m`, `<name>/adam_v`
  (slots of the official AdamWeightDecayOptimizer): training state, not weights.

Everything else must land in the model or is named in the error: Electric's
`generator_ltr/`, `generator_rtl/`, `cloze_predictions/`, fine-tuning `task_specific/`,
an untied `generator/embeddings/` that the requested model lacks.

The network's sizes are read from the checkpoint's shapes; a config (ours, the
official hparams JSON, or a BERT-style JSON such as Chinese-ELECTRA's) supplies what
shapes cannot: attention heads, activation, dropout. Without one, heads follow the
official rule `max(1, hidden // 64)`, which holds for every released model.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from keras_electra.config import ElectraConfig
from keras_electra.convert.common import (
    Checkpoint,
    SourceTensor,
    check_vocabulary,
    discover_vocabulary,
    generator_heads_rule,
    parse_config,
    with_generator_sizes,
)
from keras_electra.errors import CheckpointError
from keras_electra.utils.io import read_json

IGNORED_SUFFIXES = {"/adam_m": "Adam optimizer slot", "/adam_v": "Adam optimizer slot"}
IGNORED_NAMES = {"global_step": "training step counter"}
# Config files looked for beside the checkpoint, in order (Chinese-ELECTRA ships
# `discriminator.json` + `generator.json`, or `*_discriminator_config.json` + `*_generator_config.json`).
HPARAMS_FILES = ("hparams.json", "config.json", "discriminator.json")
GENERATOR_FILES = ("generator.json",)
_LAYER = re.compile(r"^(electra|generator)/encoder/layer_(\d+)/")


def is_tf1_checkpoint(path: str | Path) -> bool:
    try:
        resolve_prefix(path)
    except CheckpointError:
        return False
    return True


def resolve_prefix(path: str | Path) -> str:
    """`model.ckpt-N`, its `.index`/`.data-*` file, or a directory → the checkpoint prefix."""
    path = Path(path)
    text = str(path)
    if path.is_dir():
        state = path / "checkpoint"
        if state.is_file():
            match = re.search(r'^model_checkpoint_path:\s*"(.*)"', state.read_text(), re.M)
            if match:
                candidate = Path(match.group(1))
                candidate = candidate if candidate.is_absolute() else path / candidate
                if Path(f"{candidate}.index").is_file():
                    return str(candidate)
                # Released zips keep the trainer's absolute path: fall back to the file name.
                if Path(f"{path / candidate.name}.index").is_file():
                    return str(path / candidate.name)
        indexes = sorted(path.glob("*.index"))
        if len(indexes) == 1:
            return str(indexes[0])[: -len(".index")]
        if len(indexes) > 1:
            names = ", ".join(p.name[: -len(".index")] for p in indexes[:5])
            raise CheckpointError(f"{path} holds several TF1 checkpoints ({names}); pass one prefix, e.g. {path}/"
                                  f"{indexes[-1].name[: -len('.index')]}")
        raise CheckpointError(
            f"{path} is not a TF1 checkpoint: expected model.ckpt-N.index + .data-* files (or a `checkpoint` file)"
        )
    if text.endswith(".index"):
        text = text[: -len(".index")]
    text = re.sub(r"\.data-\d+-of-\d+$", "", text)
    if Path(f"{text}.index").is_file():
        return text
    raise CheckpointError(f"{path} is not a TF1 checkpoint: {text}.index not found")


def read_tf1(
    path: str | Path,
    config: Any = None,
    generator_config: Any = None,
) -> Checkpoint:
    """Read a TF1 name-based checkpoint into canonical names; sizes come from its shapes."""
    import tensorflow as tf

    prefix = resolve_prefix(path)
    try:
        reader = tf.train.load_checkpoint(prefix)
    except Exception as err:  # noqa: BLE001 - TF raises a zoo of errors for a bad file
        raise CheckpointError(f"{prefix} cannot be read as a TF checkpoint: {str(err).splitlines()[0]}") from None
    shapes = reader.get_variable_to_shape_map()
    if "_CHECKPOINTABLE_OBJECT_GRAPH" in shapes or any(k.endswith("/.ATTRIBUTES/VARIABLE_VALUE") for k in shapes):
        raise CheckpointError(
            f"{prefix} is an object-based TF2 checkpoint (Keras / Model Garden), not the official TF1 "
            "name-based format (electra/encoder/layer_0/...); convert it to Hugging Face format first"
        )

    tensors: dict[str, SourceTensor] = {}
    ignored: dict[str, str] = {}
    for name, shape in shapes.items():
        reason = IGNORED_NAMES.get(name) or next(
            (why for suffix, why in IGNORED_SUFFIXES.items() if name.endswith(suffix)), None
        )
        if reason:
            ignored[name] = reason
            continue
        tensors[name] = SourceTensor(name, tuple(int(d) for d in shape), _loader(reader, name, prefix))

    directory = Path(prefix).parent
    checkpoint = Checkpoint(
        format="tf1", path=Path(prefix), tensors=tensors, config=None, ignored=ignored,
        architecture="ElectraPretraining", vocabulary=discover_vocabulary(directory),
    )
    base, raw, source = _base_config(directory, config)
    checkpoint.raw_config = raw
    if raw.get("do_lower_case") is not None:
        checkpoint.lower_case = bool(raw["do_lower_case"])
    if generator_config is None:
        generator_config = _find_generator_config(directory)
    checkpoint.config, checkpoint.generator_config = _resolve_config(
        checkpoint, base, source, _generator_base(generator_config)
    )
    check_vocabulary(checkpoint)
    return checkpoint


def _loader(reader, name: str, prefix: str):
    def load():
        import tensorflow as tf

        try:
            return reader.get_tensor(name)
        except (IndexError, ValueError, tf.errors.OpError) as err:  # a truncated .data file: "Read less bytes"
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise CheckpointError(f"{prefix}: cannot read {name} ({reason}); the checkpoint's .data file is "
                                  "truncated or damaged") from None

    return load


# --------------------------------------------------------------------------- config
def _base_config(directory: Path, config: Any) -> tuple[ElectraConfig | None, dict, str]:
    """The explicit config, else a known config file beside the checkpoint, else None."""
    if config is not None:
        raw = _raw(config)
        return parse_config(config), raw, "the given config"
    for name in HPARAMS_FILES:
        path = directory / name
        if path.is_file():
            raw = read_json(path, CheckpointError, require_object=True)
            return parse_config(raw, source=str(path)), raw, str(path)
    found = sorted(directory.glob("*discriminator_config.json"))  # Chinese-ELECTRA's layout
    if len(found) == 1:
        raw = read_json(found[0], CheckpointError, require_object=True)
        return parse_config(raw, source=str(found[0])), raw, str(found[0])
    return None, {}, ""


def _find_generator_config(directory: Path) -> Path | None:
    found = [directory / n for n in GENERATOR_FILES if (directory / n).is_file()]
    found += sorted(directory.glob("*generator_config.json"))
    return found[0] if len(found) == 1 else None


def _raw(config: Any) -> dict:
    if isinstance(config, str | Path):
        return read_json(Path(config), CheckpointError, require_object=True)
    if isinstance(config, dict):
        return dict(config)
    return {}


def _generator_base(generator_config: Any) -> ElectraConfig | None:
    return None if generator_config is None else parse_config(generator_config)


def _shape_of(checkpoint: Checkpoint, name: str) -> tuple[int, ...]:
    if name not in checkpoint.tensors:
        raise CheckpointError(f"{checkpoint.path}: {name} not found; is this an ELECTRA pretraining checkpoint?")
    return checkpoint.tensors[name].shape


def _num_layers(checkpoint: Checkpoint, scope: str) -> int:
    layers = {int(m.group(2)) for n in checkpoint.tensors if (m := _LAYER.match(n)) and m.group(1) == scope}
    if layers != set(range(len(layers))):
        raise CheckpointError(f"{checkpoint.path}: {scope}/encoder layers are not numbered 0..N-1: {sorted(layers)}")
    return len(layers)


def _encoder_sizes(checkpoint: Checkpoint, scope: str) -> dict[str, int]:
    layer = f"{scope}/encoder/layer_0"
    hidden = _shape_of(checkpoint, f"{layer}/attention/self/query/kernel")[1]
    return {
        "hidden_size": hidden,
        "intermediate_size": _shape_of(checkpoint, f"{layer}/intermediate/dense/kernel")[1],
        "num_layers": _num_layers(checkpoint, scope),
    }


def _resolve_config(
    checkpoint: Checkpoint, base: ElectraConfig | None, source: str, generator_base: ElectraConfig | None
) -> tuple[ElectraConfig, ElectraConfig | None]:
    """Sizes from the shapes; the config must agree with them, and adds what shapes cannot say."""
    vocab, embedding = _shape_of(checkpoint, "electra/embeddings/word_embeddings")
    sizes: dict[str, Any] = {
        "vocab_size": vocab,
        "embedding_size": embedding,
        "max_position_embeddings": _shape_of(checkpoint, "electra/embeddings/position_embeddings")[0],
        "type_vocab_size": _shape_of(checkpoint, "electra/embeddings/token_type_embeddings")[0],
    }
    if checkpoint.has_discriminator_backbone:
        sizes.update(_encoder_sizes(checkpoint, "electra"))
    elif checkpoint.has_generator_backbone:  # a generator-only TF1 checkpoint
        sizes.update(_encoder_sizes(checkpoint, "generator"))
    else:
        raise CheckpointError(f"{checkpoint.path}: no electra/encoder/ or generator/encoder/ variables found")

    if base is None:
        hidden = sizes["hidden_size"]
        heads = max(1, hidden // 64)
        config = ElectraConfig(num_heads=heads, **sizes)
        checkpoint.notes.append(
            f"no config given or found beside the checkpoint: sizes read from its shapes, "
            f"{heads} attention heads by the official rule max(1, hidden // 64); pass --config to override"
        )
    else:
        witness = {
            "vocab_size": "electra/embeddings/word_embeddings",
            "embedding_size": "electra/embeddings/word_embeddings",
            "max_position_embeddings": "electra/embeddings/position_embeddings",
            "type_vocab_size": "electra/embeddings/token_type_embeddings",
            "hidden_size": "electra/encoder/layer_0/attention/self/query/kernel",
            "intermediate_size": "electra/encoder/layer_0/intermediate/dense/kernel",
            "num_layers": "electra/encoder/layer_*",
        }
        for field, value in sizes.items():
            if getattr(base, field) != value:
                name = witness[field]
                shape = checkpoint.tensors[name].shape if name in checkpoint.tensors else f"{value} layers"
                raise CheckpointError(
                    f"{source} says {field}={getattr(base, field)} but the checkpoint has {value} "
                    f"({name} is {list(shape) if not isinstance(shape, str) else shape})"
                )
        config = base

    if not checkpoint.has_discriminator_backbone:  # generator only: its config describes itself
        if checkpoint.has("generator/embeddings/"):
            raise CheckpointError(f"{checkpoint.path}: untied generator embeddings are not supported")
        config = config.replace(generator_fraction=1.0, generator_hidden_size=None,
                                generator_num_heads=None, generator_intermediate_size=None)
        return config, config
    if not checkpoint.has_generator_backbone:
        return config, None

    if checkpoint.has("generator/embeddings/"):
        checkpoint.notes.append("the generator has untied embeddings (generator/embeddings/*); only the "
                                "discriminator can be loaded")
        return config, None
    gen = _encoder_sizes(checkpoint, "generator")
    if generator_base is not None:
        for field in ("hidden_size", "intermediate_size", "num_layers"):
            if getattr(generator_base, field) != gen[field]:
                raise CheckpointError(
                    f"the generator config says {field}={getattr(generator_base, field)} but the checkpoint's "
                    f"generator has {gen[field]}"
                )
        heads = generator_base.num_heads
    else:
        derived_hidden, derived_heads, _ = config._generator_sizes()
        if derived_hidden == gen["hidden_size"]:
            heads = derived_heads
        else:
            heads = generator_heads_rule(config, gen["hidden_size"])
            checkpoint.notes.append(
                f"generator hidden size {gen['hidden_size']} read from the checkpoint (the config's rule gives "
                f"{derived_hidden}); {heads} generator heads"
            )
    generator_only = config.replace(
        hidden_size=gen["hidden_size"], num_heads=heads, intermediate_size=gen["intermediate_size"],
        num_layers=gen["num_layers"], generator_fraction=1.0, generator_hidden_size=None,
        generator_num_heads=None, generator_intermediate_size=None,
    )
    if gen["num_layers"] != config.num_layers:
        checkpoint.notes.append(
            f"the generator has {gen['num_layers']} layers and the discriminator {config.num_layers}: they load "
            "separately but cannot form one ElectraPretrainer"
        )
        return config, generator_only
    return with_generator_sizes(config, gen["hidden_size"], heads, gen["intermediate_size"]), generator_only


__all__ = ["read_tf1", "resolve_prefix", "is_tf1_checkpoint"]
