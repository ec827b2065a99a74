"""Loading released ELECTRA checkpoints into keras-electra models, whatever their format.

    from keras_electra.convert import from_pretrained, load_pretraining_pair, save_huggingface

    disc = from_pretrained("electra_small/")                      # TF1: the discriminator
    gen, disc = from_pretrained("electra_small/", part="both")    # the pair, embeddings shared
    backbone = from_pretrained("hf/electra-base-discriminator", part="backbone")
    save_huggingface(disc, "out/")                                # back to transformers

Formats are detected from the files (`detect_format`); name one to be told when a path
is not what you meant. Every load accounts for every variable (see `common.assign_weights`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.config import ElectraConfig
from keras_electra.convert.common import Checkpoint, LoadReport, assign_weights, part_of, with_generator_sizes
from keras_electra.convert.huggingface import (
    BASE_MODEL,
    MASKED_LM,
    PRETRAINING,
    TASK_ARCHITECTURES,
    is_hf_directory,
    read_huggingface,
    save_huggingface,
)
from keras_electra.convert.keras_hub import is_keras_hub_preset, read_keras_hub
from keras_electra.convert.resolve import resolve_source
from keras_electra.convert.saved import MODEL_FILE, REPORT_FILE, is_saved_directory, read_saved
from keras_electra.convert.tf1 import is_tf1_checkpoint, read_tf1
from keras_electra.errors import CheckpointError
from keras_electra.utils.io import atomic_directory, output_lock, write_json

FORMATS = ("tf1", "hf", "keras-hub", "keras-electra")
_ALIASES = {"huggingface": "hf", "keras_hub": "keras-hub", "kerashub": "keras-hub", "keras_electra": "keras-electra"}
PARTS = ("auto", "discriminator", "generator", "both", "backbone")
EXPECTED = {
    "tf1": "a TF1 checkpoint (model.ckpt-N.index + .data-* files, or a directory with a `checkpoint` file)",
    "hf": "a Hugging Face directory (config.json + model.safetensors, or pytorch_model.bin)",
    "keras-hub": "a keras-hub preset directory (config.json naming keras_hub>ElectraBackbone + model.weights.h5)",
    "keras-electra": f"a keras-electra model directory ({MODEL_FILE} + config.json)",
}
KERAS_HUB_HEADS = (
    "keras-hub presets carry no generator (MLM) head and no discriminator (RTD) head, only the encoder; "
    "load part='backbone'"
)
EMBEDDING_NAMES = tuple(
    f"electra/embeddings/{n}"
    for n in ("word_embeddings", "position_embeddings", "token_type_embeddings", "LayerNorm/gamma", "LayerNorm/beta")
)
Source = str | Path | Checkpoint


# ---------------------------------------------------------------------------- reading
def normalise_format(format: str | None) -> str | None:
    if format in (None, "auto"):
        return None
    name = _ALIASES.get(format, format)
    if name not in FORMATS:
        raise CheckpointError(f"unknown checkpoint format {format!r}; choose from {', '.join(FORMATS)}")
    return name


def detect_format(path: str | Path) -> str:
    """"tf1", "hf", "keras-hub" or "keras-electra", from the files at `path`."""
    path = Path(path)
    if path.is_file() and path.suffix == ".keras":
        return "keras-electra"
    if path.is_dir():
        if is_saved_directory(path):
            return "keras-electra"
        if is_keras_hub_preset(path):
            return "keras-hub"
        if is_hf_directory(path):
            return "hf"
    if is_tf1_checkpoint(path):
        return "tf1"
    if path.is_dir() and (path / "config.json").is_file():
        return "hf"  # the HF reader names what is missing
    if not path.exists() and not Path(f"{path}.index").exists():
        raise CheckpointError(f"{path} does not exist")
    raise CheckpointError(f"{path} is not a recognised checkpoint: expected " + "; or ".join(EXPECTED.values()))


OUTPUT_PARTS = ("discriminator", "backbone")  # what a convert/pretrain output directory offers, in order


def read_checkpoint(
    source: Source,
    format: str | None = None,
    config: Any = None,
    generator_config: Any = None,
) -> Checkpoint:
    """Read any supported checkpoint into canonical names (weights load lazily where the format allows).

    The one entry point for every path the package takes as a model: `convert`,
    `from_pretrained`, `finetune --init`, `evaluate --model` and `pretrain --init` all
    come here, so each of them reads a TF1 checkpoint, a Hugging Face directory (ELECTRA
    or BERT), a keras-hub preset or a keras-electra model directory alike. A
    `convert`/`pretrain` output directory stands for its `discriminator/` (else
    `backbone/`) part; a `.keras` file for the model in it.
    """
    if isinstance(source, Checkpoint):
        return source
    path = _model_location(Path(resolve_source(source)))  # a name (HF id, preset, TF1 release) -> a local path
    wanted = normalise_format(format)
    if not path.exists() and not Path(f"{path}.index").exists():
        raise CheckpointError(f"{path} does not exist")
    try:
        detected = detect_format(path)
    except CheckpointError:
        if wanted is None:
            raise
        detected = None
    if wanted is not None and detected is not None and detected != wanted:
        raise CheckpointError(
            f"{path} is not {EXPECTED[wanted]}; it looks like {EXPECTED[detected]} (use --from {detected})"
        )
    fmt = wanted or detected
    if fmt == "tf1":
        return read_tf1(path, config, generator_config)
    if fmt == "hf":
        return read_huggingface(path, config)
    if fmt == "keras-hub":
        return read_keras_hub(path, config)
    return read_saved(path, config)


def _model_location(path: Path) -> Path:
    """`path`, or the part of a convert/pretrain output directory that a single model is read from."""
    if path.is_file() and path.suffix == ".keras":
        return path
    if path.is_dir() and not is_saved_directory(path) and not (path / "config.json").is_file():
        for part in OUTPUT_PARTS:
            if is_saved_directory(path / part):
                return path / part
    return path


def tokenizer_from_checkpoint(checkpoint: Checkpoint):
    """The checkpoint's `ElectraTokenizer` (vocab.txt + casing from its config), or None without a vocab."""
    if checkpoint.vocabulary is None:
        return None
    from keras_electra.data.tokenizer import build_tokenizer

    return build_tokenizer(checkpoint.vocabulary, checkpoint.lower_case, checkpoint.strip_accents)


# ------------------------------------------------------------------------------ parts
def _is_task(checkpoint: Checkpoint) -> bool:
    return checkpoint.architecture in TASK_ARCHITECTURES or any(
        part_of(name) == "task_head" for name in checkpoint.tensors
    )


def is_bert(checkpoint: Checkpoint) -> bool:
    return checkpoint.format == "hf" and checkpoint.raw_config.get("model_type") == "bert"


def auto_part(checkpoint: Checkpoint) -> str:
    """What a checkpoint holds: the discriminator when it has one, else the generator, else the backbone.

    A BERT checkpoint is a discriminator backbone, its MLM head (a generator) only on request.
    """
    if checkpoint.has_discriminator_head:
        return "discriminator"
    if is_bert(checkpoint):
        return "backbone"
    if checkpoint.has_generator_head and checkpoint.has_generator_backbone:
        return "generator"
    if _is_task(checkpoint):
        raise CheckpointError(
            f"{checkpoint.path} is a fine-tuned {checkpoint.architecture or 'task'} checkpoint: load it with the "
            "task model's from_pretrained, or pass part='backbone'"
        )
    return "backbone"


def _require(checkpoint: Checkpoint, part: str) -> None:
    where = checkpoint.path
    if part in ("discriminator", "both") and not (
        checkpoint.has_discriminator_backbone and checkpoint.has_discriminator_head
    ):
        if checkpoint.format == "keras-hub":
            raise CheckpointError(f"{where}: {KERAS_HUB_HEADS}")
        if checkpoint.architecture == MASKED_LM:
            raise CheckpointError(
                f"{where} is a generator (ElectraForMaskedLM), not a discriminator; use part='generator'"
            )
        if is_bert(checkpoint):
            raise CheckpointError(
                f"{where} is a BERT checkpoint ({checkpoint.architecture}): it has no replaced-token-detection "
                "head; use part='backbone' (or part='generator' for a BERT MLM head)"
            )
        if checkpoint.architecture == BASE_MODEL:
            raise CheckpointError(
                f"{where} is a Hugging Face ElectraModel: it has no RTD head (discriminator_predictions); "
                "use part='backbone', or the ElectraForPreTraining checkpoint"
            )
        raise CheckpointError(f"{where} holds no discriminator (electra/encoder + discriminator_predictions)")
    if part in ("generator", "both"):
        if checkpoint.has("generator/embeddings/"):
            raise CheckpointError(f"{where}: untied generator embeddings (generator/embeddings/*) are not supported")
        if not (checkpoint.has_generator_backbone and checkpoint.has_generator_head):
            if checkpoint.format == "keras-hub":
                raise CheckpointError(f"{where}: {KERAS_HUB_HEADS}")
            if is_bert(checkpoint):
                raise CheckpointError(
                    f"{where} is a BERT {checkpoint.architecture} without an MLM head (cls.predictions), so it "
                    "holds no generator; load part='backbone'"
                )
            if checkpoint.architecture == PRETRAINING:
                raise CheckpointError(
                    f"{where} is a discriminator (ElectraForPreTraining); Hugging Face keeps the generator in a "
                    "separate checkpoint (e.g. google/electra-small-generator): pass it as generator_source "
                    "(CLI: --generator DIR)"
                )
            raise CheckpointError(f"{where} holds no generator (generator/encoder + generator_predictions)")
    if part == "backbone" and not (checkpoint.has_discriminator_backbone or checkpoint.has_generator_backbone):
        raise CheckpointError(f"{where} holds no ELECTRA encoder")


def _same_generator(a: ElectraConfig, b: ElectraConfig) -> bool:
    keys = ("hidden_size", "num_heads", "intermediate_size", "num_layers")
    return all(getattr(a, k) == getattr(b, k) for k in keys)


def generator_part_config(checkpoint: Checkpoint) -> ElectraConfig:
    """A config whose `generator_config()` is the checkpoint's generator (the pair's config when it fits)."""
    own = checkpoint.generator_config
    if checkpoint.config is not None and (own is None or _same_generator(checkpoint.config.generator_config(), own)):
        return checkpoint.config
    if own is None:
        raise CheckpointError(f"{checkpoint.path}: the generator's config is unknown")
    return own


# ----------------------------------------------------------------------------- models
def _load_part(part: str, build, source: Source, config: Any, allow_unused: Sequence[str],
               allow_missing: Sequence[str], format: str | None, return_report: bool):
    """Read the checkpoint, check it holds `part`, build the model (`build(checkpoint)` returns the
    model and its target variables by checkpoint name) and fill every target."""
    checkpoint = read_checkpoint(source, format, config)
    _require(checkpoint, part)
    model, targets = build(checkpoint)
    report = assign_weights(targets, checkpoint, allow_unused, allow_missing)
    return (model, report) if return_report else model


def load_discriminator(source: Source, config: Any = None, allow_unused: Sequence[str] = (),
                       allow_missing: Sequence[str] = (), format: str | None = None, return_report: bool = False):
    """An `ElectraDiscriminator` (backbone + RTD head) from any format holding one."""
    from keras_electra.models.discriminator import ElectraDiscriminator

    def build(checkpoint):
        model = ElectraDiscriminator.from_electra_config(checkpoint.config, name="discriminator")
        return model, model.canonical_weights()

    return _load_part("discriminator", build, source, config, allow_unused, allow_missing, format, return_report)


def load_generator(source: Source, config: Any = None, allow_unused: Sequence[str] = (),
                   allow_missing: Sequence[str] = (), format: str | None = None, return_report: bool = False):
    """An `ElectraGenerator` (backbone + MLM head tied to the word embeddings)."""
    from keras_electra.models.generator import ElectraGenerator

    source = generator_location(source)

    def build(checkpoint):
        model = ElectraGenerator.from_electra_config(generator_part_config(checkpoint), name="generator")
        return model, model.canonical_weights()

    return _load_part("generator", build, source, config, allow_unused, allow_missing, format, return_report)


def generator_location(source: Source) -> Source:
    """The `generator/` part of a convert/pretrain output directory (which otherwise stands for its
    discriminator, see `_model_location`); any other source as it is."""
    if isinstance(source, Checkpoint):
        return source
    path = Path(source)
    if (path.is_dir() and not is_saved_directory(path) and not (path / "config.json").is_file()
            and is_saved_directory(path / "generator")):
        return path / "generator"
    return source


def load_backbone(source: Source, config: Any = None, allow_unused: Sequence[str] = (),
                  allow_missing: Sequence[str] = (), format: str | None = None, return_report: bool = False):
    """The encoder alone: the discriminator's when the checkpoint has one, else the generator's."""
    from keras_electra.models.backbone import ElectraBackbone

    def build(checkpoint):
        if checkpoint.has_discriminator_backbone:
            model = ElectraBackbone.from_electra_config(checkpoint.config, name="backbone")
            return model, {f"electra/{k}": v for k, v in model.canonical_weights().items()}
        model = ElectraBackbone.from_electra_config(generator_part_config(checkpoint).generator_config(),
                                                    name="backbone")
        # The generator shares the discriminator's embeddings (electra/embeddings/*).
        return model, {("electra/" if k.startswith("embeddings/") else "generator/") + k: v
                       for k, v in model.canonical_weights().items()}

    return _load_part("backbone", build, source, config, allow_unused, allow_missing, format, return_report)


def load_into(
    model,
    source: Source,
    allow_unused: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    fresh_heads: bool = False,
    format: str | None = None,
    config: Any = None,
) -> LoadReport:
    """Fill any model with `canonical_weights()` (task models included) from a checkpoint.

    `fresh_heads=True` lets every head the checkpoint has *no* variable of keep its
    initial values (fine-tuning from a pretraining checkpoint); they are listed in
    `report.left_initialised`. A head the checkpoint has in part, or with other shapes,
    is still an error.
    """
    from keras_electra.models.backbone import ElectraBackbone

    checkpoint = read_checkpoint(source, format, config)
    targets = model.canonical_weights()
    if isinstance(model, ElectraBackbone):
        targets = {f"electra/{k}": v for k, v in targets.items()}
    missing = list(allow_missing)
    if fresh_heads:
        heads: dict[str, list[str]] = {}
        for name in targets:
            part = part_of(name)
            if part not in ("embeddings", "discriminator_backbone"):
                heads.setdefault(name.split("/")[0], []).append(name)
        for names in heads.values():
            if not any(n in checkpoint.tensors for n in names):
                missing += names
    return assign_weights(targets, checkpoint, allow_unused, missing)


def load_task(
    task_cls,
    source: Source,
    seq_length: int = 128,
    preprocessor_kwargs: dict | None = None,
    config: Any = None,
    allow_unused: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    format: str | None = None,
    fresh_heads: bool = True,
    return_report: bool = False,
    **task_kwargs: Any,
):
    """A task model (`keras_electra.tasks`) on a checkpoint's discriminator encoder.

    A fine-tuned HF checkpoint (`ElectraForSequenceClassification`, ...) fills the head
    too: `num_classes` and `label_names` default to its `id2label`, and `head` to
    "huggingface" when it has HF's head layout. From a pretraining checkpoint the head
    starts fresh (`fresh_heads=True`, listed in the report). With a vocab.txt the
    model gets its preprocessor (`task_cls.from_backbone`).
    """
    import inspect

    from keras_electra.models.backbone import ElectraBackbone

    checkpoint = read_checkpoint(source, format, config)
    if not checkpoint.has_discriminator_backbone:
        raise CheckpointError(f"{checkpoint.path} holds no discriminator encoder (electra/encoder/*) to fine-tune")
    accepted = inspect.signature(task_cls.__init__).parameters
    if "num_classes" in accepted and "num_classes" not in task_kwargs and checkpoint.num_labels:
        task_kwargs["num_classes"] = checkpoint.num_labels
    id2label = checkpoint.raw_config.get("id2label")
    if "label_names" in accepted and "label_names" not in task_kwargs and _is_task(checkpoint) and id2label:
        task_kwargs["label_names"] = [id2label[k] for k in sorted(id2label, key=int)]
    if "head" in accepted and "head" not in task_kwargs and (
        checkpoint.has("classifier/out_proj/") or checkpoint.has("sequence_summary/") or checkpoint.has("qa_outputs/")
    ):
        task_kwargs["head"] = "huggingface"
    backbone = ElectraBackbone.from_electra_config(checkpoint.config, name="backbone")
    tokenizer = tokenizer_from_checkpoint(checkpoint)
    if tokenizer is not None and getattr(task_cls, "preprocessor_cls", None) is not None:
        model = task_cls.from_backbone(backbone, tokenizer, seq_length, preprocessor_kwargs, **task_kwargs)
    else:
        model = task_cls(backbone, **task_kwargs)
    report = load_into(model, checkpoint, allow_unused, allow_missing, fresh_heads=fresh_heads)
    return (model, report) if return_report else model


# ------------------------------------------------------------------------------ pairs
def _pair_sources(source: Source, generator_source: Source | None) -> tuple[Source, Source | None]:
    if generator_source is None and not isinstance(source, Checkpoint):
        path = Path(source)
        if (path / "discriminator").is_dir() and (path / "generator").is_dir():  # keras-electra convert output
            return path / "discriminator", path / "generator"
    return source, generator_source


def pair_checkpoint(
    source: Source,
    generator_source: Source | None = None,
    config: Any = None,
    format: str | None = None,
    embeddings: str = "check",
) -> Checkpoint:
    """One checkpoint holding both nets: a TF1 pair, or a discriminator + generator from two sources.

    Two sources must agree on the shared embeddings (word, position, type, LayerNorm):
    `embeddings="check"` requires them equal, `"discriminator"` takes the discriminator's.
    """
    source, generator_source = _pair_sources(source, generator_source)
    if generator_source is None:
        checkpoint = read_checkpoint(source, format, config)
        _require(checkpoint, "both")
        gen_config = generator_part_config(checkpoint)
        if gen_config is not checkpoint.config:
            raise CheckpointError(
                f"{checkpoint.path}: the generator ({gen_config.num_layers} layers) and discriminator "
                f"({checkpoint.config.num_layers} layers) differ in depth; ElectraPretrainer needs equal depth"
            )
        return checkpoint
    disc = read_checkpoint(source, format, config)
    gen = read_checkpoint(generator_source, None)
    _require(disc, "discriminator")
    _require(gen, "generator")
    return _merge(disc, gen, embeddings)


def _merge(disc: Checkpoint, gen: Checkpoint, embeddings: str) -> Checkpoint:
    if embeddings not in ("check", "discriminator"):
        raise CheckpointError(f"embeddings must be 'check' or 'discriminator', got {embeddings!r}")
    d, g = disc.config, generator_part_config(gen).generator_config()
    for field in ("vocab_size", "embedding_size", "max_position_embeddings", "type_vocab_size", "num_layers",
                  "hidden_act"):
        if getattr(d, field) != getattr(g, field):
            raise CheckpointError(
                f"generator {gen.path} has {field}={getattr(g, field)} but discriminator {disc.path} has "
                f"{getattr(d, field)}; they cannot share embeddings in one ElectraPretrainer"
            )
    notes = list(disc.notes) + [f"generator: {n}" for n in gen.notes]
    for name in EMBEDDING_NAMES:
        a, b = disc.tensors[name].load(), gen.tensors[name].load()
        if not np.array_equal(a, b):
            diff = float(np.max(np.abs(a - b)))
            if embeddings == "check":
                raise CheckpointError(
                    f"the generator's {gen.tensors[name].source_name} differs from the discriminator's "
                    f"(max |diff| {diff:.3g}); ELECTRA shares them: pass embeddings='discriminator' to use "
                    "the discriminator's copy"
                )
            notes.append(f"{name}: generator copy differs (max |diff| {diff:.3g}); the discriminator's is used")
    tensors = {n: t for n, t in disc.tensors.items() if part_of(n) not in ("generator_backbone", "generator_head")}
    tensors.update({n: t for n, t in gen.tensors.items() if part_of(n) in ("generator_backbone", "generator_head")})
    ignored = dict(disc.ignored)
    ignored.update({f"{gen.path}:{k}": v for k, v in gen.ignored.items()})
    for name, tensor in gen.tensors.items():
        if name.startswith("electra/embeddings/"):
            ignored[f"{gen.path}:{tensor.source_name}"] = "shared embeddings: the discriminator's copy is used"
        elif part_of(name) not in ("generator_backbone", "generator_head"):
            ignored[f"{gen.path}:{tensor.source_name}"] = "not a generator variable (taken from the discriminator)"
    if gen.vocabulary is not None and disc.vocabulary is not None and gen.vocabulary != disc.vocabulary:
        raise CheckpointError(f"the generator's vocab.txt ({gen.path}) differs from the discriminator's ({disc.path})")
    return dataclasses.replace(
        disc,
        format=f"{disc.format}+{gen.format}",
        tensors=tensors,
        config=with_generator_sizes(d, g.hidden_size, g.num_heads, g.intermediate_size),
        ignored=ignored,
        unmapped=list(disc.unmapped) + [f"{gen.path}:{n}" for n in gen.unmapped],
        notes=notes,
        generator_config=g,
        model=None,
    )


def load_pretraining_pair(
    source: Source,
    generator_source: Source | None = None,
    config: Any = None,
    allow_unused: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    format: str | None = None,
    embeddings: str = "check",
    return_report: bool = False,
):
    """(generator, discriminator) sharing one embedding layer, from a TF1 checkpoint, an HF
    `ElectraForPreTraining` + `ElectraForMaskedLM` pair, or a `keras-electra convert` output."""
    from keras_electra.models.discriminator import ElectraDiscriminator
    from keras_electra.models.generator import ElectraGenerator

    checkpoint = pair_checkpoint(source, generator_source, config, format, embeddings)
    discriminator = ElectraDiscriminator.from_electra_config(checkpoint.config, name="discriminator")
    generator = ElectraGenerator.from_electra_config(
        checkpoint.config, embeddings=discriminator.backbone.embeddings, name="generator"
    )
    targets = {**discriminator.canonical_weights(), **generator.canonical_weights()}
    report = assign_weights(targets, checkpoint, allow_unused, allow_missing)
    check_shared_embeddings(generator, discriminator)
    return (generator, discriminator, report) if return_report else (generator, discriminator)


def pretraining_config(
    source: Source, generator_source: Source | None = None, config: Any = None, format: str | None = None,
    generator_fraction: float | None = None,
) -> ElectraConfig:
    """The `ElectraConfig` to build an `ElectraPretrainer` that `init_pretrainer` can fill from `source`.

    An encoder alone (BERT, keras-hub, HF `ElectraModel`) gives its own config: the generator
    starts fresh at `generator_fraction` of its size (default: the config's 1/4). A checkpoint
    that brings its generator fixes the generator's size, so a fraction is refused there.
    """
    encoder = _encoder_only(source, generator_source, config, format)
    if encoder is not None:
        if generator_fraction is None:
            return encoder.config
        return encoder.config.replace(generator_fraction=generator_fraction, generator_hidden_size=None,
                                      generator_num_heads=None, generator_intermediate_size=None)
    if generator_fraction is not None:
        raise CheckpointError(f"--generator-fraction: {generator_source or source} brings its generator, whose "
                              "size is fixed; drop the option (it sizes a generator that starts fresh)")
    return pair_checkpoint(source, generator_source, config, format).config


def _encoder_only(source: Source, generator_source: Source | None, config: Any, format: str | None):
    """The checkpoint when it is a bare encoder (no RTD head, no separate generator), else None."""
    if generator_source is not None:
        return None
    source, generator = _pair_sources(source, None)
    if generator is not None:
        return None
    checkpoint = read_checkpoint(source, format, config)
    if checkpoint.has_discriminator_backbone and not checkpoint.has_discriminator_head and (
        is_bert(checkpoint) or not checkpoint.has_generator_head
    ):
        return checkpoint
    return None


STRUCTURE = (
    "vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads", "intermediate_size", "hidden_act",
    "max_position_embeddings", "type_vocab_size", "layer_norm_eps",
)


def init_pretrainer(
    pretrainer,
    source: Source,
    generator_source: Source | None = None,
    config: Any = None,
    allow_unused: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    format: str | None = None,
    embeddings: str = "check",
) -> LoadReport:
    """Copy a converted generator + discriminator into an `ElectraPretrainer` (continue pretraining).

    The pretrainer must have the checkpoint's structure (build it with
    `pretraining_config(source)`); heads and activation are compared, not only shapes.
    From a bare encoder (BERT, keras-hub, HF `ElectraModel`) the discriminator's encoder
    and the shared embeddings are loaded; the RTD head and the generator's encoder and
    MLM head start fresh, listed in `report.left_initialised`.
    """
    encoder = _encoder_only(source, generator_source, config, format)
    if encoder is not None:
        return _init_from_encoder(pretrainer, encoder, allow_unused, allow_missing)
    checkpoint = pair_checkpoint(source, generator_source, config, format, embeddings)
    if getattr(pretrainer, "objective", "electra") != "electra" or pretrainer.discriminator is None:
        raise CheckpointError("init_pretrainer needs an ElectraPretrainer with objective='electra'")
    ours, theirs = pretrainer.config, checkpoint.config
    diffs = [f"{k}: pretrainer {getattr(ours, k)} vs checkpoint {getattr(theirs, k)}"
             for k in STRUCTURE if getattr(ours, k) != getattr(theirs, k)]
    diffs += [f"generator {k}: pretrainer {getattr(ours.generator_config(), k)} vs checkpoint "
              f"{getattr(theirs.generator_config(), k)}"
              for k in ("hidden_size", "num_heads", "intermediate_size")
              if getattr(ours.generator_config(), k) != getattr(theirs.generator_config(), k)]
    if diffs:
        raise CheckpointError(f"{checkpoint.path} does not fit the pretrainer: " + "; ".join(diffs[:4]))
    generator, discriminator = pretrainer.generator, pretrainer.discriminator
    tied = generator.backbone.embeddings is discriminator.backbone.embeddings
    if tied:
        report = assign_weights(
            {**discriminator.canonical_weights(), **generator.canonical_weights()}, checkpoint,
            allow_unused, allow_missing,
        )
        check_shared_embeddings(generator, discriminator)
        return report
    # Untied pretrainer: both copies start from the checkpoint's one shared table.
    report = assign_weights(discriminator.canonical_weights(), checkpoint, allow_unused, allow_missing)
    extra = assign_weights(generator.canonical_weights(), checkpoint, allow_unused, allow_missing)
    report.loaded += extra.loaded
    return report


def _init_from_encoder(pretrainer, checkpoint: Checkpoint, allow_unused: Sequence[str],
                       allow_missing: Sequence[str]) -> LoadReport:
    if getattr(pretrainer, "objective", "electra") != "electra" or pretrainer.discriminator is None:
        raise CheckpointError("init_pretrainer needs an ElectraPretrainer with objective='electra'")
    ours, theirs = pretrainer.config, checkpoint.config
    diffs = [f"{k}: pretrainer {getattr(ours, k)} vs checkpoint {getattr(theirs, k)}"
             for k in STRUCTURE if getattr(ours, k) != getattr(theirs, k)]
    if diffs:
        raise CheckpointError(f"{checkpoint.path} does not fit the pretrainer: " + "; ".join(diffs[:4]))
    generator, discriminator = pretrainer.generator, pretrainer.discriminator
    report = assign_weights(discriminator.canonical_weights(), checkpoint, allow_unused,
                            [*allow_missing, "discriminator_predictions/*"])
    fresh = [n for n in generator.canonical_weights() if not n.startswith("electra/embeddings/")]
    if generator.backbone.embeddings is not discriminator.backbone.embeddings:  # untied: copy the one table
        targets = {n: v for n, v in generator.canonical_weights().items() if n.startswith("electra/embeddings/")}
        assign_weights(targets, checkpoint, ("*",))
    report.left_initialised = sorted(set(report.left_initialised) | set(fresh))
    report.notes.append(f"{checkpoint.architecture or checkpoint.format} holds an encoder only: the RTD head and "
                        "the generator start fresh")
    return report


def check_shared_embeddings(generator, discriminator) -> None:
    """The generator must read the discriminator's embedding variables, not a copy of them."""
    g, d = generator.canonical_weights(), discriminator.canonical_weights()
    for name in EMBEDDING_NAMES:
        if g[name] is not d[name]:
            raise CheckpointError(f"{name}: the generator and discriminator hold separate variables (not shared)")


# ------------------------------------------------------------------------- dispatcher
def from_pretrained(
    path: Source,
    part: str = "auto",
    config: Any = None,
    allow_unused: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    format: str | None = None,
    generator_source: Source | None = None,
    return_report: bool = False,
):
    """Load a model from any supported checkpoint, detecting its format.

    Args:
        path: TF1 checkpoint (prefix or directory), HF directory, keras-hub preset
            directory, or a keras-electra model directory; or a name that
            `convert.resolve.resolve_checkpoint` fetches: an HF id (`google/electra-small-discriminator`),
            a keras-hub preset, or a Google TF1 release (`electra_small`).
        part: "discriminator", "generator", "backbone", "both" (returns
            `(generator, discriminator)` sharing embeddings), or "auto": what the
            checkpoint holds (the discriminator of a TF1 pair, the generator of an HF
            `ElectraForMaskedLM`, the backbone of an `ElectraModel` / keras-hub preset).
        config: an explicit config (ElectraConfig, dict, or JSON path: ours, HF-style,
            or the official hparams); sizes are still checked against the shapes.
        allow_unused: patterns of source variable names that may stay unused.
        allow_missing: patterns of model parameter names that may stay newly initialised.
        format: "tf1", "hf", "keras-hub" or "keras-electra" to insist on one.
        generator_source: for part="both" from two sources (HF keeps them apart).
    """
    if part not in PARTS:
        raise CheckpointError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
    path, generator_source = resolve_source(path), resolve_source(generator_source)  # names -> local paths
    kwargs = dict(config=config, allow_unused=allow_unused, allow_missing=allow_missing, return_report=return_report)
    if part == "both" or generator_source is not None:
        return load_pretraining_pair(path, generator_source, format=format, **kwargs)
    source, _ = _pair_sources(path, None)
    if source != path:
        raise CheckpointError(f"{path} holds a converted pair: load part='both' or one of its sub-directories")
    checkpoint = read_checkpoint(path, format, config)
    if part == "auto":
        part = auto_part(checkpoint)
    loader = {"discriminator": load_discriminator, "generator": load_generator, "backbone": load_backbone}[part]
    return loader(checkpoint, **kwargs)


# ---------------------------------------------------------------------------- convert
def convert(
    source: str | Path,
    output: str | Path,
    format: str | None = None,
    part: str = "auto",
    config: Any = None,
    generator_config: Any = None,
    allow_unused: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
    overwrite: bool = False,
    generator_source: str | Path | None = None,
) -> dict[str, Any]:
    """Write `output/<part>/` (model.keras, config.json, vocab.txt + tokenizer.json, conversion.json).

    `part="auto"` writes both nets of a TF1 pair (or of `source` + `generator_source`,
    HF's separate discriminator and generator), otherwise what the checkpoint holds.
    The whole output directory appears at once or not at all.
    """
    if part not in PARTS:
        raise CheckpointError(f"unknown part {part!r}; choose from {', '.join(PARTS)}")
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())) and not overwrite:
        raise CheckpointError(f"output {output} already exists; pass --overwrite to replace it")
    with output_lock(output):  # one writer per output; checked writable before the (slow) conversion
        return _convert(source, output, format, part, config, generator_config, allow_unused, allow_missing,
                        generator_source)


def _convert(source: str | Path, output: Path, format: str | None, part: str, config: Any,
             generator_config: Any, allow_unused: Sequence[str], allow_missing: Sequence[str],
             generator_source: str | Path | None) -> dict[str, Any]:
    if generator_source is not None:
        if part not in ("auto", "both"):
            raise CheckpointError(f"a separate generator source converts the pair: use part 'both', not {part!r}")
        checkpoint, part = pair_checkpoint(source, generator_source, config, format), "both"
    else:
        checkpoint = read_checkpoint(source, format, config, generator_config)
    if part == "auto":
        pairable = checkpoint.has_discriminator_head and checkpoint.has_generator_head
        part = "both" if pairable else auto_part(checkpoint)
    models: dict[str, tuple[Any, ElectraConfig, LoadReport]] = {}
    kwargs = dict(allow_unused=allow_unused, allow_missing=allow_missing, return_report=True)
    if part == "both":
        generator, discriminator, report = load_pretraining_pair(checkpoint, **kwargs)
        pair = checkpoint.config
        models = {"discriminator": (discriminator, pair, report), "generator": (generator, pair, report)}
    elif part == "discriminator":
        model, report = load_discriminator(checkpoint, **kwargs)
        models = {"discriminator": (model, checkpoint.config, report)}
    elif part == "generator":
        model, report = load_generator(checkpoint, **kwargs)
        models = {"generator": (model, generator_part_config(checkpoint), report)}
    else:
        model, report = load_backbone(checkpoint, **kwargs)
        own = checkpoint.config if checkpoint.has_discriminator_backbone else (
            generator_part_config(checkpoint).generator_config())
        models = {"backbone": (model, own, report)}
    tokenizer = tokenizer_from_checkpoint(checkpoint)
    with atomic_directory(output) as tmp:
        for name, (model, model_config, report) in models.items():
            directory = tmp / name
            directory.mkdir()
            model.save(str(directory / MODEL_FILE))
            write_json(directory / "config.json", model_config.to_dict())
            if tokenizer is not None:
                tokenizer.save_to_directory(directory)
            write_json(directory / REPORT_FILE, {
                "source": str(source), "format": checkpoint.format, "architecture": checkpoint.architecture,
                "part": name, "lower_case": tokenizer.lower_case if tokenizer is not None else None,
                **report.to_dict(),
            })
    return {
        "format": checkpoint.format,
        "parts": {name: output / name for name in models},
        "reports": {name: report for name, (_, _, report) in models.items()},
        "vocabulary": tokenizer is not None,
    }


__all__ = [
    "FORMATS", "PARTS", "detect_format", "read_checkpoint", "from_pretrained", "load_discriminator",
    "load_generator", "generator_location", "load_backbone", "load_into", "load_task", "load_pretraining_pair",
    "pretraining_config",
    "init_pretrainer", "check_shared_embeddings", "convert", "tokenizer_from_checkpoint", "save_huggingface",
    "pair_checkpoint", "auto_part", "is_bert",
]
