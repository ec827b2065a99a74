"""What every export format shares.

- `load_for_export(path)`: a fine-tuned model directory (`model.keras` + tokenizer files +
  `task.json`) → the task model and an `ExportInfo`.
- `ExportInfo`: everything a SavedModel, TFLite or ONNX file must carry so that it can be
  used without `model.keras`: the task, labels, sequence length, tokenizer settings and the
  preprocessor's config. The vocabulary travels beside it (`vocab.txt`).
- `rebuild_preprocessor(info, vocabulary)`: the task's own preprocessor, rebuilt from that.
- `slim_model(model, keep_layers)`: drop the top transformer layers.
- `tracked_variables(model)`: the `tf.Variable`s behind a Keras 3 model (see the note there).
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras

from keras_electra.errors import ExportError

METADATA_NAME = "keras_electra"  # TFLite metadata entry / ONNX metadata key / SavedModel assets.extra file stem
METADATA_FILE = "keras_electra.json"
VOCAB_METADATA = "vocab.txt"
LABELS_METADATA = "labels.txt"
FORMAT_VERSION = 2  # the newest this code reads; 2: QA exports of the "electra" head (beam outputs)
MODEL_KEYS = ("token_ids", "segment_ids", "padding_mask")
SERVING_SIGNATURE = "serving_default"
IDS_SIGNATURE = "token_ids"
# FORMATS and QUANTIZATIONS live in the CLI module, which must not import Keras (`--help` stays fast).
from keras_electra.export.cli import FORMATS, QUANTIZATIONS  # noqa: E402,F401

# The raw inputs of `serving_default` per task type, in call order.
TEXT_INPUTS = {
    "classification": ("text",),
    "classification_pair": ("text_a", "text_b"),
    "regression": ("text",),
    "regression_pair": ("text_a", "text_b"),
    "token_classification": ("text",),
    "relation_classification": ("text",),
    "question_answering": ("question", "context"),
    "multiple_choice": ("context", "question", "choices"),
}


@dataclasses.dataclass
class ExportInfo:
    """The task side of an exported model: how to turn text into its inputs and logits into answers.

    task_type: "classification", "regression", "token_classification", "question_answering",
        "relation_classification" or "multiple_choice".
    pair: classification/regression on sentence pairs (`serving_default` takes `text_a`, `text_b`).
    seq_length: the fixed sequence length of the exported model.
    preprocessor: {"class_name", "config"} of the task preprocessor, without its tokenizer.
    tokenizer: {"lower_case", "strip_accents"}.
    decoding: task options the answers depend on (QA: n_best, max_answer_length,
        null_score_threshold, allow_no_answer, head, beam_size; an export without "head"
        predates the "electra" QA head and has Hugging Face span logits).
    num_choices: multiple choice only.
    """

    task_type: str
    model_class: str
    labels: list[str] | None
    seq_length: int
    pair: bool
    preprocessor: dict[str, Any]
    tokenizer: dict[str, Any]
    decoding: dict[str, Any] = dataclasses.field(default_factory=dict)
    num_choices: int | None = None
    num_layers: int | None = None
    task: str | None = None
    source: str | None = None
    format_version: int = 1  # 1 unless the outputs need a newer reader (see export_info)

    @property
    def text_inputs(self) -> tuple[str, ...]:
        key = f"{self.task_type}_pair" if self.pair else self.task_type
        return TEXT_INPUTS[key]

    @property
    def model_input_shape(self) -> tuple[int | None, ...]:
        """Shape of each of token_ids / segment_ids / padding_mask (batch first)."""
        if self.task_type == "multiple_choice":
            return (None, self.num_choices, self.seq_length)
        return (None, self.seq_length)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, values: dict[str, Any], source: str = "metadata") -> ExportInfo:
        known = {f.name for f in dataclasses.fields(cls)}
        missing = [f.name for f in dataclasses.fields(cls)
                   if f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
                   and f.name not in values]
        if missing:
            raise ExportError(f"{source}: export metadata lacks {', '.join(missing)}")
        version = values.get("format_version", 1)
        if version > FORMAT_VERSION:
            raise ExportError(f"{source}: export metadata version {version} is newer than this keras_electra "
                              f"({FORMAT_VERSION}); upgrade keras_electra")
        return cls(**{k: v for k, v in values.items() if k in known})

    @classmethod
    def from_json(cls, text: str | bytes, source: str = "metadata") -> ExportInfo:
        try:
            values = json.loads(text)
        except json.JSONDecodeError as err:
            raise ExportError(f"{source}: export metadata is not valid JSON: {err}") from None
        return cls.from_dict(values, source)


# ----------------------------------------------------------------------- loading
def load_for_export(path: str | Path, pair: bool | None = None) -> tuple[keras.Model, ExportInfo]:
    """(task model, its ExportInfo) from a fine-tuned model directory or a `.keras` file.

    pair: whether a classifier takes sentence pairs; None reads it from `task.json`
    (the task's dataset has a second text column).
    """
    from keras_electra.tasks.outputs import load_finetuned

    path = Path(path)
    if not path.is_dir() and not (path.is_file() and path.suffix == ".keras"):
        raise ExportError(f"model directory not found: {path}")
    model, task_json = load_finetuned(path)  # a `.keras` file: with the task.json beside it
    return model, export_info(model, task_json, pair=pair, source=str(path.resolve()))


def export_info(model: keras.Model, task_json: dict | None = None, pair: bool | None = None,
                seq_length: int | None = None, source: str | None = None) -> ExportInfo:
    """The ExportInfo of a task model (an `ElectraTask` with its preprocessor)."""
    task_json = task_json or {}
    task_type = getattr(model, "task_type", None)
    if task_type == "prompt_classification":
        # Its template is filled once per label word in Python (PromptPreprocessor), not in a graph yet.
        raise ExportError("cannot export a prompt classifier (finetune --prompt / zero-shot): its template "
                          "filling runs in Python; serve it with `keras-electra predict`")
    if task_type not in ("classification", "token_classification", "question_answering",
                         "relation_classification", "multiple_choice"):
        raise ExportError(f"cannot export a {type(model).__name__}: not a keras_electra task model")
    preprocessor = getattr(model, "preprocessor", None)
    if preprocessor is None:
        raise ExportError(f"the {type(model).__name__} has no preprocessor, so raw text cannot be exported with it")
    if task_type == "classification" and getattr(model, "num_classes", 2) == 1:
        task_type = "regression"
    if pair is None:
        pair = task_type in ("classification", "regression") and _task_takes_pairs(task_json)
    config = dict(preprocessor.get_config())
    config.pop("tokenizer", None)
    tokenizer = preprocessor.tokenizer
    if seq_length is not None:
        config["seq_length"] = int(seq_length)
    decoding = {}
    if task_type == "question_answering":
        decoding = dict(model.decoding)
    return ExportInfo(
        task_type=task_type,
        model_class=type(model).__name__,
        labels=list(model.label_names) if model.label_names is not None else None,
        seq_length=int(config["seq_length"]),
        pair=bool(pair),
        preprocessor={"class_name": keras.saving.get_registered_name(type(preprocessor)), "config": config},
        tokenizer={"lower_case": tokenizer.lower_case, "strip_accents": tokenizer.strip_accents},
        decoding=decoding,
        num_choices=getattr(model, "num_choices", None) if task_type == "multiple_choice" else None,
        num_layers=int(model.backbone.num_layers),
        task=task_json.get("task"),
        source=source,
        # A reader older than the "electra" QA head would decode its beam as span logits: refuse instead.
        format_version=2 if decoding.get("head") == "electra" else 1,
    )


def _task_takes_pairs(task_json: dict) -> bool:
    from keras_electra.tasks.registry import takes_pairs

    return takes_pairs(task_json)


def rebuild_preprocessor(info: ExportInfo, vocabulary: Sequence[str]):
    """The task preprocessor described by `info`, on a tokenizer of `vocabulary`."""
    from keras_electra.data.tokenizer import build_tokenizer
    from keras_electra.saving import register_all

    register_all()
    cls = keras.saving.get_registered_object(info.preprocessor["class_name"])
    if cls is None:
        raise ExportError(f"unknown preprocessor {info.preprocessor['class_name']!r} in the export metadata")
    tokenizer = build_tokenizer(list(vocabulary), **info.tokenizer)
    config = dict(info.preprocessor["config"])
    config["seq_length"] = info.seq_length
    return cls(tokenizer, **config)


def with_seq_length(model: keras.Model, seq_length: int | None) -> Any:
    """The model's preprocessor, or a copy of it that packs to `seq_length`."""
    preprocessor = model.preprocessor
    if seq_length is None or seq_length == preprocessor.seq_length:
        return preprocessor
    positions = model.backbone.max_position_embeddings
    if not 4 <= seq_length <= positions:
        raise ExportError(f"--max-seq-len {seq_length} must be between 4 and the model's {positions} positions")
    config = dict(preprocessor.get_config())
    config.pop("tokenizer", None)
    config["seq_length"] = int(seq_length)
    try:
        return type(preprocessor)(preprocessor.tokenizer, **config)
    except ValueError as err:
        raise ExportError(f"--max-seq-len {seq_length}: {err}") from None


# ----------------------------------------------------------------------- variables
def tracked_variables(model: keras.Model) -> list:
    """The `tf.Variable`s behind a Keras 3 model's weights.

    A `tf.Module` that holds only the Keras model saves fine, but the TFLite converter then
    keeps the weights as uninitialised resource variables (VAR_HANDLE / READ_VARIABLE ops,
    NaN outputs). Tracking the underlying variables directly lets it freeze them into constants.
    """
    return [w.value for w in model.weights]


# ----------------------------------------------------------------------- slimming
def slim_model(model: keras.Model, keep_layers: int) -> keras.Model:
    """A copy of a task model that keeps only its bottom `keep_layers` transformer layers.

    Embeddings, the kept layers and the task head keep their fine-tuned weights; the top
    layers are dropped (the "drop the top layers" pruning of the deployment recipe).
    """
    num_layers = model.backbone.num_layers
    if not 1 <= keep_layers <= num_layers:
        raise ExportError(f"--keep-layers {keep_layers} must be between 1 and the model's {num_layers} layers")
    if keep_layers == num_layers:
        return model
    config = model.get_config()
    backbone_config = config["backbone"]
    inner = backbone_config.get("config", backbone_config)
    inner["num_layers"] = int(keep_layers)
    slim = type(model).from_config(config)
    source = model.canonical_weights()
    for name, variable in slim.canonical_weights().items():
        variable.assign(source[name])
    # Weights outside the checkpoint names (prefix-tuning prefixes, adapters) of the kept layers, by path.
    extra = {v.path: v for v in model.weights if "prefix_" in v.path or "_adapter/" in v.path}
    for variable in slim.weights:
        if variable.path in extra:
            variable.assign(extra[variable.path])
    return slim



