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

import dataclasses
import shutil
import time
from pathlib import Path
from typing import Any

import keras
import numpy as np

from keras_electra.convert.resolve import resolve_optional
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import DataError, ElectraError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.optimization import create_optimizer, layerwise_lr_multipliers
from keras_electra.tasks.augmentation import augment_hook
from keras_electra.tasks.base import MODEL_FILE, ElectraTask, load_pretrained_backbone, random_backbone
from keras_electra.tasks.callbacks import DevEvaluation, ScalarLogger, StepLosses
from keras_electra.tasks.outputs import (
    PLOT_FILE,
    RESULTS_FILE,
    average_predictions,
    check_output,
    flat_scores,
    load_finetuned,
    plot_curves,
    save_task_model,
)
from keras_electra.tasks.peft import (
    AdaLoraOptions,
    PrefixOptions,
    apply_peft,
    peft_callbacks,
    peft_optimizer_options,
    trainable_summary,
)
from keras_electra.tasks.recipe import (
    DEFAULT_DROPOUT,
    PROTOCOLS,
    FinetuneConfig,
    check_task_options,
    resolve_hyperparameters,
)
from keras_electra.tasks.registry import TableSource, TaskSpec, get_task, read_split
from keras_electra.tasks.task_data import TaskData, load_task_data, subsample
from keras_electra.utils.devices import resolve_jit_compile
from keras_electra.utils.io import output_lock, write_json

__all__ = ["FinetuneConfig", "build_task_model", "evaluate", "finetune", "train_one_seed"]


# -------------------------------------------------------------------- one seed
def build_task_model(config: FinetuneConfig, spec: TaskSpec, labels: list[str] | None, seed: int,
                     seq_length: int) -> tuple[ElectraTask, ElectraTokenizer]:
    keras.utils.set_random_seed(seed)
    if config.prompt is not None:
        from keras_electra.tasks.prompting import build_prompt_model

        return build_prompt_model(config.init, config.prompt, config.label_words or (), labels, seq_length,
                                  config.text_columns or ())
    init = {"default_initializer": config.default_initializer} if config.default_initializer else {}
    dropout = DEFAULT_DROPOUT if config.dropout is None else config.dropout
    if config.init == "random":
        backbone, tokenizer = random_backbone(config.preset or "small", config.vocab, config.lower_case, seed,
                                              **{"hidden_dropout": dropout, "attention_dropout": dropout,
                                                 **init, **config.model_overrides})
    else:
        backbone, tokenizer = load_pretrained_backbone(config.init)
        if config.dropout is not None:  # an explicit --dropout applies to the encoder too, not just the head
            backbone = with_dropout(backbone, config.dropout)
        if config.default_initializer:  # the fresh head's init; the loaded weights are untouched
            backbone.default_initializer = config.default_initializer
    options = {**spec.options, **config.task_options, "dropout": dropout,
               **({"head": config.head} if config.head else {}), "label_smoothing": config.label_smoothing}
    model = spec.runner.build_model(backbone, tokenizer, seq_length, labels, options)
    model.adversarial_epsilon = float(config.fgm_epsilon)
    apply_peft(model, config.peft, config.freeze_layers, config.lora_rank, config.lora_alpha, config.adapter_size,
               AdaLoraOptions(**config.adalora_options), PrefixOptions(**config.prefix_options))
    return model, tokenizer


def with_dropout(backbone: ElectraBackbone, rate: float) -> ElectraBackbone:
    """`backbone` with its hidden and attention dropout set to `rate` (rebuilt; the same weights)."""
    if backbone.hidden_dropout == rate and backbone.attention_dropout == rate:
        return backbone
    fresh = ElectraBackbone.from_config({**backbone.get_config(), "hidden_dropout": rate, "attention_dropout": rate})
    fresh.set_weights(backbone.get_weights())
    return fresh


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
        result["test"] = flat_scores(runner.score(spec.name, data.test, predictions["test"], model))
    return {"result": result, "model": model, "tokenizer": tokenizer, "predictions": predictions}


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
    if config.init != "random" and (config.vocab or config.lower_case is not None):
        raise ElectraError(f"--vocab, --cased and --uncased make the tokenizer of --init random only; {config.init} "
                           "brings its own vocabulary and casing")
    check_task_options(config, spec)
    data = load_task_data(config, spec, augment=augment_hook(config, spec))  # --augment: None when off
    if data.options:
        config = dataclasses.replace(config, task_options={**data.options, **config.task_options})
    created = not output.exists()
    try:
        return _train_and_save(config, spec, data, output)
    except BaseException:
        if created:  # a failed run leaves no half-written output behind
            shutil.rmtree(output, ignore_errors=True)
        raise


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
        if not hp:
            hp = resolve_hyperparameters(config, spec, model.backbone)  # LR defaults follow the model size
            # The head actually built (--head unset: the task's default; NER: --tagging-head).
            hp["head"] = getattr(model, "head", None) or getattr(model, "tagging_head", None)
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
        **({"augmentation": data.augmentation} if data.augmentation else {}),
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
            ensemble[split] = flat_scores(spec.runner.score(spec.name, examples, merged, model))
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


def evaluate(model_dir: str | Path, task: str | None, data: str, split: str = "dev",
             max_examples: int | None = None, batch_size: int = 32, seed: int = 0,
             table: TableSource | None = None, tfds_data_dir: str | None = None) -> dict[str, Any]:
    """Scores of a fine-tuned model on one split of a task's data (`data` may be "tfds:NAME").

    `model_dir` may also be an export (a SavedModel, `.tflite` or `.onnx` written by
    `keras-electra export`): the same runner scores it through `keras_electra.export.predictor`.
    """
    exported = _load_exported(model_dir)
    model, info = exported if exported is not None else load_finetuned(model_dir, task)
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
    scores = flat_scores(runner.score(spec.name, examples, predictions, model))
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
