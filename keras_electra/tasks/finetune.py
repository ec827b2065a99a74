"""The paper's fine-tuning recipe, as defaults of one function: `finetune(FinetuneConfig(...))`.

- LR 3e-4 Small (and tiny), 1e-4 Base, 5e-5 Large; layer-wise LR decay 0.8 (0.9 Large)
  with the official off-by-one fixed: head ×1, top block ×decay; `legacy_layerwise_decay=True`
  reproduces the official depths (head ×1, top block ×decay², embeddings ×decay^(n+2)).
- AdamW, ε 1e-6, weight decay 0, global-norm clipping 1.0, no Adam bias correction (the
  official optimiser; `adam_bias_correction=True` adds it); 10% linear warm-up then linear
  decay; batch 32; dropout 0.1.
- Epochs from the task registry (3; 10 for STS-B, RTE, table-regression; 2 for QA).
- MRPC and STS-B train on both sentence orders (the official `double_unordered`;
  `double_unordered=False` turns it off).
- `protocol="paper"` (default): a fixed number of epochs, the last checkpoint, and over
  several `seeds` the median dev score (the paper reports the median of 10 runs on GLUE dev).
  `protocol="best-dev"`: after each epoch the dev metric picks the best epoch's weights, and
  training stops early after `early_stopping_patience` epochs without progress.
- Options: label smoothing, FGM adversarial training, an ensemble over several seeds
  (probabilities averaged), LoRA / BitFit / frozen bottom layers, few-shot sampling.

Outputs (`output` directory): `model.keras` + `vocab.txt` + `tokenizer.json` + `task.json`
(the median seed's model under the paper protocol, else the best seed's), `results.json`
(metrics, full config, the resolved hyperparameters, data files), `training_curves.png`
and TensorBoard logs under `logs/`. An existing output is replaced only with `overwrite=True`;
a failed run removes the output directory it created.
"""

from __future__ import annotations

import collections
import dataclasses
import math
import os
import random
import shutil
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_electra.config import FINETUNING_PRESETS, PRESETS
from keras_electra.convert.resolve import resolve_optional
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import DataError, ElectraError, TrainingError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.pretraining.optimization import create_optimizer, layerwise_lr_multipliers
from keras_electra.tasks.base import MODEL_FILE, ElectraTask, load_pretrained_backbone, random_backbone
from keras_electra.tasks.peft import (
    AdaLoraOptions,
    PrefixOptions,
    apply_peft,
    model_for_saving,
    peft_callbacks,
    peft_optimizer_options,
    trainable_summary,
)
from keras_electra.tasks.registry import (
    TableSource,
    TaskSpec,
    detect_language,
    get_task,
    read_split,
    runners,
    table_labels,
    token_labels,
)
from keras_electra.utils.devices import resolve_jit_compile
from keras_electra.utils.io import atomic_file, output_lock, read_json, write_json

TASK_FILE = "task.json"
RESULTS_FILE = "results.json"
PLOT_FILE = "training_curves.png"
HIDDEN_TO_SIZE = {128: "tiny", 256: "small", 768: "base", 1024: "large"}
PROTOCOLS = ("paper", "best-dev")
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
    lower_case: bool = True
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
    dropout: float = 0.1
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
    head: str = "electra"
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
        "dropout": config.dropout,
        "seq_length": config.seq_length or spec.seq_length,
    }


# ------------------------------------------------------------------------ data
def subsample(examples: list, limit: int | None, seed: int) -> list:
    """At most `limit` examples, drawn with `seed`, in their original order."""
    if limit is None or limit >= len(examples):
        return examples
    if limit <= 0:
        raise DataError(f"cannot keep {limit} examples")
    keep = sorted(random.Random(seed).sample(range(len(examples)), limit))
    return [examples[i] for i in keep]


def few_shot(examples: list, per_class: int, seed: int) -> list:
    """`per_class` examples of every label (all of a label that has fewer), drawn with `seed`."""
    by_label: dict[str, list[int]] = {}
    for i, e in enumerate(examples):
        label = getattr(e, "label", None)
        if label is None:
            raise DataError(f"few-shot sampling needs labelled examples; {e.guid} has none")
        by_label.setdefault(str(label), []).append(i)
    rng = random.Random(seed)
    keep: list[int] = []
    for label in sorted(by_label):
        rows = by_label[label]
        keep += rows if len(rows) <= per_class else rng.sample(rows, per_class)
    return [examples[i] for i in sorted(keep)]


@dataclasses.dataclass
class TaskData:
    train: list
    dev: list
    test: list | None
    files: dict[str, list[str]]
    labels: list[str] | None
    language: str = "en"
    dev_source: str | None = None  # how dev was made when it is not a file of its own
    options: dict[str, Any] = dataclasses.field(default_factory=dict)  # task options the data implies


def hold_out(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, dev): a seeded `fraction` of `examples` held out as dev, both in their original order."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--dev-fraction {fraction} must be between 0 and 1")
    n_dev = max(1, round(len(examples) * fraction))
    if n_dev >= len(examples):
        raise DataError(f"cannot hold out a dev split from {len(examples)} example(s); give a separate dev file")
    dev = set(random.Random(seed).sample(range(len(examples)), n_dev))
    return [e for i, e in enumerate(examples) if i not in dev], [e for i, e in enumerate(examples) if i in dev]


def load_task_data(config: FinetuneConfig, spec: TaskSpec) -> TaskData:
    train_split, dev_split, test_split = spec.splits
    train_split = config.train_split or train_split
    dev_split = config.dev_split or dev_split
    test_split = config.test_split or test_split
    table = None
    if spec.dataset is None or (spec.kind == "token" and config.labels):
        table = TableSource(tuple(config.text_columns or ("text",)), config.label_column or "label",
                            labels=tuple(config.labels) if config.labels else None)
    elif config.labels:
        raise ElectraError(f"--labels: {spec.name} has a fixed label set; --labels applies to table and NER tasks")
    train, train_files = read_split(spec, config.data, train_split, table, config.tfds_data_dir)
    dev, dev_files = read_split(spec, config.data, dev_split, table, config.tfds_data_dir)
    dev_source = None
    if config.dev_split is None and _same_data(train, train_files, dev, dev_files):
        # One file holds no dev split (--data FILE): never score on the training data, hold some out instead.
        train, dev = hold_out(train, config.dev_fraction, config.seed)
        dev_source = (f"held out {len(dev)} of {len(train) + len(dev)} examples ({config.dev_fraction:g}) of "
                      f"{train_files[0]} with seed {config.seed}")
        print(f"{config.data} has no separate dev split: {dev_source}")
    test, test_files = (None, [])
    if config.evaluate_test and test_split:
        test, test_files = read_split(spec, config.data, test_split, table, config.tfds_data_dir)
    if not train:
        raise DataError(f"{config.data}: the {train_split} split of {spec.name} has no examples")
    if not dev:
        raise DataError(f"{config.data}: the {dev_split} split of {spec.name} has no examples")
    if config.train_examples_per_class:
        train = few_shot(train, config.train_examples_per_class, config.seed)
    train = subsample(train, config.max_train_examples, config.seed)
    if config.double_unordered and spec.name in DOUBLE_UNORDERED_TASKS:
        train = train + [dataclasses.replace(e, guid=f"{e.guid}-swapped", text_a=e.text_b, text_b=e.text_a)
                         for e in train if e.text_b is not None]
    dev = subsample(dev, config.max_eval_examples, config.seed)
    if test is not None:
        test = subsample(test, config.max_eval_examples, config.seed)
    labels = spec.labels
    if spec.dataset is None and spec.kind == "classification":
        labels = table_labels(train, table)
    elif spec.kind == "token" and (config.labels or labels is None):
        labels = token_labels(train + dev, config.labels)  # dev too: a tag seen only in dev must still score
    options: dict[str, Any] = {}
    if spec.kind == "choice" and spec.dataset == "choice":
        options["num_choices"] = max(len(e.choices) for e in train + dev + (test or []))
    # Absolute paths: `export --quantize int8` reads them from any working directory.
    files = {"train": _absolute(train_files), "dev": _absolute(dev_files)}
    if test_files:
        files["test"] = _absolute(test_files)
    # Generic tasks (and a fixed task given other tags with --labels) say what language the data is in.
    language = detect_language(train) if spec.language is None or config.labels else spec.language
    check_label_coverage(train, labels, spec, files["train"])
    return TaskData(train, dev, test, files, labels, language, dev_source, options)


def _absolute(files: list) -> list[str]:
    """Files as absolute paths; TFDS sources (strings such as "tfds:glue/sst2[train]") as they are."""
    return [str(Path(f).resolve()) if isinstance(f, Path) else str(f) for f in files]


def _same_data(train: list, train_files: list, dev: list, dev_files: list) -> bool:
    """Whether dev is the training data itself: the same files and the same examples (ids aside: GLUE
    prefixes them with the split). XQuAD's train and dev, two parts of one file, are not."""
    if train_files != dev_files or len(train) != len(dev):
        return False
    return all(dataclasses.astuple(a)[1:] == dataclasses.astuple(b)[1:] for a, b in zip(train, dev))


def check_label_coverage(train: list, labels: Sequence[str] | None, spec: TaskSpec, files: list[str]) -> None:
    """A classifier trained on one class learns nothing (it predicts that class): stop. A label
    without training examples can never be predicted: warn."""
    if spec.kind not in ("classification", "relation") or not labels:
        return
    counts = collections.Counter(str(e.label) for e in train if getattr(e, "label", None) is not None)
    where = ", ".join(files) or "the training data"
    if len(counts) == 1:
        raise DataError(f"{where}: every training example of {spec.name} has the label "
                        f"{next(iter(counts))!r}; a classifier needs at least two classes")
    missing = [label for label in labels if label not in counts]
    if missing:
        print(f"warning: {where}: no training examples for label(s) {', '.join(map(repr, missing))}; the "
              "model will never predict them", file=sys.stderr)


# --------------------------------------------------------------------- callbacks
class DevEvaluation(keras.callbacks.Callback):
    """After each epoch: the dev metrics (added to the logs as `dev_*`), best weights, early stopping."""

    def __init__(self, spec: TaskSpec, examples: list, batch_size: int, metric: str,
                 patience: int | None = None, keep_best: bool = True) -> None:
        super().__init__()
        self.keep_best = keep_best  # False (paper protocol): no early stopping, the last epoch is kept
        self.spec = spec
        self.examples = examples
        self.batch_size = batch_size
        self.metric = metric
        self.patience = patience
        self.best: float = -math.inf
        self.best_epoch: int | None = None
        self.best_weights: list | None = None
        self.best_predictions: dict | None = None
        self.history: list[dict[str, float]] = []
        self._wait = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(f"the training loss became {loss} in epoch {epoch + 1}; lower --learning-rate")
        runner = self.spec.runner
        predictions = runner.predict(self.model, self.examples, self.batch_size)
        scores = runner.score(self.spec.name, self.examples, predictions, self.model)
        flat = {k: float(v) for k, v in scores.items() if isinstance(v, int | float) and k not in ("total", "skipped")}
        for k, v in flat.items():
            logs[f"dev_{k}"] = v
        self.history.append({"epoch": epoch + 1, **flat})
        value = flat.get(self.metric)
        if value is None:
            raise ElectraError(f"dev metric {self.metric!r} is not among {sorted(flat)}")
        if not self.keep_best:
            self.best, self.best_epoch, self.best_predictions = value, epoch + 1, predictions
            return
        if value > self.best:
            self.best, self.best_epoch, self._wait = value, epoch + 1, 0
            self.best_weights = [np.array(w) for w in self.model.get_weights()]
            self.best_predictions = predictions
        else:
            self._wait += 1
            if self.patience and self._wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.keep_best and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars (`train/*` per step, `epoch/*` incl. dev metrics per epoch).

    Written with core `tf.summary.write` and the scalars plugin metadata, so the event
    files are the ones `tf.summary.scalar` writes, without needing the tensorboard package.
    """

    def __init__(self, log_dir: str | Path, every: int = 10) -> None:
        super().__init__()
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(log_dir))
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class=summary_pb2.DATA_CLASS_SCALAR,
        )
        self.every = every
        self._step = 0

    def _write(self, values: dict, prefix: str, step: int) -> None:
        with self._writer.as_default():
            for key, value in values.items():
                if isinstance(value, int | float | np.floating):
                    self._tf.summary.write(f"{prefix}/{key}", self._tf.constant(float(value)), step=step,
                                           metadata=self._metadata)

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._step += 1
        if logs and self._step % self.every == 0:
            lr = self.model.optimizer.learning_rate
            self._write({**logs, "learning_rate": float(keras.ops.convert_to_numpy(lr))}, "train", self._step)

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._write(logs or {}, "epoch", epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None) -> None:
        self._writer.close()


class StepLosses(keras.callbacks.Callback):
    """The running training loss after every step, for the curves."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.seconds: list[float] = []
        self._step = 0
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._step += 1
        self.seconds.append(time.perf_counter() - self._start)
        if logs and "loss" in logs:
            self.steps.append(self._step)
            self.losses.append(float(logs["loss"]))


# -------------------------------------------------------------------- one seed
def build_task_model(config: FinetuneConfig, spec: TaskSpec, labels: list[str] | None, seed: int,
                     seq_length: int) -> tuple[ElectraTask, ElectraTokenizer]:
    keras.utils.set_random_seed(seed)
    if config.prompt is not None:
        from keras_electra.tasks.prompting import build_prompt_model

        return build_prompt_model(config.init, config.prompt, config.label_words or (), labels, seq_length,
                                  config.text_columns or ())
    init = {"default_initializer": config.default_initializer} if config.default_initializer else {}
    if config.init == "random":
        backbone, tokenizer = random_backbone(config.preset or "small", config.vocab, config.lower_case, seed,
                                              **{"hidden_dropout": config.dropout, "attention_dropout": config.dropout,
                                                 **init, **config.model_overrides})
    else:
        backbone, tokenizer = load_pretrained_backbone(config.init)
        if config.default_initializer:  # the fresh head's init; the loaded weights are untouched
            backbone.default_initializer = config.default_initializer
    options = {**spec.options, **config.task_options, "dropout": config.dropout, "head": config.head,
               "label_smoothing": config.label_smoothing}
    model = spec.runner.build_model(backbone, tokenizer, seq_length, labels, options)
    model.adversarial_epsilon = float(config.fgm_epsilon)
    apply_peft(model, config.peft, config.freeze_layers, config.lora_rank, config.lora_alpha, config.adapter_size,
               AdaLoraOptions(**config.adalora_options), PrefixOptions(**config.prefix_options))
    return model, tokenizer


def train_one_seed(config: FinetuneConfig, spec: TaskSpec, data: TaskData, hp: dict, model: ElectraTask,
                   tokenizer: ElectraTokenizer, seed: int, log_dir: Path, tracker=None) -> dict[str, Any]:
    """Train one freshly built model with `seed`; keep its last epoch (paper) or its best dev epoch."""
    runner = spec.runner
    runner.check(data.train, model, "training data")
    runner.check(data.dev, model, "dev data")
    train_ds = runner.train_dataset(model, data.train, hp["batch_size"], seed)
    steps_per_epoch = int(train_ds.cardinality().numpy())
    if steps_per_epoch <= 0:
        raise DataError("the training data makes no batch; lower --batch-size")
    total_steps = steps_per_epoch * hp["epochs"]
    multipliers = layerwise_lr_multipliers(model.trainable_variables, model.backbone.num_layers,
                                           hp["layerwise_lr_decay"], legacy_off_by_one=hp["legacy_layerwise_decay"])
    warmup_steps = int(hp["warmup_fraction"] * total_steps)
    optimizer = create_optimizer(
        hp["learning_rate"], total_steps, warmup_steps,
        weight_decay_rate=hp["weight_decay"], epsilon=hp["adam_epsilon"], clip_norm=hp["clip_norm"],
        bias_correction=hp["adam_bias_correction"], lr_multipliers=multipliers, **peft_optimizer_options(model),
    )
    model.compile(optimizer=optimizer, jit_compile=resolve_jit_compile(config.jit_compile),
                  **runner.compile_args(model, {"label_smoothing": config.label_smoothing}))
    eval_batch = config.eval_batch_size or max(hp["batch_size"], 32)
    dev_eval = DevEvaluation(spec, data.dev, eval_batch, spec.metric, hp["early_stopping_patience"],
                             keep_best=hp["protocol"] == "best-dev")
    steps = StepLosses()
    callbacks = [dev_eval, steps, ScalarLogger(log_dir), *peft_callbacks(model, total_steps)]
    if tracker is not None:  # W&B (--wandb): the same scalars
        from keras_electra.utils.tracking import keras_callback

        callbacks.append(keras_callback(tracker, every=10))
    start = time.perf_counter()
    history = model.fit(train_ds, epochs=hp["epochs"], callbacks=callbacks, verbose=config.verbose, shuffle=False)
    seconds = time.perf_counter() - start
    # Step time without the first step of each compile (XLA compilation dominates it).
    timed = steps.seconds[1:] if len(steps.seconds) > 1 else steps.seconds
    result: dict[str, Any] = {
        "seed": seed,
        "best_epoch": dev_eval.best_epoch,
        "dev": {k: v for k, v in dev_eval.history[dev_eval.best_epoch - 1].items() if k != "epoch"},
        "dev_history": dev_eval.history,
        "train_history": {k: [float(x) for x in v] for k, v in history.history.items()},
        "step_losses": {"step": steps.steps, "loss": steps.losses},
        "steps_per_epoch": steps_per_epoch,
        "total_steps": total_steps,
        "warmup_steps": warmup_steps,
        "train_seconds": seconds,
        "median_step_seconds": float(np.median(timed)) if timed else None,
        **trainable_summary(model),
    }
    predictions = {"dev": dev_eval.best_predictions}
    if data.test is not None:
        runner.check(data.test, model, "test data")
        predictions["test"] = runner.predict(model, data.test, eval_batch)
        result["test"] = _flat(runner.score(spec.name, data.test, predictions["test"], model))
    return {"result": result, "model": model, "tokenizer": tokenizer, "predictions": predictions}


def _flat(scores: dict) -> dict[str, Any]:
    return {k: v for k, v in scores.items() if not isinstance(v, dict)} | (
        {"per_type": scores["per_type"]} if "per_type" in scores else {})


def average_predictions(runs: Sequence[dict]) -> dict[str, np.ndarray]:
    """Ensemble: the mean of the runs' scores (probabilities, or logits for QA); alignment is shared."""
    merged = dict(runs[0])
    merged["scores"] = np.mean([r["scores"] for r in runs], axis=0)
    return merged


# ----------------------------------------------------------------------- outputs
def save_task_model(model: ElectraTask, tokenizer: ElectraTokenizer, directory: Path, spec: TaskSpec,
                    extra: dict | None = None) -> None:
    """`model.keras` + tokenizer files + `task.json`, each written atomically."""
    directory.mkdir(parents=True, exist_ok=True)
    # A clean copy: no optimizer state in the file (3x smaller), (Ada)LoRA factors merged, prefixes folded.
    model = model_for_saving(model) or copy_model(model)
    with atomic_file(directory / MODEL_FILE) as tmp:
        target = tmp.with_name(tmp.name + ".keras")  # Keras insists on the suffix
        try:
            model.save(target)
            os.replace(target, tmp)
        finally:
            target.unlink(missing_ok=True)
    tokenizer.save_to_directory(directory)
    info = {
        "task": spec.name,
        "kind": spec.kind,
        "task_class": type(model).__name__,
        "labels": model.label_names,
        "seq_length": model.preprocessor.seq_length,
        "metric": spec.metric,
        **(extra or {}),
    }
    write_json(directory / TASK_FILE, info)


def copy_model(model: ElectraTask) -> ElectraTask:
    """The same architecture and weights, uncompiled."""
    fresh = model.__class__.from_config(model.get_config())
    fresh.set_weights(model.get_weights())
    return fresh


def plot_curves(path: Path, run: dict[str, Any], metric: str, title: str) -> None:
    """Training loss per step and per epoch, and the dev metric per epoch (matplotlib, Agg)."""
    import matplotlib
    import matplotlib.ticker

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_loss, ax_dev) = plt.subplots(1, 2, figsize=(11, 4))
    steps = run["step_losses"]
    if steps["step"]:
        ax_loss.plot(steps["step"], steps["loss"], lw=1, alpha=0.6, label="running epoch-mean loss (per step)")
    epoch_loss = run["train_history"].get("loss", [])
    spe = run["steps_per_epoch"]
    if epoch_loss:
        ax_loss.plot([spe * (i + 1) for i in range(len(epoch_loss))], epoch_loss, "o-", label="epoch loss")
    ax_loss.set_xlabel("step")
    ax_loss.set_ylabel("training loss")
    ax_loss.legend()
    ax_loss.grid(alpha=0.3)
    epochs = [h["epoch"] for h in run["dev_history"]]
    ax_dev.plot(epochs, [h[metric] for h in run["dev_history"]], "o-", color="C2", label=f"dev {metric}")
    if run.get("best_epoch"):
        ax_dev.axvline(run["best_epoch"], color="grey", ls="--", lw=1, label="kept epoch")
    ax_dev.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax_dev.set_xlabel("epoch")
    ax_dev.set_ylabel(f"dev {metric}")
    ax_dev.legend()
    ax_dev.grid(alpha=0.3)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_file(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110)
    plt.close(fig)


def finetune(config: FinetuneConfig) -> dict[str, Any]:
    """Fine-tune, evaluate and save; returns the content of `results.json`.

    One run per output directory: a second run on the same `--output` stops at once.
    """
    with output_lock(config.output):
        return _checked_finetune(config)


def _checked_finetune(config: FinetuneConfig) -> dict[str, Any]:
    """Validate the options, output and data; train, or remove the output this run created."""
    spec = get_task(config.task)
    if config.prompt is not None:
        from keras_electra.tasks.prompting import prompt_spec

        spec = prompt_spec(spec, config)
    if config.protocol not in PROTOCOLS:
        raise ElectraError(f"unknown protocol {config.protocol!r}; choose from {', '.join(PROTOCOLS)}")
    output = Path(config.output)
    check_output(output, config.overwrite)  # before any download or data reading
    if config.init != "random":  # a name (HF id, keras-hub preset, TF1 release) -> a local path
        config = dataclasses.replace(config, init=resolve_optional(config.init))
    if config.init != "random" and not Path(config.init).exists() and not Path(f"{config.init}.index").exists():
        raise ElectraError(f"--init {config.init}: no such checkpoint (or pass --init random)")
    if config.model_overrides and config.init != "random":
        raise ElectraError(f"--config {', '.join(config.model_overrides)}: changes the network of --init random "
                           f"only; {config.init} brings its own")
    data = load_task_data(config, spec)
    if data.options:
        config = dataclasses.replace(config, task_options={**data.options, **config.task_options})
    created = not output.exists()
    try:
        return _train_and_save(config, spec, data, output)
    except BaseException:
        if created:  # a failed run leaves no half-written output behind
            shutil.rmtree(output, ignore_errors=True)
        raise


def check_output(output: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier run's outputs unless `overwrite`; then clear its logs."""
    if output.exists() and not output.is_dir():
        raise ElectraError(f"--output {output} is a file, not a directory")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise ElectraError(f"--output {output} already exists and is not empty; pass --overwrite to replace it "
                               "or choose another directory")
        shutil.rmtree(output / "logs", ignore_errors=True)  # old TensorBoard runs would mix with the new ones


def _train_and_save(config: FinetuneConfig, spec: TaskSpec, data: TaskData, output: Path) -> dict[str, Any]:
    output.mkdir(parents=True, exist_ok=True)

    from keras_electra.utils import tracking

    runs, trackers = [], []
    hp: dict[str, Any] = {}
    seq_length = config.seq_length or spec.seq_length
    for seed in config.seed_list():
        model, tokenizer = build_task_model(config, spec, data.labels, seed, seq_length)
        if seq_length > model.backbone.max_position_embeddings:
            raise ElectraError(f"--seq-length {seq_length} exceeds the model's "
                               f"{model.backbone.max_position_embeddings} positions")
        hp = hp or resolve_hyperparameters(config, spec, model.backbone)  # LR defaults follow the model size
        run_config = {**dataclasses.asdict(config), "seed": seed, "hyperparameters": hp}
        trackers.append(tracking.start(config.wandb, run_config, output / "logs", name=f"{output.name}-seed{seed}",
                                       job_type="finetune"))
        runs.append(train_one_seed(config, spec, data, hp, model, tokenizer, seed, output / "logs" / f"seed_{seed}",
                                   tracker=trackers[-1]))
        # The schedule actually used (the same for every seed: the data and batch size are).
        hp.update({k: runs[-1]["result"][k] for k in ("steps_per_epoch", "total_steps", "warmup_steps")})

    metric = spec.metric
    dev_values = [r["result"]["dev"][metric] for r in runs]
    if config.protocol == "paper":
        # The paper reports the median over seeds; the saved model is the median run's (the lower
        # median for an even number of seeds), not a dev-selected one.
        order = sorted(range(len(runs)), key=lambda i: dev_values[i])
        best_run = runs[order[(len(runs) - 1) // 2]]
    else:
        best_run = max(runs, key=lambda r: r["result"]["dev"][metric])
    model, tokenizer = best_run["model"], best_run["tokenizer"]
    results: dict[str, Any] = {
        "task": spec.name,
        "description": spec.description,
        "metric": metric,
        "protocol": config.protocol,
        "dev": best_run["result"]["dev"],
        "median": {"dev": float(np.median(dev_values)), "seeds": [r["result"]["seed"] for r in runs],
                   "values": dev_values},
        "best_epoch": best_run["result"]["best_epoch"],  # under the paper protocol: the last epoch
        "best_seed": best_run["result"]["seed"],  # the saved model's seed
        "runs": [r["result"] for r in runs],
        "hyperparameters": hp,
        "config": dataclasses.asdict(config),
        "init": config.init,
        "data_files": data.files,
        **({"dev_source": data.dev_source} if data.dev_source else {}),
        "language": data.language,
        "num_examples": {"train": len(data.train), "dev": len(data.dev),
                         **({"test": len(data.test)} if data.test is not None else {})},
        "labels": data.labels,
    }
    if "test" in best_run["result"]:
        results["test"] = best_run["result"]["test"]
    if len(runs) > 1:
        ensemble = {}
        for split, examples in (("dev", data.dev), ("test", data.test)):
            if examples is None:
                continue
            merged = average_predictions([r["predictions"][split] for r in runs])
            ensemble[split] = _flat(spec.runner.score(spec.name, examples, merged, model))
        results["ensemble"] = ensemble
        results["seed_summary"] = {"mean": float(np.mean(dev_values)), "std": float(np.std(dev_values)),
                                   "median": float(np.median(dev_values)), "values": dev_values}

    table = {"text_columns": list(config.text_columns or ("text",)), "label_column": config.label_column or "label"} \
        if spec.dataset is None else {}
    save_task_model(model, tokenizer, output, spec, {
        "language": data.language, "init": config.init, "best_seed": results["best_seed"],
        "hyperparameters": hp, "data_files": data.files, **table,
    })
    epoch_label = "best epoch" if config.protocol == "best-dev" else "last epoch"
    plot_curves(output / PLOT_FILE, best_run["result"], metric,
                f"{spec.name}: {metric} {results['dev'][metric]:.4f} ({epoch_label} {results['best_epoch']}, "
                f"seed {results['best_seed']})")
    results["outputs"] = {"model": str(output / MODEL_FILE), "plot": str(output / PLOT_FILE),
                          "logs": str(output / "logs")}
    write_json(output / RESULTS_FILE, results)
    for run, tracker in zip(runs, trackers):
        if tracker is not None:
            tracker.finish({**{k: v for k, v in results.items() if k not in ("runs", "config")},
                            "seed_result": {k: v for k, v in run["result"].items() if k not in
                                            ("dev_history", "train_history", "step_losses")}})
    return results


# ---------------------------------------------------------------------- loading
def load_task(model_dir: str | Path, task: str | None = None) -> tuple[ElectraTask, dict[str, Any]]:
    """A fine-tuned model → (task model with its preprocessor, task.json or {}).

    Read by `keras_electra.convert.read_checkpoint` (the one entry point): a directory
    written by `keras-electra finetune`, or any checkpoint with a fine-tuned ELECTRA task
    head (a Hugging Face `ElectraForSequenceClassification`, ...), which needs `task`.
    """
    from keras_electra.convert.api import read_checkpoint

    runners()  # imports (and so registers) every task class
    checkpoint = read_checkpoint(model_dir)
    if checkpoint.model is None:
        return _task_from_checkpoint(checkpoint, task), {}
    model = checkpoint.model
    info: dict[str, Any] = {}
    info_file = checkpoint.path / TASK_FILE
    if info_file.is_file():
        info = read_json(info_file)  # a truncated task.json is one line naming it
    if not isinstance(model, ElectraTask):
        raise ElectraError(f"{checkpoint.path / MODEL_FILE} is a {type(model).__name__}, not a fine-tuned task "
                           f"model (fine-tune it first: keras-electra finetune --init {model_dir})")
    if model.preprocessor is None:
        raise ElectraError(f"{checkpoint.path / MODEL_FILE} has no preprocessor; it cannot take raw text")
    return model, info


def _task_from_checkpoint(checkpoint, task: str | None) -> ElectraTask:
    """A task model filled, head included, from a converted-format checkpoint with a fine-tuned head."""
    from keras_electra.convert.api import _is_task, load_into, tokenizer_from_checkpoint

    where = checkpoint.path
    if not _is_task(checkpoint):
        raise ElectraError(f"{where} holds no fine-tuned task head ({checkpoint.describe()}); fine-tune it first: "
                           f"keras-electra finetune --init {where}")
    if not task:
        raise ElectraError(f"{where} is a {checkpoint.architecture or 'task'} checkpoint: name its task with --task")
    spec = get_task(task)
    tokenizer = tokenizer_from_checkpoint(checkpoint)
    if tokenizer is None:
        raise ElectraError(f"{where} has no vocab.txt; the checkpoint must come with its vocabulary")
    labels = spec.labels and list(spec.labels)
    id2label = checkpoint.raw_config.get("id2label") or {}
    names = [str(id2label[k]) for k in sorted(id2label, key=int)]
    if labels and names and sorted(names) == sorted(labels):
        labels = names  # the checkpoint's own order
    elif labels and names and len(names) != len(labels):
        raise ElectraError(f"{where}: {len(names)} labels in config.json, but {spec.name} has {len(labels)}")
    elif not labels and names:
        labels = names  # a table task: the checkpoint's labels are the label set
    # Generic LABEL_i names: the task's labels in id order (transformers' convention).
    backbone = ElectraBackbone.from_electra_config(checkpoint.config, name="backbone")
    head = "huggingface" if checkpoint.has("classifier/out_proj/") or checkpoint.has("sequence_summary/") else None
    options = {**spec.options, **({"head": head} if head else {})}
    seq_length = min(spec.seq_length, checkpoint.config.max_position_embeddings)
    model = spec.runner.build_model(backbone, tokenizer, seq_length, labels, options)
    load_into(model, checkpoint)
    return model


def evaluate(model_dir: str | Path, task: str | None, data: str, split: str = "dev",
             max_examples: int | None = None, batch_size: int = 32, seed: int = 0,
             table: TableSource | None = None, tfds_data_dir: str | None = None) -> dict[str, Any]:
    """Scores of a fine-tuned model on one split of a task's data (`data` may be "tfds:NAME").

    `model_dir` may also be an export (a SavedModel, `.tflite` or `.onnx` written by
    `keras-electra export`): the same runner scores it through `keras_electra.export.predictor`.
    """
    exported = _load_exported(model_dir)
    model, info = exported if exported is not None else load_task(model_dir, task)
    spec = get_task(task or info.get("task", ""))
    if info.get("kind") == "prompt":  # scored through its template (tasks/prompting.py)
        spec = dataclasses.replace(spec, kind="prompt")
    if spec.dataset is None:  # the training columns, unless the user gives others
        recorded = TableSource.recorded(info.get("source") or model_dir) or TableSource()
        table = recorded if table is None else dataclasses.replace(
            table, text_columns=table.text_columns or recorded.text_columns,
            label_column=table.label_column or recorded.label_column)
    examples, files = read_split(spec, data, split, table, tfds_data_dir)
    if not examples:
        raise DataError(f"{data}: the {split} split of {spec.name} has no examples")
    examples = subsample(examples, max_examples, seed)
    runner = spec.runner
    runner.check(examples, model, f"{split} data")
    predictions = runner.predict(model, examples, batch_size)
    scores = _flat(runner.score(spec.name, examples, predictions, model))
    return {"task": spec.name, "split": split, "metric": spec.metric, "scores": scores,
            "num_examples": len(examples), "data_files": [str(f) for f in files], "model": str(model_dir)}


def _load_exported(path: str | Path) -> tuple[Any, dict[str, Any]] | None:
    """(a model view the runners score, {"task", "source"}) for an exported model, else None."""
    path = Path(path)
    is_file = path.is_file() and path.suffix.lower() in (".tflite", ".onnx")
    if not is_file:
        from keras_electra.export.onnx import is_saved_model

        if not (path.is_dir() and not (path / MODEL_FILE).exists() and is_saved_model(path)):
            return None
    from keras_electra.export.predictor import Predictor, _ModelView

    predictor = Predictor.load(path)
    if predictor.backend.takes_text:
        raise ElectraError(f"{path} takes raw text (a string-in TFLite model); evaluate its token-ids export")
    return _ModelView(predictor), {"task": predictor.info.task or "", "source": predictor.info.source}


def model_presets() -> list[str]:
    return list(PRESETS)
