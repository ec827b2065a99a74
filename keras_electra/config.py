"""`ElectraConfig`: one explicit dataclass for the network, plus the size presets.

`from_dict` takes this class's own field names only (`num_layers`, `num_heads`,
`hidden_dropout`, ...); unknown keys are rejected: a typo in a config must never be silently
ignored. A released Hugging Face `config.json` (`num_hidden_layers`, `hidden_dropout_prob`, ...)
or the official hparams use other names: `keras_electra.convert.common.parse_config` translates them.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Any

from keras_electra.errors import ElectraError


class ConfigError(ElectraError):
    """A configuration value or key is invalid (the CLI prints it as one line)."""


@dataclasses.dataclass(frozen=True)
class ElectraConfig:
    """Hyperparameters of one ELECTRA transformer (discriminator or generator).

    `generator_*` fields describe the generator that is paired with this network
    during pretraining. By default its hidden size, FFN size and heads are
    `generator_fraction` of the discriminator's, with the same number of layers
    (paper section 3.2). Set the explicit sizes to describe checkpoints whose
    generator does not follow the rule (the released Small++ uses a full-size one).
    """

    vocab_size: int = 30522
    embedding_size: int = 128
    hidden_size: int = 256
    num_layers: int = 12
    num_heads: int = 4
    intermediate_size: int = 1024
    hidden_act: str = "gelu"
    hidden_dropout: float = 0.1
    attention_dropout: float = 0.1
    max_position_embeddings: int = 512
    type_vocab_size: int = 2
    initializer_range: float = 0.02
    layer_norm_eps: float = 1e-12
    generator_fraction: float = 0.25
    generator_hidden_size: int | None = None
    generator_num_heads: int | None = None
    generator_intermediate_size: int | None = None
    # The layers the official code builds without an initialiser (embeddings_project, the RTD
    # output dense_1, the task heads) get TF's default, glorot_uniform; "truncated_normal" gives
    # them truncated normal(initializer_range) like every other layer, as Hugging Face does.
    default_initializer: str = "glorot_uniform"

    def __post_init__(self) -> None:
        positive = (
            "vocab_size", "embedding_size", "hidden_size", "num_layers", "num_heads",
            "intermediate_size", "max_position_embeddings", "type_vocab_size",
        )
        for name in positive:
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ConfigError(f"ElectraConfig.{name} must be a positive integer, got {value!r}")
        if self.hidden_size % self.num_heads:
            raise ConfigError(
                f"hidden_size {self.hidden_size} is not divisible by num_heads {self.num_heads}"
            )
        for name in ("hidden_dropout", "attention_dropout"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ConfigError(f"ElectraConfig.{name} must be in [0, 1), got {getattr(self, name)}")
        if self.hidden_act not in ACTIVATIONS:
            raise ConfigError(f"unknown hidden_act {self.hidden_act!r}; choose from {sorted(ACTIVATIONS)}")
        if self.default_initializer not in DEFAULT_INITIALIZERS:
            raise ConfigError(f"unknown default_initializer {self.default_initializer!r}; "
                              f"choose from {', '.join(DEFAULT_INITIALIZERS)}")
        if not 0.0 < self.generator_fraction <= 1.0:
            raise ConfigError(f"generator_fraction must be in (0, 1], got {self.generator_fraction}")
        hidden, heads, _ = self._generator_sizes()
        if hidden % heads:
            raise ConfigError(f"generator hidden size {hidden} is not divisible by its {heads} heads")

    # ------------------------------------------------------------------ generator
    def generator_config(self) -> ElectraConfig:
        """The config of the paired generator: same depth, reduced width."""
        hidden, heads, ffn = self._generator_sizes()
        return dataclasses.replace(
            self,
            hidden_size=hidden,
            num_heads=heads,
            intermediate_size=ffn,
            generator_fraction=1.0,
            generator_hidden_size=None,
            generator_num_heads=None,
            generator_intermediate_size=None,
        )

    def _generator_sizes(self) -> tuple[int, int, int]:
        frac = self.generator_fraction
        hidden = self.generator_hidden_size or max(1, round(self.hidden_size * frac))
        heads = self.generator_num_heads or max(1, round(self.num_heads * frac))
        ffn = self.generator_intermediate_size or max(1, round(self.intermediate_size * frac))
        return hidden, heads, ffn

    # -------------------------------------------------------------- (de)serialise
    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ElectraConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown ElectraConfig keys: {', '.join(unknown)}")
        return cls(**values)

    def replace(self, **changes: Any) -> ElectraConfig:
        return self.from_dict({**self.to_dict(), **changes})

    def to_json(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def from_json(cls, path: str | Path) -> ElectraConfig:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file not found: {path}")
        from keras_electra.utils.io import read_json

        return cls.from_dict(read_json(path, ConfigError, require_object=True))

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> ElectraConfig:
        if name not in PRESETS:
            raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
        return cls.from_dict({**PRESETS[name]["model"], **overrides})

    @property
    def head_size(self) -> int:
        return self.hidden_size // self.num_heads


ACTIVATIONS = ("gelu", "gelu_approximate", "relu", "tanh")
DEFAULT_INITIALIZERS = ("glorot_uniform", "truncated_normal")  # see layers.initializers.default_initializer


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """`["num_layers=4", "hidden_act=relu"]` → `{"num_layers": 4, "hidden_act": "relu"}` (values parsed
    as JSON where they can be, else kept as strings); field names are checked by `ElectraConfig`."""
    overrides: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"--config expects KEY=VALUE (an ElectraConfig field), got {item!r}")
        try:
            overrides[key.strip()] = json.loads(value)
        except json.JSONDecodeError:
            overrides[key.strip()] = value
    return overrides


def max_predictions_for(seq_length: int, mask_rate: float) -> int:
    """The official static bound on masked positions: int((p + 0.005) * L), 19 at L=128."""
    return max(1, int(math.floor((mask_rate + 0.005) * seq_length)))


# Paper Table 6 (model) and the pretraining recipe of each size. `tiny` is the
# debug size: it trains in minutes on a laptop CPU and is used by tests.
PRESETS: dict[str, dict[str, dict[str, Any]]] = {
    "tiny": {
        "model": dict(
            embedding_size=64, hidden_size=128, num_layers=2, num_heads=2,
            intermediate_size=512, generator_fraction=0.25,
        ),
        "pretraining": dict(
            mask_rate=0.15, learning_rate=2e-3, warmup_steps=50, batch_size=32,
            seq_length=128, train_steps=300,
        ),
    },
    "small": {
        "model": dict(
            embedding_size=128, hidden_size=256, num_layers=12, num_heads=4,
            intermediate_size=1024, generator_fraction=0.25,
        ),
        "pretraining": dict(
            mask_rate=0.15, learning_rate=5e-4, warmup_steps=10_000, batch_size=128,
            seq_length=128, train_steps=1_000_000,
        ),
    },
    "base": {
        "model": dict(
            embedding_size=768, hidden_size=768, num_layers=12, num_heads=12,
            intermediate_size=3072, generator_fraction=1 / 3,
        ),
        "pretraining": dict(
            mask_rate=0.15, learning_rate=2e-4, warmup_steps=10_000, batch_size=256,
            seq_length=512, train_steps=766_000,
        ),
    },
    "large": {
        "model": dict(
            embedding_size=1024, hidden_size=1024, num_layers=24, num_heads=16,
            intermediate_size=4096, generator_fraction=0.25,
        ),
        "pretraining": dict(
            mask_rate=0.25, learning_rate=2e-4, warmup_steps=10_000, batch_size=2048,
            seq_length=512, train_steps=400_000,
        ),
    },
}

# Paper Table 7: fine-tuning learning rate and layer-wise decay per size.
FINETUNING_PRESETS: dict[str, dict[str, float]] = {
    "tiny": dict(learning_rate=3e-4, layerwise_lr_decay=0.8),
    "small": dict(learning_rate=3e-4, layerwise_lr_decay=0.8),
    "base": dict(learning_rate=1e-4, layerwise_lr_decay=0.8),
    "large": dict(learning_rate=5e-5, layerwise_lr_decay=0.9),
}
