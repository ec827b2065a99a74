"""What a fine-tuning run writes (`model.keras`, tokenizer files, `task.json`, the curves) and reads back.

`load_finetuned` is the inverse of `save_task_model`: a fine-tuned model directory (or a converted
checkpoint with a fine-tuned head) -> the task model with its preprocessor, and task.json.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import ElectraError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks.base import MODEL_FILE, ElectraTask
from keras_electra.tasks.peft import model_for_saving
from keras_electra.tasks.registry import TaskSpec, get_task
from keras_electra.utils.io import atomic_file, read_json, write_json

TASK_FILE = "task.json"
RESULTS_FILE = "results.json"
PLOT_FILE = "training_curves.png"


def flat_scores(scores: dict) -> dict[str, Any]:
    """The scalar scores (nested breakdowns dropped), `per_type` kept."""
    return {k: v for k, v in scores.items() if not isinstance(v, dict)} | (
        {"per_type": scores["per_type"]} if "per_type" in scores else {})


def average_predictions(runs: Sequence[dict]) -> dict[str, np.ndarray]:
    """Ensemble: the mean of the runs' scores (probabilities, or logits for QA); alignment is shared."""
    merged = dict(runs[0])
    merged["scores"] = np.mean([r["scores"] for r in runs], axis=0)
    return merged



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



def check_output(output: Path, overwrite: bool) -> None:
    """Refuse to replace an earlier run's outputs unless `overwrite`; then clear its logs."""
    if output.exists() and not output.is_dir():
        raise ElectraError(f"--output {output} is a file, not a directory")
    if output.is_dir() and any(output.iterdir()):
        if not overwrite:
            raise ElectraError(f"--output {output} already exists and is not empty; pass --overwrite to replace it "
                               "or choose another directory")
        shutil.rmtree(output / "logs", ignore_errors=True)  # old TensorBoard runs would mix with the new ones


def load_finetuned(model_dir: str | Path, task: str | None = None) -> tuple[ElectraTask, dict[str, Any]]:
    """A fine-tuned model → (task model with its preprocessor, task.json or {}).

    Read by `keras_electra.convert.read_checkpoint` (the one entry point): a directory
    written by `keras-electra finetune`, or any checkpoint with a fine-tuned ELECTRA task
    head (a Hugging Face `ElectraForSequenceClassification`, ...), which needs `task`.
    """
    from keras_electra.convert.api import read_checkpoint

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

