"""Task name → dataset reader, runner (task model + pipeline), dev metric and paper defaults.

Epochs follow the paper (Table 7 and its appendix): 3, except 10 for the small-data and
regression tasks it names (RTE, STS-B) and 2 for SQuAD. The dev metric picks the best
checkpoint: Spearman for STS-B, MCC for CoLA, accuracy for the other GLUE tasks (the
paper's choice; MRPC and QQP also report the official F1), entity F1 for NER, F1 for QA,
the official macro-F1 for SemEval.

Generic tasks read any data of their kind: `table` / `table-regression` (CSV/TSV/JSONL
columns), `ner` (CoNLL files with any BIO/BIOES tag set) and `multiple-choice`. Their
language (`TaskSpec.language` None) is detected from the data.
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
    from keras_electra.tasks.prompting import PromptRunner
    from keras_electra.tasks.question_answerer import QuestionAnsweringRunner
    from keras_electra.tasks.relation_classifier import RelationRunner
    from keras_electra.tasks.token_classifier import TokenClassificationRunner

    return {r.kind: r for r in (ClassificationRunner(), RegressionRunner(), TokenClassificationRunner(),
                                QuestionAnsweringRunner(), MultipleChoiceRunner(), RelationRunner(),
                                PromptRunner())}


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
    language: str | None = "en"  # None: detected from the data (generic tasks)
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
        TaskSpec("rte", "rte", "classification", "accuracy", epochs=10, description="GLUE RTE entailment (pairs)"),
        TaskSpec("wnli", "wnli", "classification", "accuracy", description="GLUE WNLI (pairs)"),
        TaskSpec("qqp", "qqp", "classification", "accuracy",
                 description="GLUE QQP duplicate questions (pairs; accuracy and F1)"),
        TaskSpec("mnli", "mnli", "classification", "accuracy",
                 description="GLUE MNLI, dev = dev_matched (evaluate with --task mnli-mm for mismatched)"),
        TaskSpec("mnli-mm", "mnli-mm", "classification", "accuracy",
                 description="GLUE MNLI, dev = dev_mismatched"),
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
        TaskSpec("ner", "ner", "token", "f1", language=None,
                 description="CoNLL-format NER with any BIO/BIOES tags (Weibo, MSRA...): tags from the training "
                             "file or --labels; files named train, dev/valid/testa, test/testb"),
        TaskSpec("multiple-choice", "choice", "choice", "accuracy", seq_length=256, language=None,
                 description="multiple choice from JSONL/CSV/TSV: question, choices (choice0.. columns), optional "
                             "context, label"),
        TaskSpec("table", None, "classification", "accuracy", language=None,
                 description="a CSV/TSV/JSONL file with named text and label columns (--text-columns, --label-column)"),
        TaskSpec("table-regression", None, "regression", "spearman", epochs=10, language=None,
                 description="a CSV/TSV/JSONL file with a numeric label column"),
    )
}

ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "conll": "conll2003", "semeval2010": "semeval",
           "cluener2020": "cluener", "cmrc": "cmrc2018", "csv": "table", "tsv": "table", "jsonl": "table",
           "mnli-m": "mnli", "mnli_matched": "mnli", "mnli_mismatched": "mnli-mm", "choice": "multiple-choice",
           "multiple_choice": "multiple-choice"}


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


    @classmethod
    def recorded(cls, model_dir: str | Path) -> TableSource | None:
        """The columns a fine-tuned table model was trained on: its task.json, else the config in its
        results.json (models saved before task.json recorded them); None when neither has them."""
        import json

        for name, key in (("task.json", None), ("results.json", "config")):
            try:
                values = json.loads((Path(model_dir) / name).read_text())
            except (OSError, ValueError):
                continue
            values = (values.get(key) or {}) if key else values
            if values.get("text_columns"):
                return cls(tuple(values["text_columns"]), values.get("label_column") or "label")
        return None


def read_split(spec: TaskSpec, data: str | Path, split: str, table: TableSource | None = None,
               tfds_data_dir: str | None = None) -> tuple[list, list[Path]]:
    """(examples, files read) of one split of a task's data.

    `data` may be "tfds:NAME[/CONFIG]" (TensorFlow Datasets, in `tfds_data_dir` or TFDS's default);
    the files read are then a description of the TFDS split. For NER tasks, `table.labels` (the
    user's --labels) replaces the dataset's fixed tag set.
    """
    from keras_electra.data import tfds_data

    if tfds_data.is_tfds(data):
        return tfds_data.read_tfds(spec, str(data), split, tfds_data_dir, table)
    path = Path(data)
    if not path.exists():
        raise DataError(f"--data {data}: no such file or directory")
    if spec.dataset is not None:
        files = readers.dataset_files(spec.dataset, data, split)
        if spec.kind == "token" and table is not None and table.labels and spec.dataset in ("conll2003", "ner"):
            return [e for f in files for e in readers.read_conll(f, labels=table.labels)], files
        return readers.read_dataset(spec.dataset, data, split), files
    table = table or TableSource()
    if path.is_dir():
        matches = sorted(p for p in path.iterdir() if p.stem == split and p.suffix in (".csv", ".tsv", ".jsonl"))
        if not matches:
            raise DataError(f"{path}: no {split}.csv, {split}.tsv or {split}.jsonl")
        path = matches[0]
    label_type = float if spec.kind == "regression" else str
    examples = readers.read_table(path, list(table.text_columns), table.label_column, format=table.format,
                                  labels=table.labels, label_type=label_type)
    return examples, [path]


def takes_pairs(task_json: dict) -> bool:
    """Whether the fine-tuning task of `task.json` reads sentence pairs (MRPC, STS-B, RTE, a two-column table...)."""
    if len(task_json.get("text_columns") or ()) == 2:
        return True
    name = task_json.get("task")
    if not name:
        return False
    try:
        return readers.glue_spec(name).text_b is not None
    except DataError:
        return False


def check_pair_inputs(pairs: list[tuple[str, str | None]], pair: bool) -> None:
    """Refuse a single sentence for a pair model, and a pair for a single-sentence model."""
    for i, (_, b) in enumerate(pairs):
        if pair and b is None:
            raise DataError(f"this model classifies sentence pairs, but text {i + 1} is one sentence; write "
                            "'first ||| second' (or 'first<TAB>second')")
        if not pair and b is not None:
            raise DataError(f"this model classifies single sentences, but text {i + 1} is a pair ('|||' or TAB)")


def token_labels(examples: list, given: list[str] | tuple[str, ...] | None) -> list[str]:
    """The IOB2 tag set of an NER task: as given, else "O" and B-/I- of every type in `examples`."""
    if given:
        labels = list(given)
        if "O" not in labels:
            raise DataError(f"--labels {' '.join(labels)}: an NER tag set needs the tag O")
        return labels
    types = sorted({tag[2:] for e in examples for tag in (e.tags or ()) if tag != "O"})
    if not types:
        raise DataError("the NER training data has no entity tags (only O)")
    return ["O", *(f"{p}-{t}" for t in types for p in ("B", "I"))]


def detect_language(examples: list, sample: int = 200) -> str:
    """"zh" when most characters of the first `sample` examples are CJK ideographs, else "en"."""
    text = "".join(
        "".join(getattr(e, "words", None) or ())
        + str(getattr(e, "text_a", "") or "") + str(getattr(e, "context", "") or "")
        + str(getattr(e, "question", "") or "")
        for e in examples[:sample]
    )
    letters = [c for c in text if c.isalpha()]
    cjk = sum("\u4e00" <= c <= "\u9fff" or "\u3400" <= c <= "\u4dbf" for c in letters)
    return "zh" if letters and cjk / len(letters) > 0.5 else "en"


def table_labels(examples: list, table: TableSource | None) -> list[str]:
    """The label set of a generic table: as given, else sorted from the training examples."""
    if table is not None and table.labels:
        return list(table.labels)
    labels = sorted({str(e.label) for e in examples if e.label is not None})
    if len(labels) < 2:
        raise DataError(f"a classification table needs at least two labels, found {labels}")
    return labels
