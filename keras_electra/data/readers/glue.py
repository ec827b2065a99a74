"""GLUE TSV tasks (layout of the GLUE download script) and any task in the same layout.

Each task is described by a `GlueSpec`: which header columns hold the text(s), the label and the
example id, the label set, and the column names of headerless files (CoLA train/dev). Files are
read with quoting disabled, as the official scripts do. Test files are unlabelled: their examples
have label None.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

from keras_electra.data.readers._common import require_nonempty
from keras_electra.data.readers.examples import TextExample
from keras_electra.data.readers.table import _parse_label, read_rows
from keras_electra.errors import DataError

SPLITS = ("train", "dev", "test")


@dataclass(frozen=True)
class GlueSpec:
    """The layout of one GLUE-style TSV task.

    text_a / text_b: header names of the sentence columns (text_b None for single sentences).
    label: header name of the label column (absent from unlabelled test files).
    labels: the label set (None for regression).
    label_type: str, or float for regression (STS-B).
    guid: header name of the id column, if any (otherwise the row index is the id).
    headerless: column names for files without a header row, per split (e.g. CoLA train/dev).
    test_text_a / test_text_b: sentence columns of the test file when they differ (MRPC test has
        the same; CoLA test has a header "index sentence").
    dir_name: the task's folder name in the GLUE data directory.
    files: file name per split when it is not "<split>.tsv" (MNLI's dev_matched.tsv).
    """

    name: str
    text_a: str
    text_b: str | None
    label: str
    labels: tuple[str, ...] | None
    label_type: type = str
    guid: str | None = None
    headerless: tuple[tuple[str, tuple[str, ...]], ...] = ()
    dir_name: str = ""
    files: tuple[tuple[str, str], ...] = ()

    def file_name(self, split: str) -> str:
        return dict(self.files).get(split, f"{split}.tsv")

    def columns_for(self, split: str) -> tuple[str, ...] | None:
        return dict(self.headerless).get(split)


_COLA_COLUMNS = ("source", "label", "original_label", "sentence")
_MNLI = GlueSpec(
    "mnli",
    "sentence1",
    "sentence2",
    "gold_label",
    ("contradiction", "entailment", "neutral"),
    guid="index",
    dir_name="MNLI",
    files=(("dev", "dev_matched.tsv"), ("test", "test_matched.tsv")),
)

GLUE_TASKS: dict[str, GlueSpec] = {
    "cola": GlueSpec(
        "cola",
        "sentence",
        None,
        "label",
        ("0", "1"),
        guid="index",
        headerless=(("train", _COLA_COLUMNS), ("dev", _COLA_COLUMNS)),
        dir_name="CoLA",
    ),
    "sst2": GlueSpec("sst2", "sentence", None, "label", ("0", "1"), guid="index", dir_name="SST-2"),
    # MRPC train/dev name their label column "Quality"; the test file has "index" instead.
    "mrpc": GlueSpec("mrpc", "#1 String", "#2 String", "Quality", ("0", "1"), guid="index", dir_name="MRPC"),
    "stsb": GlueSpec("stsb", "sentence1", "sentence2", "score", None, float, guid="index", dir_name="STS-B"),
    "qnli": GlueSpec(
        "qnli", "question", "sentence", "label", ("entailment", "not_entailment"), guid="index", dir_name="QNLI"
    ),
    "rte": GlueSpec(
        "rte", "sentence1", "sentence2", "label", ("entailment", "not_entailment"), guid="index", dir_name="RTE"
    ),
    "wnli": GlueSpec("wnli", "sentence1", "sentence2", "label", ("0", "1"), guid="index", dir_name="WNLI"),
    "qqp": GlueSpec("qqp", "question1", "question2", "is_duplicate", ("0", "1"), guid="id", dir_name="QQP"),
    "mnli": _MNLI,
    # The same training file; dev and test are the mismatched-genre sets.
    "mnli-mm": replace(_MNLI, name="mnli-mm", files=(("dev", "dev_mismatched.tsv"), ("test", "test_mismatched.tsv"))),
}

_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "sst": "sst2", "sts": "stsb", "mnli-m": "mnli",
            "mnli_matched": "mnli", "mnli_mismatched": "mnli-mm"}


def glue_spec(task: str | GlueSpec) -> GlueSpec:
    """The spec of a GLUE task by name (case-insensitive; "SST-2" and "sst2" both work)."""
    if isinstance(task, GlueSpec):
        return task
    key = task.lower()
    key = _ALIASES.get(key, key)
    if key not in GLUE_TASKS:
        raise DataError(f"unknown GLUE task {task!r} (known: {', '.join(GLUE_TASKS)}; or pass a GlueSpec)")
    return GLUE_TASKS[key]


def glue_file(task: str | GlueSpec, path: str | Path, split: str) -> Path:
    """The TSV file for a split: `path` itself when it is a file, else the split's file in `path`,
    which may be the task directory (glue/SST-2) or the GLUE root (glue/)."""
    spec = glue_spec(task)
    if split not in SPLITS:
        raise DataError(f"unknown split {split!r} for GLUE task {spec.name} (expected one of {', '.join(SPLITS)})")
    path = Path(path)
    if path.is_file():
        return path
    if not path.exists():
        raise DataError(f"{path}: directory not found")
    if spec.dir_name and (path / spec.dir_name).is_dir():
        path = path / spec.dir_name
    return path / spec.file_name(split)


def read_glue(task: str | GlueSpec, path: str | Path, split: str = "train") -> list[TextExample]:
    """Examples of a GLUE task split. `path` is the task directory, the GLUE root or the TSV file.

    guid is "<split>-<id>" with the file's id column (or the 0-based row index when it has none).
    Labels are strings ("0"/"1", "entailment", ...) or floats for STS-B; None in unlabelled test files.
    """
    spec = glue_spec(task)
    file = glue_file(spec, path, split)
    header, rows = read_rows(file, "tsv", spec.columns_for(split))
    text_b = spec.text_b
    missing = [c for c in (spec.text_a, text_b) if c is not None and c not in header]
    if missing:
        raise DataError(
            f"{file}: missing column {missing[0]!r} for GLUE task {spec.name} (columns: {', '.join(header)})"
        )
    has_label = spec.label in header
    if not has_label and split != "test":
        raise DataError(
            f"{file}: missing label column {spec.label!r} for GLUE task {spec.name} (columns: {', '.join(header)})"
        )
    has_guid = spec.guid is not None and spec.guid in header
    examples = []
    for index, (number, row) in enumerate(rows):
        label = _parse_label(row[spec.label], spec.label_type, spec.labels, f"{file}:{number}") if has_label else None
        guid = f"{split}-{row[spec.guid] if has_guid else index}"
        examples.append(TextExample(guid, row[spec.text_a], row[text_b] if text_b else None, label))
    return require_nonempty(examples, file)
