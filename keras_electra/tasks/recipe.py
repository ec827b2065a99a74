"""The fine-tuning recipe: `FinetuneConfig` (every option of one run) and the paper's defaults it resolves to.

`resolve_hyperparameters` turns `None` ("the paper's default") into the value for the model's size
(`keras_electra.config.FINETUNING_PRESETS`); results.json records what it returns.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from keras_electra.config import FINETUNING_PRESETS
from keras_electra.errors import ElectraError

if TYPE_CHECKING:
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.registry import TaskSpec

HIDDEN_TO_SIZE = {128: "tiny", 256: "small", 768: "base", 1024: "large"}
PROTOCOLS = ("paper", "best-dev")
DEFAULT_DROPOUT = 0.1  # the official task heads' (and every released encoder's) dropout
# Official `double_unordered` (configure_finetuning.py, default True): these pair tasks also
# train on every pair in the other order (QQP too, which this package does not ship).
DOUBLE_UNORDERED_TASKS = ("mrpc", "stsb", "qqp")


@dataclasses.dataclass
class FinetuneConfig:
    """Everything one fine-tuning run depends on; `None` means "the paper's default"."""

    task: str
    data: str
    init: str  # a pretrained model directory, or "random"
    output: str
    preset: str | None = None  # model size: picks LR/decay defaults; the architecture for --init random
    vocab: str | None = None  # vocabulary for --init random
    lower_case: bool | None = None  # --init random: None = the vocabulary's tokenizer.json, else uncased
    epochs: int | None = None
    batch_size: int = 32
    eval_batch_size: int | None = None
    learning_rate: float | None = None
    layerwise_lr_decay: float | None = None
    legacy_layerwise_decay: bool = False
    warmup_fraction: float = 0.1
    weight_decay: float = 0.0
    adam_epsilon: float = 1e-6
    clip_norm: float | None = 1.0
    dropout: float | None = None  # None: 0.1 in the head, a pretrained encoder's own (0.1 when random)
    seq_length: int | None = None
    seed: int = 0
    seeds: list[int] | None = None  # several seeds: the median (paper protocol) and an ensemble
    max_train_examples: int | None = None
    max_eval_examples: int | None = None
    train_examples_per_class: int | None = None  # few-shot: N examples of each class
    early_stopping_patience: int | None = 3  # protocol "best-dev" only
    protocol: str = "paper"  # "paper": fixed epochs, last checkpoint; "best-dev": best dev epoch, early stopping
    double_unordered: bool = True  # MRPC/STS-B: also train on (b, a) for every pair, as officially
    adam_bias_correction: bool = False  # official: none
    default_initializer: str | None = None  # the task head's init: None = the backbone's (official glorot_uniform)
    label_smoothing: float = 0.0
    fgm_epsilon: float = 0.0
    peft: str = "none"
    lora_rank: int = 8
    adapter_size: int = 64
    lora_alpha: float | None = None
    freeze_layers: int = 0
    adalora_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # AdaLoraOptions fields
    prefix_options: dict[str, Any] = dataclasses.field(default_factory=dict)  # PrefixOptions fields
    head: str | None = None  # None: the task's default head (the official one)
    jit_compile: bool | str = "auto"  # "auto": XLA on GPU/TPU only
    train_split: str | None = None
    dev_split: str | None = None
    test_split: str | None = None
    evaluate_test: bool = False
    task_options: dict[str, Any] = dataclasses.field(default_factory=dict)
    text_columns: list[str] | None = None
    label_column: str | None = None
    labels: list[str] | None = None
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)  # ElectraConfig fields, random init
    verbose: int | str = "auto"
    overwrite: bool = False  # replace a model already in `output`
    dev_fraction: float = 0.1  # held out of the training file when the data has no separate dev split
    tfds_data_dir: str | None = None  # TensorFlow Datasets directory for data="tfds:NAME"
    prompt: str | None = None  # classify through this template with the RTD head (tasks/prompting.py)
    label_words: list[str] | None = None  # with `prompt`: WORD=LABEL for every label
    wandb: str | None = None  # also log to this W&B project (utils/tracking.py)
    # --augment generator (tasks/augmentation.py); "none" is the official recipe. None: its defaults.
    augment: str = "none"
    augment_generator: str | None = None  # None: the --init directory's generator
    augment_copies: int | None = None
    augment_rate: float | None = None

    def seed_list(self) -> list[int]:
        return list(self.seeds) if self.seeds else [self.seed]


# --------------------------------------------------------------------- defaults
def model_size(backbone: ElectraBackbone, preset: str | None) -> str:
    if preset:
        if preset not in FINETUNING_PRESETS:
            raise ElectraError(f"unknown preset {preset!r}; choose from {', '.join(FINETUNING_PRESETS)}")
        return preset
    if backbone.num_layers >= 24:
        return "large"
    return HIDDEN_TO_SIZE.get(backbone.hidden_size, "small" if backbone.hidden_size < 768 else "base")


def resolve_hyperparameters(config: FinetuneConfig, spec: TaskSpec, backbone: ElectraBackbone) -> dict[str, Any]:
    size = model_size(backbone, config.preset)
    defaults = FINETUNING_PRESETS[size]
    return {
        "model_size": size,
        "learning_rate": config.learning_rate if config.learning_rate is not None else defaults["learning_rate"],
        "layerwise_lr_decay": (config.layerwise_lr_decay if config.layerwise_lr_decay is not None
                               else defaults["layerwise_lr_decay"]),
        "legacy_layerwise_decay": config.legacy_layerwise_decay,
        "protocol": config.protocol,
        "early_stopping_patience": config.early_stopping_patience if config.protocol == "best-dev" else None,
        "double_unordered": config.double_unordered and spec.name in DOUBLE_UNORDERED_TASKS,
        "adam_bias_correction": config.adam_bias_correction,
        "default_initializer": backbone.default_initializer,
        "epochs": config.epochs if config.epochs is not None else spec.epochs,
        "batch_size": config.batch_size,
        "warmup_fraction": config.warmup_fraction,
        "weight_decay": config.weight_decay,
        "adam_epsilon": config.adam_epsilon,
        "clip_norm": config.clip_norm,
        "dropout": DEFAULT_DROPOUT if config.dropout is None else config.dropout,
        "encoder_dropout": {"hidden": backbone.hidden_dropout, "attention": backbone.attention_dropout},
        "seq_length": config.seq_length or spec.seq_length,
    }



def check_task_options(config: FinetuneConfig, spec: TaskSpec) -> None:
    """Options the task would silently ignore are errors, named with what the task does take."""
    runner = spec.runner
    if config.head is not None and config.head not in runner.heads:
        if runner.heads:
            raise ElectraError(f"--head {config.head}: {spec.name} has the heads {', '.join(runner.heads)}")
        hint = "; choose its tagging head with --tagging-head" if spec.kind == "token" else ""
        raise ElectraError(f"--head {config.head}: {spec.name} ({spec.kind}) has one head only{hint}")
    if config.label_smoothing and not runner.label_smoothing:
        raise ElectraError(f"--label-smoothing {config.label_smoothing:g}: the {spec.kind} loss of {spec.name} has no "
                           "class labels to smooth (it applies to classification, tagging, relation and "
                           "multiple-choice tasks)")
    if not 0.0 <= config.label_smoothing < 1.0:
        raise ElectraError(f"--label-smoothing {config.label_smoothing:g} must be in [0, 1)")
    if config.dropout is not None and not 0.0 <= config.dropout < 1.0:
        raise ElectraError(f"--dropout {config.dropout:g} must be in [0, 1)")
