"""What every converter shares: the checkpoint record, the accounting and the shape checks.

Each source format (TF1, Hugging Face, keras-hub, keras-electra's own `model.keras`)
is read into a `Checkpoint`: a table from the *canonical* name (the official TF1
variable name, e.g. `electra/encoder/layer_0/attention/self/query/kernel`) to a
lazily loaded array already in our layout ([in, out] kernels). Our models expose the
same names through `canonical_weights()`, so loading is a join on names, and
`assign_weights` makes that join total: every source variable is used, ignored on
purpose with a reason, or named in the error; every model parameter is filled or
named in the error.
"""

from __future__ import annotations

import dataclasses
import fnmatch
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.config import PRESETS, ConfigError, ElectraConfig
from keras_electra.errors import CheckpointError

# The parts of a checkpoint, by canonical-name prefix (first match wins). A source
# variable of a part the requested model does not hold (the generator, when loading
# the discriminator) is accounted for in the report; one of a part the model does hold
# but lacks (a 13th layer), or of no known part (Electric's `generator_ltr/`), is an error.
PARTS: tuple[tuple[str, str], ...] = (
    ("electra/embeddings/", "embeddings"),
    ("electra/", "discriminator_backbone"),
    ("generator/", "generator_backbone"),
    ("discriminator_predictions/", "discriminator_head"),
    ("generator_predictions/", "generator_head"),
    # Hugging Face task heads (state-dict key with "." -> "/", weight -> kernel).
    ("classifier/", "task_head"),
    ("qa_outputs/", "task_head"),
    ("sequence_summary/", "task_head"),
)


def part_of(canonical: str) -> str | None:
    for prefix, part in PARTS:
        if canonical.startswith(prefix):
            return part
    return None


# Hugging Face activation names → ours. `gelu_new` / `gelu_pytorch_tanh` are the tanh form.
HF_ACTIVATIONS = {
    "gelu": "gelu",
    "gelu_new": "gelu_approximate",
    "gelu_pytorch_tanh": "gelu_approximate",
    "relu": "relu",
    "tanh": "tanh",
}
OUR_TO_HF_ACTIVATION = {"gelu": "gelu", "gelu_approximate": "gelu_new", "relu": "relu", "tanh": "tanh"}

MAX_LISTED = 5


# ---------------------------------------------------------------------------- records
@dataclasses.dataclass
class SourceTensor:
    """One source variable, mapped to a canonical name, loaded on demand."""

    source_name: str
    shape: tuple[int, ...]  # in our layout (after any transpose/reshape)
    load: Callable[[], np.ndarray]
    source_shape: tuple[int, ...] | None = None  # as stored, when it differs
    note: str = ""  # the transform applied, e.g. "transposed"

    def describe_shape(self) -> str:
        text = _shape(self.shape)
        if self.source_shape is not None and tuple(self.source_shape) != tuple(self.shape):
            text += f" (stored as {_shape(self.source_shape)}, {self.note})"
        return text


@dataclasses.dataclass
class Checkpoint:
    """A source checkpoint read into canonical names, plus what came with it.

    `config` describes the discriminator-sized network with explicit generator sizes
    when the checkpoint holds a generator (TF1 pairs). For a checkpoint that holds
    only a generator (HF `ElectraForMaskedLM`) it is the generator's own config with
    `generator_fraction=1.0`, so `config.generator_config()` is the generator.
    """

    format: str
    path: Path
    tensors: dict[str, SourceTensor]
    config: ElectraConfig | None
    ignored: dict[str, str] = dataclasses.field(default_factory=dict)  # source name -> why
    unmapped: list[str] = dataclasses.field(default_factory=list)  # source names we cannot place
    architecture: str | None = None  # HF class name, "pretraining" for TF1, ...
    raw_config: dict[str, Any] = dataclasses.field(default_factory=dict)
    vocabulary: list[str] | None = None
    lower_case: bool | None = None
    strip_accents: bool | None = None  # None: follow lower_case (BERT's rule)
    notes: list[str] = dataclasses.field(default_factory=list)
    generator_config: ElectraConfig | None = None  # when the generator's own config is known
    model: Any = None  # keras-electra format: the loaded model itself

    # -------------------------------------------------------------- parts held
    def has(self, prefix: str) -> bool:
        return any(name.startswith(prefix) for name in self.tensors)

    @property
    def has_discriminator_backbone(self) -> bool:
        return self.has("electra/encoder/")

    @property
    def has_generator_backbone(self) -> bool:
        return self.has("generator/encoder/")

    @property
    def has_discriminator_head(self) -> bool:
        return self.has("discriminator_predictions/")

    @property
    def has_generator_head(self) -> bool:
        return self.has("generator_predictions/")

    @property
    def num_labels(self) -> int | None:
        """Labels of a fine-tuned HF head (`id2label` / `num_labels` in config.json)."""
        if "id2label" in self.raw_config:
            return len(self.raw_config["id2label"])
        value = self.raw_config.get("num_labels")
        return int(value) if value is not None else None

    def describe(self) -> str:
        held = [name for name, ok in (
            ("discriminator encoder", self.has_discriminator_backbone),
            ("RTD head", self.has_discriminator_head),
            ("generator encoder", self.has_generator_backbone),
            ("MLM head", self.has_generator_head),
        ) if ok]
        arch = f" {self.architecture}" if self.architecture else ""
        return f"{self.format}{arch} checkpoint {self.path} ({', '.join(held) or 'no ELECTRA weights'})"


@dataclasses.dataclass
class LoadReport:
    """How every source variable and every model parameter was accounted for."""

    source: str
    loaded: list[str] = dataclasses.field(default_factory=list)  # canonical names filled
    ignored: dict[str, str] = dataclasses.field(default_factory=dict)  # source name -> why (on purpose)
    other_parts: list[str] = dataclasses.field(default_factory=list)  # source names of parts not requested
    allowed_unused: list[str] = dataclasses.field(default_factory=list)  # matched the caller's allow-list
    left_initialised: list[str] = dataclasses.field(default_factory=list)  # model params allowed to stay new
    notes: list[str] = dataclasses.field(default_factory=list)

    def summary(self) -> str:
        parts = [f"loaded {len(self.loaded)} variables from {self.source}"]
        if self.ignored:
            reasons = sorted(set(self.ignored.values()))
            parts.append(f"ignored {len(self.ignored)} on purpose ({'; '.join(reasons)})")
        if self.other_parts:
            parts.append(f"{len(self.other_parts)} belong to parts not loaded")
        if self.allowed_unused:
            parts.append(f"{len(self.allowed_unused)} unused by allow-list")
        if self.left_initialised:
            parts.append(f"{len(self.left_initialised)} model parameters left newly initialised")
        return "; ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# ------------------------------------------------------------------------ helpers
def _shape(shape: Sequence[int]) -> str:
    return "[" + ", ".join(str(int(d)) for d in shape) + "]"


def list_names(names: Iterable[str], limit: int = MAX_LISTED) -> str:
    """`a, b, c (+N more)`: enough to act on, short enough for one line."""
    names = sorted(names)
    shown = ", ".join(names[:limit])
    return f"{shown} (+{len(names) - limit} more)" if len(names) > limit else shown


def matches_any(name: str, patterns: Iterable[str]) -> bool:
    """fnmatch patterns (`generator_ltr/*`), or exact names."""
    return any(name == p or fnmatch.fnmatchcase(name, p) for p in patterns)


# ---------------------------------------------------------------------- assignment
def assign_weights(
    targets: Mapping[str, Any],
    checkpoint: Checkpoint,
    allow_unused: Sequence[str] = (),
    allow_missing: Sequence[str] = (),
) -> LoadReport:
    """Fill every variable in `targets` ({canonical name: keras variable}) from `checkpoint`.

    Args:
        targets: the model's `canonical_weights()`.
        checkpoint: the source, read by one of the format readers.
        allow_unused: patterns of *source* names that may stay unused.
        allow_missing: patterns of *canonical* model names that may keep their initial values.

    Raises:
        CheckpointError: naming the unfilled parameters and the unused source
            variables (first few and a count), or the first shape mismatches.
    """
    report = LoadReport(source=checkpoint.describe(), ignored=dict(checkpoint.ignored), notes=list(checkpoint.notes))
    loaded_parts = {part_of(name) for name in targets}

    missing = [name for name in targets if name not in checkpoint.tensors]
    unfilled = [name for name in missing if not matches_any(name, allow_missing)]
    report.left_initialised = sorted(set(missing) - set(unfilled))

    # A source variable read under two names (a BERT MLM encoder is both the discriminator's and
    # a generator's) is used once it fills either.
    used = {checkpoint.tensors[name].source_name for name in targets if name in checkpoint.tensors}
    unused: list[str] = []
    for canonical, tensor in checkpoint.tensors.items():
        if canonical in targets or tensor.source_name in used:
            continue
        if matches_any(tensor.source_name, allow_unused) or matches_any(canonical, allow_unused):
            report.allowed_unused.append(tensor.source_name)
        elif part_of(canonical) is not None and part_of(canonical) not in loaded_parts:
            report.other_parts.append(tensor.source_name)
        else:
            unused.append(tensor.source_name)
    for name in checkpoint.unmapped:
        if matches_any(name, allow_unused):
            report.allowed_unused.append(name)
        else:
            unused.append(name)

    if unfilled or unused:
        problems = []
        if unfilled:
            problems.append(f"{len(unfilled)} model parameter(s) not in the checkpoint: {list_names(unfilled)}")
        if unused:
            problems.append(f"{len(unused)} checkpoint variable(s) the model does not use: {list_names(unused)}")
        hint = (" (to accept this, pass allow_unused=[...] / --allow-unused for checkpoint names, "
                "allow_missing=[...] / --allow-missing for model parameters)")
        raise CheckpointError(f"{checkpoint.path}: " + "; ".join(problems) + hint)

    mismatches = []
    for name in targets:
        if name not in checkpoint.tensors:
            continue
        tensor = checkpoint.tensors[name]
        expected = tuple(int(d) for d in targets[name].shape)
        if tuple(tensor.shape) != expected:
            mismatches.append(
                f"{tensor.source_name} is {tensor.describe_shape()} but the model's {name} is {_shape(expected)}"
            )
    if mismatches:
        more = f" (+{len(mismatches) - 2} more)" if len(mismatches) > 2 else ""
        raise CheckpointError(f"{checkpoint.path}: shape mismatch: " + "; ".join(mismatches[:2]) + more)

    for name, variable in targets.items():
        if name not in checkpoint.tensors:
            continue
        value = np.asarray(checkpoint.tensors[name].load())
        variable.assign(value.astype(_dtype_of(variable), copy=False))
        report.loaded.append(name)
    return report


def _dtype_of(variable) -> str:
    dtype = getattr(variable, "dtype", "float32")
    return str(getattr(dtype, "name", dtype))


# -------------------------------------------------------------------------- configs
def config_from_hf(
    values: Mapping[str, Any], source: str = "config.json", generator_fraction: float | None = None
) -> ElectraConfig:
    """A Hugging Face / BERT-style `config.json` (also Chinese-ELECTRA's JSON configs).

    `generator_fraction` describes the generator that would be paired with this network;
    by default the paper's fraction of the size preset with the same shape (1/3 for Base),
    else 1/4. Pass 1.0 for a generator's own config.
    """
    if values.get("position_embedding_type", "absolute") != "absolute":
        raise CheckpointError(
            f"{source}: position_embedding_type {values['position_embedding_type']!r} is not supported "
            "(ELECTRA uses absolute positions)"
        )
    if values.get("is_decoder"):
        raise CheckpointError(f"{source}: is_decoder=true (a causal LM) is not an ELECTRA encoder")
    act = values.get("hidden_act", "gelu")
    if act not in HF_ACTIVATIONS:
        raise CheckpointError(f"{source}: hidden_act {act!r} is not supported; known: {sorted(HF_ACTIVATIONS)}")
    hidden = values.get("hidden_size", 256)
    fields = dict(
        vocab_size=values.get("vocab_size", 30522),
        embedding_size=values.get("embedding_size", hidden),
        hidden_size=hidden,
        num_layers=values.get("num_hidden_layers", 12),
        num_heads=values.get("num_attention_heads", 4),
        intermediate_size=values.get("intermediate_size", 4 * hidden),
        hidden_act=HF_ACTIVATIONS[act],
        hidden_dropout=float(values.get("hidden_dropout_prob", 0.1)),
        attention_dropout=float(values.get("attention_probs_dropout_prob", 0.1)),
        max_position_embeddings=values.get("max_position_embeddings", 512),
        type_vocab_size=values.get("type_vocab_size", 2),
        initializer_range=float(values.get("initializer_range", 0.02)),
        layer_norm_eps=float(values.get("layer_norm_eps", 1e-12)),
    )
    if generator_fraction is None:
        generator_fraction = _preset_fraction(fields)
    fields["generator_fraction"] = generator_fraction
    return _make_config(fields, source)


def _preset_fraction(fields: Mapping[str, Any]) -> float:
    keys = ("embedding_size", "hidden_size", "num_heads", "intermediate_size")
    for preset in PRESETS.values():
        model = preset["model"]
        if all(model[k] == fields[k] for k in keys):
            return float(model["generator_fraction"])
    return 0.25


def config_from_official_hparams(values: Mapping[str, Any], source: str = "hparams") -> ElectraConfig:
    """The official `run_pretraining.py --hparams` dict (model_size, model_hparam_overrides, ...).

    Follows `util/training_utils.get_bert_config` and `run_pretraining.get_generator_config`:
    heads = max(1, hidden // 64), FFN = 4 · hidden, generator hidden = round(hidden ·
    generator_hidden_size), generator heads = max(1, generator hidden // 64).
    """
    sizes = {"small": (256, 12), "base": (768, 12), "large": (1024, 24)}
    model_size = values.get("model_size", "small")
    if model_size not in sizes:
        raise CheckpointError(f"{source}: unknown model_size {model_size!r}; expected small, base or large")
    hidden, layers = sizes[model_size]
    overrides = dict(values.get("model_hparam_overrides") or {})
    hidden = overrides.get("hidden_size", hidden)
    bert = {
        "hidden_size": hidden,
        "num_hidden_layers": overrides.get("num_hidden_layers", layers),
        "num_attention_heads": max(1, hidden // 64),
        "intermediate_size": 4 * hidden,
        "vocab_size": values.get("vocab_size", 30522),
        **overrides,
    }
    embedding = values.get("embedding_size")
    if embedding is None:
        embedding = 128 if model_size == "small" else bert["hidden_size"]
    bert["embedding_size"] = embedding
    config = config_from_hf(bert, source)
    gen_hidden = int(round(config.hidden_size * float(values.get("generator_hidden_size", 0.25))))
    return config.replace(
        generator_fraction=1.0,
        generator_hidden_size=gen_hidden,
        generator_num_heads=max(1, gen_hidden // 64),
        generator_intermediate_size=4 * gen_hidden,
    )


def _make_config(fields: dict[str, Any], source: str) -> ElectraConfig:
    try:
        return ElectraConfig.from_dict(fields)
    except ConfigError as err:
        raise CheckpointError(f"{source}: {err}") from None


def parse_config(value: ElectraConfig | Mapping[str, Any] | str | Path, source: str | None = None) -> ElectraConfig:
    """An explicit config: our `ElectraConfig` (instance, dict or JSON file), an HF/BERT-style
    config.json, or the official hparams JSON. The kind is recognised from its keys."""
    if isinstance(value, ElectraConfig):
        return value
    if isinstance(value, str | Path):
        path = Path(value)
        if not path.is_file():
            raise CheckpointError(f"config file not found: {path}")
        try:
            values = json.loads(path.read_text())
        except json.JSONDecodeError as err:
            raise CheckpointError(f"{path} is not valid JSON: {err}") from None
        source = source or str(path)
    else:
        values = dict(value)
        source = source or "config"
    if not isinstance(values, dict):
        raise CheckpointError(f"{source}: expected a JSON object")
    kind = config_kind(values)
    if kind == "hf":
        return config_from_hf(values, source)
    if kind == "hparams":
        return config_from_official_hparams(values, source)
    return _make_config(values, source)


def config_kind(values: Mapping[str, Any]) -> str:
    if "num_hidden_layers" in values or "num_attention_heads" in values or values.get("model_type") == "electra":
        return "hf"
    if "model_size" in values or "model_hparam_overrides" in values or "generator_layers" in values:
        return "hparams"
    return "electra"


def generator_heads_rule(config: ElectraConfig, generator_hidden: int) -> int:
    """Heads of a generator whose size was read from the shapes: the discriminator's head
    size (64 for every released model, so this is the official `max(1, hidden // 64)`)."""
    heads = max(1, generator_hidden // config.head_size)
    if generator_hidden % heads:
        raise CheckpointError(
            f"cannot infer the generator's attention heads for hidden size {generator_hidden}; "
            "pass a config with generator_num_heads"
        )
    return heads


def check_vocabulary(checkpoint: Checkpoint) -> None:
    """A vocab.txt longer than the embedding table would produce out-of-range ids."""
    if checkpoint.vocabulary is None or checkpoint.config is None:
        return
    n, v = len(checkpoint.vocabulary), checkpoint.config.vocab_size
    if n > v:
        raise CheckpointError(f"{checkpoint.path}: vocab.txt has {n} tokens but the word embeddings only {v} rows")
    if n < v:
        checkpoint.notes.append(f"vocab.txt has {n} tokens for {v} embedding rows (the rest are padding rows)")


def with_generator_sizes(config: ElectraConfig, hidden: int, heads: int, intermediate: int) -> ElectraConfig:
    """`config` describing this generator; explicit sizes only where the fraction rule disagrees."""
    derived_hidden, derived_heads, derived_ffn = config._generator_sizes()
    if (derived_hidden, derived_heads, derived_ffn) == (hidden, heads, intermediate):
        return config
    return config.replace(
        generator_hidden_size=hidden, generator_num_heads=heads, generator_intermediate_size=intermediate
    )


def discover_vocabulary(directory: Path) -> list[str] | None:
    """`vocab.txt` beside the weights, as every released ELECTRA checkpoint ships it."""
    from keras_electra.data.tokenizer import load_vocabulary

    path = directory / "vocab.txt"
    return load_vocabulary(path) if path.is_file() else None
