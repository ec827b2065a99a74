"""Task name → dataset reader, runner (task model + pipeline), dev metric and paper defaults.

Epochs follow the paper (Table 7 and its appendix): 3, except 10 for the small-data and
regression tasks it names (RTE, STS-B) and 2 for SQuAD. The dev metric picks the best
checkpoint: Spearman for STS-B, MCC for CoLA, accuracy for the other GLUE tasks (the
paper's choice), entity F1 for NER, F1 for QA, the official macro-F1 for SemEval.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path
from typing import Any

from keras_electra.data import readers
from keras_electra.errors import DataError


@functools.cache
def runners() -> dict:
    """kind → TaskRunner. Imported lazily: the CLI parser must not pay for TensorFlow."""
    from keras_electra.tasks.classifier import ClassificationRunner, RegressionRunner
    from keras_electra.tasks.multiple_choice import MultipleChoiceRunner
    from keras_electra.tasks.question_answerer import QuestionAnsweringRunner
    from keras_electra.tasks.relation_classifier import RelationRunner
    from keras_electra.tasks.token_classifier import TokenClassificationRunner

    return {r.kind: r for r in (ClassificationRunner(), RegressionRunner(), TokenClassificationRunner(),
                                QuestionAnsweringRunner(), MultipleChoiceRunner(), RelationRunner())}


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    """A fine-tuning task.

    dataset: the reader name (`keras_electra.data.readers`), None for generic tables.
    kind: the runner ("classification", "regression", "token", "qa", "choice", "relation").
    metric: the dev-score key that selects the best checkpoint (higher is better).
    epochs: the paper's number of epochs. splits: (train, dev, test) split names.
    options: task-model options (doc stride, no-answer...), overridable from the CLI.
    """

    name: str
    dataset: str | None
    kind: str
    metric: str
    epochs: int = 3
    splits: tuple[str, str, str | None] = ("train", "dev", "test")
    seq_length: int = 128
    language: str = "en"
    options: dict[str, Any] = dataclasses.field(default_factory=dict)
    description: str = ""

    @property
    def runner(self):
        return runners()[self.kind]

    @property
    def labels(self) -> list[str] | None:
        return readers.label_list(self.dataset) if self.dataset else None


TASKS: dict[str, TaskSpec] = {
    spec.name: spec
    for spec in (
        TaskSpec("cola", "cola", "classification", "mcc", description="GLUE CoLA acceptability (MCC)"),
        TaskSpec("sst2", "sst2", "classification", "accuracy", description="GLUE SST-2 sentiment"),
        TaskSpec("mrpc", "mrpc", "classification", "accuracy", description="GLUE MRPC paraphrase (pairs)"),
        TaskSpec("stsb", "stsb", "regression", "spearman", epochs=10, description="GLUE STS-B similarity (regression)"),
        TaskSpec("qnli", "qnli", "classification", "accuracy", description="GLUE QNLI (pairs)"),
        TaskSpec("conll2003", "conll2003", "token", "f1", description="CoNLL-2003 English NER (entity F1)"),
        TaskSpec("squad", "squad", "qa", "f1", epochs=2, seq_length=384, description="SQuAD v1.1 extractive QA"),
        TaskSpec("squad2", "squad", "qa", "f1", epochs=2, seq_length=384, options={"allow_no_answer": True},
                 description="SQuAD v2.0 extractive QA with unanswerable questions"),
        TaskSpec("xquad", "xquad", "qa", "f1", epochs=2, seq_length=384, splits=("train", "dev", None),
                 description="XQuAD-en (SQuAD v1.1 format), split 80/20 by article with seed 0"),
        TaskSpec("cmrc2018", "cmrc2018", "qa", "f1", epochs=2, seq_length=384, language="zh",
                 splits=("train", "dev", None),
                 description="CMRC 2018 Chinese extractive QA (the shared data has dev and trial only: "
                             "--train-split trial)"),
        TaskSpec("semeval", "semeval", "relation", "macro_f1", splits=("train", "test", "test"),
                 description="SemEval-2010 Task 8 relations (official macro-F1; its test set is the dev set)"),
        TaskSpec("c3", "c3", "choice", "accuracy", seq_length=256, language="zh",
                 description="C3 Chinese multiple-choice reading comprehension (the shared data has dev and test "
                             "only: --train-split dev --dev-split test)"),
        TaskSpec("chnsenticorp", "chnsenticorp", "classification", "accuracy", language="zh",
                 description="ChnSentiCorp Chinese sentiment"),
        TaskSpec("cluener", "cluener", "token", "f1", language="zh", description="CLUENER2020 Chinese NER (entity F1)"),
        TaskSpec("table", None, "classification", "accuracy",
                 description="a CSV/TSV/JSONL file with named text and label columns (--text-columns, --label-column)"),
        TaskSpec("table-regression", None, "regression", "spearman", epochs=10,
                 description="a CSV/TSV/JSONL file with a numeric label column"),
    )
}

ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "conll": "conll2003", "semeval2010": "semeval",
           "cluener2020": "cluener", "cmrc": "cmrc2018", "csv": "table", "tsv": "table", "jsonl": "table"}


def get_task(name: str) -> TaskSpec:
    key = ALIASES.get(name.lower(), name.lower())
    if key not in TASKS:
        raise DataError(f"unknown task {name!r}; choose from {', '.join(TASKS)}")
    return TASKS[key]


@dataclasses.dataclass
class TableSource:
    """Where a generic table task reads its columns from."""

    text_columns: tuple[str, ...] = ("text",)
    label_column: str = "label"
    format: str = "auto"
    labels: tuple[str, ...] | None = None


def read_split(spec: TaskSpec, data: str | Path, split: str,
               table: TableSource | None = None) -> tuple[list, list[Path]]:
    """(examples, files read) of one split of a task's data."""
    if spec.dataset is not None:
        files = readers.dataset_files(spec.dataset, data, split)
        return readers.read_dataset(spec.dataset, data, split), files
    table = table or TableSource()
    path = Path(data)
    if path.is_dir():
        matches = sorted(p for p in path.iterdir() if p.stem == split and p.suffix in (".csv", ".tsv", ".jsonl"))
        if not matches:
            raise DataError(f"{path}: no {split}.csv, {split}.tsv or {split}.jsonl")
        path = matches[0]
    label_type = float if spec.kind == "regression" else str
    examples = readers.read_table(path, list(table.text_columns), table.label_column, format=table.format,
                                  labels=table.labels, label_type=label_type)
    return examples, [path]


def table_labels(examples: list, table: TableSource | None) -> list[str]:
    """The label set of a generic table: as given, else sorted from the training examples."""
    if table is not None and table.labels:
        return list(table.labels)
    labels = sorted({str(e.label) for e in examples if e.label is not None})
    if len(labels) < 2:
        raise DataError(f"a classification table needs at least two labels, found {labels}")
    return labels
