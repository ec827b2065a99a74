"""SemEval-2010 Task 8 relation classification files (TRAIN_FILE.TXT, TEST_FILE_FULL.TXT, TEST_FILE.txt).

Each example is a block: `<id>\\t"<sentence with <e1>..</e1> and <e2>..</e2>>"`, then the label line,
then `Comment: ...`, then a blank line (CRLF line endings in the release). The unlabelled
TEST_FILE.txt has only the sentence lines. Labels are the 19 directional classes, e.g.
"Cause-Effect(e2,e1)", plus "Other".
"""

from __future__ import annotations

import re
from pathlib import Path

from keras_electra.data.readers._common import check_label, iter_lines, require_nonempty
from keras_electra.data.readers.examples import RelationExample
from keras_electra.errors import DataError

RELATION_TYPES = (
    "Cause-Effect",
    "Component-Whole",
    "Content-Container",
    "Entity-Destination",
    "Entity-Origin",
    "Instrument-Agency",
    "Member-Collection",
    "Message-Topic",
    "Product-Producer",
)
SEMEVAL_LABELS = ("Other", *(f"{t}({d})" for t in RELATION_TYPES for d in ("e1,e2", "e2,e1")))

_SENTENCE = re.compile(r'^(\d+)\t"(.*)"\s*$')
_MARKUP = re.compile(r"</?e[12]>")


def parse_entity_markup(marked: str, where: str = "sentence") -> tuple[str, tuple[int, int], tuple[int, int]]:
    """(plain text, e1 span, e2 span) of a sentence with `<e1>..</e1>` and `<e2>..</e2>` markup.

    Spans are character offsets into the plain text, end exclusive. Each tag must occur exactly once,
    in open/close order.
    """
    plain: list[str] = []
    positions: dict[str, int] = {}
    length = 0
    last = 0
    for match in _MARKUP.finditer(marked):
        piece = marked[last : match.start()]
        plain.append(piece)
        length += len(piece)
        tag = match.group(0)
        if tag in positions:
            raise DataError(f"{where}: entity tag {tag} occurs more than once")
        positions[tag] = length
        last = match.end()
    plain.append(marked[last:])
    spans = []
    for name in ("e1", "e2"):
        open_tag, close_tag = f"<{name}>", f"</{name}>"
        if open_tag not in positions or close_tag not in positions:
            raise DataError(f"{where}: missing entity tag {open_tag if open_tag not in positions else close_tag}")
        if positions[close_tag] < positions[open_tag]:
            raise DataError(f"{where}: {close_tag} comes before {open_tag}")
        spans.append((positions[open_tag], positions[close_tag]))
    return "".join(plain), spans[0], spans[1]


def read_semeval(
    path: str | Path, labels: tuple[str, ...] | list[str] | None = SEMEVAL_LABELS
) -> list[RelationExample]:
    """RelationExamples of a SemEval-2010 Task 8 file; guid is the sentence id ("1", ..., "10717").

    Labels are checked against `labels` (the 19 directional classes by default; None to skip).
    A file without label lines (TEST_FILE.txt) gives label None.
    """
    examples: list[RelationExample] = []
    pending: tuple[str, str, tuple[int, int], tuple[int, int]] | None = None
    label: str | None = None

    def flush() -> None:
        nonlocal pending, label
        if pending is not None:
            guid, text, e1, e2 = pending
            examples.append(RelationExample(guid, text, e1, e2, label))
        pending, label = None, None

    for number, line in iter_lines(path):
        stripped = line.strip()
        where = f"{path}:{number}"
        match = _SENTENCE.match(line)
        if match:
            flush()
            text, e1, e2 = parse_entity_markup(match.group(2), where)
            pending = (match.group(1), text, e1, e2)
        elif not stripped or stripped.startswith("Comment"):
            continue
        elif pending is None:
            raise DataError(f'{where}: malformed line: expected <id><TAB>"<sentence>", got {stripped[:60]!r}')
        elif label is not None:
            raise DataError(f"{where}: malformed block: a second label line {stripped!r} for sentence {pending[0]}")
        else:
            label = check_label(stripped, labels, where)
    flush()
    return require_nonempty(examples, path)


def read_semeval_keys(path: str | Path) -> dict[str, str]:
    """{sentence id: label} of an answer-key file (`<id><TAB><label>` per line, e.g. TEST_FILE_KEY.TXT)."""
    keys: dict[str, str] = {}
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        fields = line.strip().split("\t")
        if len(fields) != 2 or not fields[0].isdigit():
            raise DataError(f"{path}:{number}: malformed key line {line.strip()!r} (expected <id><TAB><label>)")
        if fields[0] in keys:
            raise DataError(f"{path}:{number}: duplicate id {fields[0]}")
        keys[fields[0]] = fields[1].strip()
    return require_nonempty(keys, path)


def undirected(label: str) -> str:
    """The relation type without its direction: "Cause-Effect(e2,e1)" → "Cause-Effect"."""
    return label.split("(", 1)[0]
