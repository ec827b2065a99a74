"""The data of one fine-tuning run: splits read, dev held out where there is none, sampled, labelled."""

from __future__ import annotations

import collections
import dataclasses
import random
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from keras_electra.errors import DataError, ElectraError
from keras_electra.tasks.recipe import DOUBLE_UNORDERED_TASKS, FinetuneConfig
from keras_electra.tasks.registry import (
    TableSource,
    TaskSpec,
    detect_language,
    read_split,
    table_labels,
    token_labels,
)


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
    augmentation: dict[str, Any] | None = None  # --augment: its settings and what it added to train


def hold_out(examples: list, fraction: float, seed: int) -> tuple[list, list]:
    """(train, dev): a seeded `fraction` of `examples` held out as dev, both in their original order."""
    if not 0.0 < fraction < 1.0:
        raise DataError(f"--dev-fraction {fraction} must be between 0 and 1")
    n_dev = max(1, round(len(examples) * fraction))
    if n_dev >= len(examples):
        raise DataError(f"cannot hold out a dev split from {len(examples)} example(s); give a separate dev file")
    dev = set(random.Random(seed).sample(range(len(examples)), n_dev))
    return [e for i, e in enumerate(examples) if i not in dev], [e for i, e in enumerate(examples) if i in dev]


def load_task_data(config: FinetuneConfig, spec: TaskSpec,
                   augment: Callable[[list], tuple[list, dict[str, Any]]] | None = None) -> TaskData:
    """The task's splits. `augment` (`--augment`) adds copies to the sampled training examples only."""
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
    augmentation = None
    if augment is not None:  # before MRPC's swapped orders, so that the copies get them too
        originals = len(train)
        train, augmentation = augment(train)
        augmentation = {**augmentation, "original_examples": originals, "augmented_examples": len(train)}
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
    return TaskData(train, dev, test, files, labels, language, dev_source, options, augmentation)


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

