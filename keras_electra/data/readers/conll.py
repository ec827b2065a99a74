"""CoNLL-format NER files (CoNLL-2003: "word POS chunk NE" per line, blank line between sentences).

The NER tag is the last column (configurable). `-DOCSTART-` lines are document separators and are
skipped. A line with a tab is split on tabs (so a word may be a full-width space, as in Weibo NER),
otherwise on whitespace. The tagging scheme (IOB1 as in the original eng.* files, IOB2, or
BIOES/BMES with S-, E- and M- tags) is detected from the tags, and the examples always carry IOB2
tags. Entity types are free text: Weibo NER's `B-PER.NOM` has the type `PER.NOM`.

Weibo NER (Peng & Dredze 2015, `weiboNER_2nd_conll.*`) writes each character followed by its
position in the word segmentation ("我0", "们1"); when every word of a file has that shape the digit
is dropped (`segment_digits="auto"`), so the model sees the characters themselves.
"""

from __future__ import annotations

import re
from pathlib import Path

from keras_electra.data.readers._common import check_label, iter_lines, require_nonempty
from keras_electra.data.readers.examples import TokenExample
from keras_electra.errors import DataError

SCHEMES = ("auto", "IOB1", "IOB2", "IOBES")
SEGMENT_DIGITS = ("auto", "strip", "keep")
# A Weibo-NER word: a character (or a run of non-digits) followed by its segment position; a digit
# character is a single digit followed by its position.
_SEGMENTED_WORD = re.compile(r"(\D+|\d)(\d+)")
CONLL2003_TYPES = ("PER", "ORG", "LOC", "MISC")
CONLL2003_TAGS = ("O", *(f"{p}-{t}" for t in CONLL2003_TYPES for p in ("B", "I")))


def _split_tag(tag: str) -> tuple[str, str]:
    """("B"|"I"|"O", type) of a tag; raises ValueError for anything else."""
    if tag == "O":
        return "O", ""
    prefix, sep, kind = tag.partition("-")
    if not sep or prefix not in ("B", "I", "S", "E", "M") or not kind:
        raise ValueError(tag)
    return prefix, kind


def iobes_to_iob2(tags: list[str]) -> list[str]:
    """BIOES / BMES → IOB2: S-X opens a one-word entity (B-X), E-X and M-X continue one (I-X).

    An E-/M-/I- tag that does not continue an entity of its type opens one, as in IOB1.
    """
    plain = []
    for tag in tags:
        prefix, kind = _split_tag(tag)
        plain.append({"S": f"B-{kind}", "E": f"I-{kind}", "M": f"I-{kind}"}.get(prefix, tag))
    return iob1_to_iob2(plain)


def detect_scheme(sentences: list[list[str]]) -> str:
    """ "IOBES" if any tag is S-, E- or M-; "IOB1" if an entity starts with an I- tag (allowed only in
    IOB1); otherwise "IOB2"."""
    if any(_split_tag(tag)[0] in "SEM" for tags in sentences for tag in tags if tag != "O"):
        return "IOBES"
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
    segment_digits: str = "auto",
) -> list[TokenExample]:
    """Sentences of a CoNLL file as TokenExamples with IOB2 tags.

    tag_column: index of the NER column (default the last). scheme: "auto", "IOB1", "IOB2" or "IOBES".
    labels: when given, every IOB2 tag must be one of them. guid: "<file stem>-<sentence index>".
    segment_digits: Weibo NER's segment-position digit after each character: "auto" drops it when
    every word has one, "strip" always, "keep" never. Whitespace-only words tagged O (Weibo has
    full-width spaces) are dropped: they carry no entity and tokenise to nothing.
    """
    if scheme not in SCHEMES:
        raise DataError(f"{path}: unknown tagging scheme {scheme!r} (expected one of {', '.join(SCHEMES)})")
    if segment_digits not in SEGMENT_DIGITS:
        raise DataError(f"{path}: segment_digits must be one of {', '.join(SEGMENT_DIGITS)}, got {segment_digits!r}")
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
        if not line.strip():
            flush()
            continue
        if "\t" in line:
            fields = [f.strip(" \r\n") for f in line.rstrip("\t").split("\t")]
        else:
            fields = line.split()
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
            raise DataError(f"{path}:{number}: malformed tag {tag!r} (expected O, B-TYPE, I-TYPE, "
                            "or S-/E-/M-TYPE for BIOES)") from None
        if not words:
            start_line = number
        words.append(fields[0])
        tags.append(tag)
    flush()
    require_nonempty(sentences, path)

    if scheme == "auto":
        scheme = detect_scheme([t for _, t, _ in sentences])
    strip = segment_digits == "strip" or (
        segment_digits == "auto" and all(_SEGMENTED_WORD.fullmatch(w) for ws, _, _ in sentences for w in ws))
    examples = []
    for index, (words, tags, line) in enumerate(sentences):
        if strip:
            words = [m.group(1) if (m := _SEGMENTED_WORD.fullmatch(w)) else w for w in words]
        if any(not w.strip() for w in words):
            kept = [(w, t) for w, t in zip(words, tags) if w.strip() or t != "O"]
            words, tags = [w for w, _ in kept], [t for _, t in kept]
            if not words:
                continue
        if scheme == "IOB1":
            tags = iob1_to_iob2(tags)
        elif scheme == "IOBES":
            tags = iobes_to_iob2(tags)
        if labels is not None:
            for tag in tags:
                check_label(tag, labels, f"{path}:{line} (sentence {index})")
        examples.append(TokenExample(f"{path.stem}-{index}", words, tags))
    return examples
