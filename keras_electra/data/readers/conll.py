"""CoNLL-format NER files (CoNLL-2003: "word POS chunk NE" per line, blank line between sentences).

The NER tag is the last column (configurable). `-DOCSTART-` lines are document separators and are
skipped. The tagging scheme (IOB1 as in the original eng.* files, or IOB2) is detected from the
tags, and the examples always carry IOB2 tags.
"""

from __future__ import annotations

from pathlib import Path

from keras_electra.data.readers._common import check_label, iter_lines, require_nonempty
from keras_electra.data.readers.examples import TokenExample
from keras_electra.errors import DataError

SCHEMES = ("auto", "IOB1", "IOB2")
CONLL2003_TYPES = ("PER", "ORG", "LOC", "MISC")
CONLL2003_TAGS = ("O", *(f"{p}-{t}" for t in CONLL2003_TYPES for p in ("B", "I")))


def _split_tag(tag: str) -> tuple[str, str]:
    """("B"|"I"|"O", type) of a tag; raises ValueError for anything else."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I") or not kind:
        raise ValueError(tag)
    return prefix, kind


def detect_scheme(sentences: list[list[str]]) -> str:
    """ "IOB1" if any entity starts with an I- tag (allowed only in IOB1), otherwise "IOB2"."""
    for tags in sentences:
        previous = "O"
        for tag in tags:
            prefix, kind = _split_tag(tag)
            if prefix == "I" and (previous == "O" or _split_tag(previous)[1] != kind):
                return "IOB1"
            previous = tag
    return "IOB2"


def iob1_to_iob2(tags: list[str]) -> list[str]:
    """IOB1 → IOB2: an I-X that does not continue an X chunk opens one, so it becomes B-X."""
    out = []
    previous_kind = None
    for tag in tags:
        prefix, kind = _split_tag(tag)
        if prefix == "I" and previous_kind != kind:
            tag = f"B-{kind}"
        out.append(tag)
        previous_kind = kind if prefix != "O" else None
    return out


def read_conll(
    path: str | Path,
    tag_column: int = -1,
    scheme: str = "auto",
    labels: list[str] | tuple[str, ...] | None = None,
) -> list[TokenExample]:
    """Sentences of a CoNLL file as TokenExamples with IOB2 tags.

    tag_column: index of the NER column (default the last). scheme: "auto", "IOB1" or "IOB2".
    labels: when given, every IOB2 tag must be one of them. guid: "<file stem>-<sentence index>".
    """
    if scheme not in SCHEMES:
        raise DataError(f"{path}: unknown tagging scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
    path = Path(path)
    sentences: list[tuple[list[str], list[str], int]] = []
    words: list[str] = []
    tags: list[str] = []
    n_columns = None
    start_line = 0

    def flush() -> None:
        nonlocal words, tags
        if words:
            sentences.append((words, tags, start_line))
        words, tags = [], []

    for number, line in iter_lines(path):
        fields = line.split()
        if not fields:
            flush()
            continue
        if fields[0] == "-DOCSTART-":
            flush()
            continue
        if n_columns is None:
            n_columns = len(fields)
            if n_columns < 2:
                raise DataError(f"{path}:{number}: malformed line: expected a word and a tag, got {line!r}")
        if len(fields) != n_columns:
            raise DataError(f"{path}:{number}: malformed line: {len(fields)} columns, expected {n_columns}")
        tag = fields[tag_column] if -n_columns <= tag_column < n_columns else None
        if tag is None:
            raise DataError(f"{path}:{number}: no column {tag_column} in a line of {n_columns} columns")
        try:
            _split_tag(tag)
        except ValueError:
            raise DataError(f"{path}:{number}: malformed tag {tag!r} (expected O, B-TYPE or I-TYPE)") from None
        if not words:
            start_line = number
        words.append(fields[0])
        tags.append(tag)
    flush()
    require_nonempty(sentences, path)

    if scheme == "auto":
        scheme = detect_scheme([t for _, t, _ in sentences])
    examples = []
    for index, (words, tags, line) in enumerate(sentences):
        if scheme == "IOB1":
            tags = iob1_to_iob2(tags)
        if labels is not None:
            for tag in tags:
                check_label(tag, labels, f"{path}:{line} (sentence {index})")
        examples.append(TokenExample(f"{path.stem}-{index}", words, tags))
    return examples
