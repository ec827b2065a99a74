"""Dataset readers: one module per file format, and a registry of the standard datasets.

    examples = read_dataset("sst2", "/data/glue", "dev")      # -> list[TextExample]
    tags = label_list("conll2003")                            # -> ["O", "B-PER", ...]

`read_dataset` finds the split's standard file(s) in a data directory: the dataset's own folder
(glue/SST-2), a parent of it (glue/, or the folder holding conll2003/, semeval2010_task8/, ...), or
the file itself. Every problem a user can fix raises `keras_electra.errors.DataError`.

| name | examples | splits | files |
|---|---|---|---|
| cola, sst2, mrpc, stsb, qnli, rte, wnli, qqp | TextExample | train, dev, test | <Task>/<split>.tsv |
| mnli, mnli-mm | TextExample | train, dev, test | MNLI/train.tsv, dev_{matched,mismatched}.tsv, test_... |
| conll2003 | TokenExample (IOB2) | train, dev, test | iob2/{train,valid,test}.txt or eng.{train,testa,testb} |
| ner | TokenExample (IOB2) | train, dev, test | any CoNLL file named by its split (see SPLIT_NAMES) |
| choice | ChoiceExample | train, dev, test | <split>.jsonl/.csv/.tsv (readers.choice) |
| squad | QAExample | train, dev | {train,dev}-v1.1.json (or v2.0 with version="2.0") |
| xquad | QAExample | train, dev, test | xquad.<language>.json; train/dev split by article, test = all |
| cmrc2018 | QAExample | train, dev, trial | cmrc2018_<split>.json (misaligned answers fixed) |
| semeval | RelationExample | train, test | TRAIN_FILE.TXT, TEST_FILE_FULL.TXT |
| c3 | ChoiceExample | train, dev, test | c3-m-<split>.json + c3-d-<split>.json |
| chnsenticorp | TextExample | train, dev, test | <split>.tsv |
| cluener | TokenExample (IOB2, chars) | train, dev, test | <split>.json |
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keras_electra.data.readers.c3 import read_c3
from keras_electra.data.readers.choice import read_choice_table
from keras_electra.data.readers.cluener import CLUENER_TAGS, CLUENER_TYPES, read_cluener
from keras_electra.data.readers.conll import CONLL2003_TAGS, iob1_to_iob2, read_conll
from keras_electra.data.readers.examples import (
    Answer,
    ChoiceExample,
    QAExample,
    RelationExample,
    TextExample,
    TokenExample,
    mark_entities,
)
from keras_electra.data.readers.glue import GLUE_TASKS, GlueSpec, glue_spec, read_glue
from keras_electra.data.readers.semeval import (
    RELATION_TYPES,
    SEMEVAL_LABELS,
    parse_entity_markup,
    read_semeval,
    read_semeval_keys,
)
from keras_electra.data.readers.squad import read_squad, split_squad
from keras_electra.data.readers.table import read_table
from keras_electra.errors import DataError

__all__ = [
    "Answer",
    "ChoiceExample",
    "CLUENER_TAGS",
    "CLUENER_TYPES",
    "CONLL2003_TAGS",
    "DatasetInfo",
    "GLUE_TASKS",
    "GlueSpec",
    "QAExample",
    "READERS",
    "RELATION_TYPES",
    "RelationExample",
    "SEMEVAL_LABELS",
    "TextExample",
    "TokenExample",
    "XQUAD_DEV_FRACTION",
    "XQUAD_SEED",
    "dataset_files",
    "glue_spec",
    "iob1_to_iob2",
    "label_list",
    "mark_entities",
    "parse_entity_markup",
    "read_c3",
    "read_choice_table",
    "read_chnsenticorp",
    "read_cluener",
    "read_conll",
    "read_dataset",
    "read_glue",
    "read_semeval",
    "read_semeval_keys",
    "read_squad",
    "read_table",
    "split_squad",
]

# The documented XQuAD train/dev split (by article): 38 train / 10 dev articles.
XQUAD_DEV_FRACTION = 0.2
XQUAD_SEED = 0


def read_chnsenticorp(path: str | Path) -> list[TextExample]:
    """ChnSentiCorp TSV (header "label<TAB>text_a", labels 0/1); guid is the row index."""
    return read_table(path, ["text_a"], "label", format="tsv", labels=("0", "1"))


@dataclass(frozen=True)
class DatasetInfo:
    """A registered dataset.

    kind: "text", "token", "qa", "choice" or "relation" (the example type).
    folders: the dataset's folder names, tried below the given path.
    files: per split, the candidate file lists (relative to the dataset folder); the first list whose
        files all exist is used.
    read: reads one file of a split: read(file, split).
    labels: the fixed label set (IOB2 tags for NER), or None (regression, span and choice tasks,
        and the generic "ner" whose tags come from its files).
    discover: find a split's file by name (`find_split_file`) instead of the fixed `files` names.
    """

    name: str
    kind: str
    folders: tuple[str, ...]
    files: dict[str, tuple[tuple[str, ...], ...]]
    read: Callable[[Path, str], list]
    labels: tuple[str, ...] | None = None
    discover: bool = False

    @property
    def splits(self) -> tuple[str, ...]:
        return tuple(self.files)


def _glue(task: str) -> DatasetInfo:
    spec = GLUE_TASKS[task]
    return DatasetInfo(
        task,
        "text",
        (spec.dir_name, f"glue/{spec.dir_name}"),
        {split: ((spec.file_name(split),),) for split in ("train", "dev", "test")},
        lambda path, split, spec=spec: read_glue(spec, path, split),
        spec.labels,
    )


READERS: dict[str, DatasetInfo] = {
    **{task: _glue(task) for task in ("cola", "sst2", "mrpc", "stsb", "qnli", "rte", "wnli", "qqp", "mnli", "mnli-mm")},
    "conll2003": DatasetInfo(
        "conll2003",
        "token",
        ("conll2003",),
        {
            "train": (("iob2/train.txt",), ("original_iob1/eng.train",), ("train.txt",), ("eng.train",)),
            "dev": (("iob2/valid.txt",), ("original_iob1/eng.testa",), ("valid.txt",), ("eng.testa",)),
            "test": (("iob2/test.txt",), ("original_iob1/eng.testb",), ("test.txt",), ("eng.testb",)),
        },
        lambda path, split: read_conll(path, labels=CONLL2003_TAGS),
        CONLL2003_TAGS,
    ),
    "squad": DatasetInfo(
        "squad",
        "qa",
        ("squad",),
        {"train": (("train-v1.1.json",), ("train-v2.0.json",)), "dev": (("dev-v1.1.json",), ("dev-v2.0.json",))},
        lambda path, split: read_squad(path),
    ),
    "xquad": DatasetInfo(
        "xquad",
        "qa",
        ("xquad",),
        {s: (("xquad.en.json",),) for s in ("train", "dev", "test")},
        lambda path, split: read_squad(path),
    ),
    "cmrc2018": DatasetInfo(
        "cmrc2018",
        "qa",
        ("cmrc2018",),
        {s: ((f"cmrc2018_{s}.json",),) for s in ("train", "dev", "trial")},
        lambda path, split: read_squad(path, misaligned="fix"),
    ),
    "semeval": DatasetInfo(
        "semeval",
        "relation",
        ("semeval2010_task8", "SemEval2010_task8_all_data"),
        {"train": (("TRAIN_FILE.TXT",),), "test": (("TEST_FILE_FULL.TXT",),)},
        lambda path, split: read_semeval(path),
        SEMEVAL_LABELS,
    ),
    "c3": DatasetInfo(
        "c3",
        "choice",
        ("c3",),
        {s: ((f"c3-m-{s}.json", f"c3-d-{s}.json"),) for s in ("train", "dev", "test")},
        lambda path, split: read_c3(path),
    ),
    "chnsenticorp": DatasetInfo(
        "chnsenticorp",
        "text",
        ("chnsenticorp",),
        {s: ((f"{s}.tsv",),) for s in ("train", "dev", "test")},
        lambda path, split: read_chnsenticorp(path),
        ("0", "1"),
    ),
    "cluener": DatasetInfo(
        "cluener",
        "token",
        ("cluener2020", "cluener"),
        {s: ((f"{s}.json",),) for s in ("train", "dev", "test")},
        lambda path, split: read_cluener(path),
        CLUENER_TAGS,
    ),
    # Any CoNLL-format NER data (Weibo, MSRA, ...): tags from the files, any BIO/BIOES tag set.
    "ner": DatasetInfo(
        "ner", "token", (), {s: () for s in ("train", "dev", "test")},
        lambda path, split: read_conll(path), discover=True,
    ),
    # Any multiple-choice data in JSONL/CSV/TSV (readers.choice).
    "choice": DatasetInfo(
        "choice", "choice", (), {s: () for s in ("train", "dev", "test")},
        lambda path, split: read_choice_table(path), discover=True,
    ),
}

# What a split's file may be called: a dot-separated part of the name equals one of these
# (train.txt, eng.testa, weiboNER_2nd_conll.dev, dev.all.bmes, valid.jsonl).
SPLIT_NAMES = {
    "train": ("train",),
    "dev": ("dev", "valid", "validation", "val", "testa"),
    "test": ("test", "testb"),
}


def find_split_file(path: Path, split: str) -> Path:
    """The one file directly in `path` whose name marks it as `split` (see SPLIT_NAMES)."""
    names = set(SPLIT_NAMES.get(split, (split,)))
    matches = sorted(p for p in path.iterdir()
                     if p.is_file() and not p.name.startswith(".") and names & set(p.name.lower().split(".")))
    if not matches:
        raise DataError(f"{path}: no {split} file (a file named like {' or '.join(f'{n}.*' for n in sorted(names))})")
    if len(matches) > 1:
        raise DataError(f"{path}: several {split} files ({', '.join(p.name for p in matches)}); pass one with --data")
    return matches[0]

_ALIASES = {
    "sst-2": "sst2",
    "sts-b": "stsb",
    "conll": "conll2003",
    "semeval2010": "semeval",
    "semeval2010_task8": "semeval",
    "cmrc": "cmrc2018",
    "cluener2020": "cluener",
    "mnli-m": "mnli",
    "mnli_matched": "mnli",
    "mnli_mismatched": "mnli-mm",
    "multiple-choice": "choice",
}


def dataset_info(name: str) -> DatasetInfo:
    """The registry entry of a dataset (case-insensitive; a few aliases such as "SST-2")."""
    key = _ALIASES.get(name.lower(), name.lower())
    if key not in READERS:
        raise DataError(f"unknown dataset {name!r} (known: {', '.join(READERS)})")
    return READERS[key]


def label_list(name: str) -> list[str] | None:
    """The fixed label set of a dataset, in a stable order (index = class id), or None when it has
    none (stsb regression; squad, xquad, cmrc2018 spans; c3 choice index)."""
    labels = dataset_info(name).labels
    return list(labels) if labels is not None else None


def dataset_files(name: str, path: str | Path, split: str, language: str = "en") -> list[Path]:
    """The file(s) that `read_dataset` reads for a split (see the module doc for the layout)."""
    info = dataset_info(name)
    if split not in info.files:
        raise DataError(f"unknown split {split!r} for dataset {info.name} (expected one of {', '.join(info.splits)})")
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise DataError(f"{path}: no such file or directory")
    if info.discover:
        return [find_split_file(path, split)]
    candidates = info.files[split]
    if info.name == "xquad":
        candidates = ((f"xquad.{language}.json",),)
    roots = [path, *(path / folder for folder in info.folders)]
    for root in roots:
        for names in candidates:
            files = [root / name for name in names]
            if all(f.is_file() for f in files):
                return files
    wanted = " or ".join("+".join(names) for names in candidates)
    raise DataError(f"{path}: no {info.name} {split} file found (looked for {wanted})")


def read_dataset(
    name: str,
    path: str | Path,
    split: str,
    language: str = "en",
    dev_fraction: float = XQUAD_DEV_FRACTION,
    seed: int = XQUAD_SEED,
) -> list:
    """The examples of a dataset split, read from a data directory (or the split's file itself).

    language: XQuAD language ("en", "zh", ...). dev_fraction, seed: the XQuAD by-article split
    (defaults: the documented 0.2 / 0): "train" and "dev" are its two parts, "test" the whole file.
    """
    info = dataset_info(name)
    examples: list = []
    for file in dataset_files(info.name, path, split, language):
        examples.extend(info.read(file, split))
    if info.name == "xquad" and split != "test":
        train, dev = split_squad(examples, dev_fraction, seed)
        examples = train if split == "train" else dev
    return examples
