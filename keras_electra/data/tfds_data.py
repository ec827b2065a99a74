"""TensorFlow Datasets as a data source: `finetune --tfds glue/sst2` and `pretrain --corpus tfds:NAME`.

`tensorflow_datasets` is imported only here and only when a TFDS source is used (it takes seconds
to import). Data is read with `tfds.load(NAME, split=..., data_dir=...)`, so a Colab user's
`~/tensorflow_datasets` (or `--tfds-data-dir`) is used and missing data is downloaded as
`tfds.load` always does.

Fine-tuning maps TFDS features onto this package's examples, by the task (given with `--task`, or
taken from the TFDS name with `TFDS_TASKS`):

| TFDS name | task | features read |
|---|---|---|
| glue/cola, glue/sst2 | cola, sst2 | sentence, label |
| glue/mrpc, glue/rte, glue/wnli, glue/stsb | mrpc, rte, wnli, stsb | sentence1, sentence2, label |
| glue/qqp | qqp | question1, question2, label |
| glue/qnli | qnli | question, sentence, label |
| glue/mnli | mnli (dev: validation_matched), mnli-mm (validation_mismatched) | premise, hypothesis, label |
| conll2003 | conll2003 | tokens, ner |
| squad, squad/v1.1 / squad/v2.0 | squad / squad2 | id, title, context, question, answers (+ is_impossible) |
| any classification dataset | table (`--text-columns`, `--label-column` name features) | those features |

GLUE labels become this package's label strings: the class name where it is one ("entailment"),
otherwise the GLUE class index ("0"/"1" for SST-2's negative/positive); -1 (unlabelled test) is None.
Splits: train → "train", dev → "validation" (MNLI: validation_matched/_mismatched; conll2003: TFDS's
"dev"), test → "test";
other split names pass through (`--dev-split validation[:50%]` works).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from keras_electra.errors import DataError

PREFIX = "tfds:"

# TFDS name (without version) → this package's task.
TFDS_TASKS = {
    **{f"glue/{t}": t for t in ("cola", "sst2", "mrpc", "qqp", "stsb", "qnli", "rte", "wnli", "mnli")},
    "conll2003": "conll2003",
    "conll2003/conll2003": "conll2003",
    "squad": "squad",
    "squad/v1.1": "squad",
    "squad/v2.0": "squad2",
}

# Our GLUE task → the TFDS text features (second None for single sentences).
GLUE_FEATURES = {
    "cola": ("sentence", None),
    "sst2": ("sentence", None),
    "mrpc": ("sentence1", "sentence2"),
    "qqp": ("question1", "question2"),
    "stsb": ("sentence1", "sentence2"),
    "qnli": ("question", "sentence"),
    "rte": ("sentence1", "sentence2"),
    "wnli": ("sentence1", "sentence2"),
    "mnli": ("premise", "hypothesis"),
    "mnli-mm": ("premise", "hypothesis"),
}
DEV_SPLITS = {"mnli": "validation_matched", "mnli-mm": "validation_mismatched", "conll2003": "dev"}
TEST_SPLITS = {"mnli": "test_matched", "mnli-mm": "test_mismatched"}


def is_tfds(source: str | Path | None) -> bool:
    return isinstance(source, str) and source.startswith(PREFIX)


def parse_name(name: str) -> str:
    """"glue/sst2", "glue:sst2" or "tfds:glue/sst2" → "glue/sst2" (TFDS's NAME/CONFIG[:VERSION])."""
    name = name[len(PREFIX):] if name.startswith(PREFIX) else name
    if ":" in name and "/" not in name:  # NAME:CONFIG, as the CLI documents it
        name = name.replace(":", "/", 1)
    if not name or name.startswith("/"):
        raise DataError(f"--tfds {name!r}: expected NAME or NAME/CONFIG, e.g. glue/sst2")
    return name


def task_for(name: str) -> str:
    """The task a TFDS dataset fine-tunes by default (a DataError for one that does not map)."""
    key = parse_name(name).lower()
    base = "/".join(key.split("/")[:2]) if key.split("/")[0] in ("glue", "squad") else key.split("/")[0]
    if key.startswith("squad/v2"):
        base = "squad/v2.0"
    if base not in TFDS_TASKS:
        raise DataError(f"--tfds {name}: no default task for this dataset; pass --task (table with --text-columns "
                        f"and --label-column for a classification dataset). Mapped: {', '.join(sorted(TFDS_TASKS))}")
    return TFDS_TASKS[base]


def tfds_split(task: str, split: str) -> str:
    """Our split name → the TFDS split name."""
    if split == "dev":
        return DEV_SPLITS.get(task, "validation")
    if split == "test":
        return TEST_SPLITS.get(task, "test")
    return split


def describe(name: str, split: str, data_dir: str | None) -> str:
    """How a TFDS split is recorded in results.json / task.json `data_files` (`parse_source` reads it back)."""
    return f"{PREFIX}{name}[{split}]" + (f" in {data_dir}" if data_dir else "")


def parse_source(text: str) -> tuple[str, str | None]:
    """A recorded "tfds:NAME[SPLIT] in DIR" → (the "tfds:NAME" data argument, DIR or None)."""
    match = re.fullmatch(r"(tfds:[^\[]+)\[[^\]]*\](?: in (.+))?", text)
    if not match:
        raise DataError(f"{text}: not a recorded TFDS source")
    return match.group(1), match.group(2)


def _load(name: str, split: str, data_dir: str | None):
    """(numpy iterator, DatasetInfo) of one TFDS split; every TFDS failure becomes one line."""
    import os

    import tensorflow_datasets as tfds

    data_dir = data_dir or os.environ.get("TFDS_DATA_DIR")
    try:
        dataset, info = tfds.load(name, split=split, data_dir=data_dir, with_info=True, shuffle_files=False)
    except Exception as err:  # noqa: BLE001  (TFDS raises many types: not found, no network, bad split)
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise DataError(f"tfds:{name} split {split!r}: {first}") from None
    return tfds.as_numpy(dataset), info


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _class_names(info, feature: str) -> list[str] | None:
    try:
        spec = info.features[feature]
    except KeyError:
        return None
    if hasattr(spec, "feature"):  # Sequence(ClassLabel)
        spec = spec.feature
    return list(spec.names) if hasattr(spec, "names") else None


def _label(value, names: list[str] | None, ours: list[str] | None, regression: bool):
    if regression:
        return float(value)
    index = int(value)
    if index < 0:  # GLUE test sets: -1
        return None
    if names and ours and set(names) <= set(ours):
        return names[index]
    return str(index)


def read_tfds(spec, name: str, split: str, data_dir: str | None = None, table=None) -> tuple[list, list[str]]:
    """(examples, [a description of the source]) of one split of a TFDS dataset for task `spec`."""
    from keras_electra.data.readers import Answer, QAExample, TextExample, TokenExample, iob1_to_iob2

    name = parse_name(name)
    tsplit = tfds_split(spec.name, split)
    rows, info = _load(name, tsplit, data_dir)
    source = [describe(name, tsplit, data_dir)]
    examples: list[Any] = []
    if spec.kind in ("classification", "regression"):
        if spec.dataset is None:  # a table task: the columns are feature names
            columns = tuple(table.text_columns) if table else ("text",)
            label_column = table.label_column if table else "label"
        elif spec.name in GLUE_FEATURES:
            columns = tuple(c for c in GLUE_FEATURES[spec.name] if c)
            label_column = "label"
        else:
            raise DataError(f"tfds:{name}: task {spec.name} has no TFDS mapping")
        missing = [c for c in (*columns, label_column) if c not in info.features]
        if missing:
            raise DataError(f"tfds:{name}: no feature {missing[0]!r} (features: {', '.join(info.features)})")
        names = _class_names(info, label_column)
        for i, row in enumerate(rows):
            guid = f"{split}-{int(row['idx']) if 'idx' in row else i}"
            label = _label(row[label_column], names, spec.labels, spec.kind == "regression")
            examples.append(TextExample(guid, _text(row[columns[0]]),
                                        _text(row[columns[1]]) if len(columns) > 1 else None, label))
    elif spec.kind == "token":
        if "tokens" not in info.features or "ner" not in info.features:
            raise DataError(f"tfds:{name}: an NER dataset needs 'tokens' and 'ner' features")
        names = _class_names(info, "ner")
        for i, row in enumerate(rows):
            words = [_text(w) for w in row["tokens"]]
            if words:
                examples.append(TokenExample(f"{split}-{i}", words, iob1_to_iob2([names[int(t)] for t in row["ner"]])))
    elif spec.kind == "qa":
        for row in rows:
            context = _text(row["context"])
            answers = [Answer(_text(t), int(s)) for t, s in zip(row["answers"]["text"], row["answers"]["answer_start"])]
            answers = [a for a in answers if context[a.start:a.end] == a.text]
            examples.append(QAExample(_text(row["id"]), _text(row["question"]), context, answers,
                                      bool(row.get("is_impossible", False)), _text(row.get("title", ""))))
    else:
        raise DataError(f"tfds:{name}: {spec.kind} tasks cannot read TFDS data (see the README)")
    if not examples:
        raise DataError(f"tfds:{name} split {tsplit!r} has no examples")
    return examples, source


# ------------------------------------------------------------------------ pretraining
def write_corpus(name: str, directory: Path, data_dir: str | None = None, split: str = "train",
                 feature: str | None = None) -> Path:
    """A TFDS text dataset as a corpus file in the official layout: each record's lines, then a blank line
    (a record is a document; blank lines inside a record are dropped so that they do not split it).

    Written once, atomically, to `directory/<name>-<split>.txt`; a later run (resume) reuses it.
    """
    from keras_electra.utils.io import atomic_file

    name = parse_name(name)
    path = Path(directory) / f"{name.replace('/', '_').replace(':', '_')}-{split.replace(':', '_')}.txt"
    if path.is_file():
        return path
    rows, info = _load(name, split, data_dir)
    text_features = [k for k, v in info.features.items() if type(v).__name__ == "Text"]
    key = feature or ("text" if "text" in info.features else (text_features[0] if len(text_features) == 1 else None))
    if key is None or key not in info.features:
        raise DataError(f"tfds:{name}: no single text feature to pretrain on (features: {', '.join(info.features)})")
    path.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    with atomic_file(path) as tmp, open(tmp, "w", encoding="utf-8") as out:
        for row in rows:
            lines = [line.strip() for line in _text(row[key]).splitlines() if line.strip()]
            if lines:
                out.write("\n".join(lines) + "\n\n")
                count += 1
    if not count:
        raise DataError(f"tfds:{name} split {split!r}: no text")
    return path


def resolve_corpus_sources(sources: list[str], directory: Path, data_dir: str | None = None) -> list[str]:
    """`pretrain --corpus` entries with every `tfds:NAME[:SPLIT]` replaced by its written corpus file."""
    out = []
    for source in sources:
        if is_tfds(source):
            body = source[len(PREFIX):]
            name, _, split = body.partition("@")  # tfds:NAME@SPLIT picks a split (default train)
            out.append(str(write_corpus(name, directory, data_dir, split or "train")))
        else:
            out.append(source)
    return out
