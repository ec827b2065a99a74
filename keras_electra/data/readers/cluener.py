"""CLUENER2020 (CLUE fine-grained Chinese NER) JSON-lines files: train.json, dev.json, test.json.

Each line is `{"text": ..., "label": {type: {entity text: [[start, end_inclusive], ...]}}}`; the
unlabelled test.json has `{"id", "text"}` only. Examples are character-level: words are the single
characters of the text (spaces included, so offsets stay aligned) and tags are IOB2 `B-type`/`I-type`.

Flat IOB2 cannot hold nested entities. train.json has two, both on line 1507 (the companies 招商银行
and 永隆银行 inside a book title): `overlap="outer"` (the default) keeps the longer entity and drops
those it overlaps (so train gives 23,969 of its 23,971 spans), `overlap="error"` raises a DataError.
"""

from __future__ import annotations

from pathlib import Path

from keras_electra.data.readers._common import iter_jsonl, require_nonempty
from keras_electra.data.readers.examples import TokenExample
from keras_electra.errors import DataError

CLUENER_TYPES = (
    "address",
    "book",
    "company",
    "game",
    "government",
    "movie",
    "name",
    "organization",
    "position",
    "scene",
)
CLUENER_TAGS = ("O", *(f"{p}-{t}" for t in CLUENER_TYPES for p in ("B", "I")))


OVERLAP = ("outer", "error")


def read_cluener(
    path: str | Path, types: tuple[str, ...] | list[str] | None = CLUENER_TYPES, overlap: str = "outer"
) -> list[TokenExample]:
    """Character-level TokenExamples; guid is the record's "id" or its 0-based line index.

    Every span must match its entity text and types must be in `types` (None to accept any).
    Overlapping entities: see `overlap` in the module doc. A record without "label" gives tags None.
    """
    if overlap not in OVERLAP:
        raise DataError(f"{path}: overlap must be one of {', '.join(OVERLAP)}, got {overlap!r}")
    examples = []
    for index, (number, record) in enumerate(iter_jsonl(path)):
        where = f"{path}:{number}"
        text = record.get("text")
        if not isinstance(text, str) or not text:
            raise DataError(f"{where}: missing 'text'")
        guid = str(record.get("id", index))
        words = list(text)
        if "label" not in record:
            examples.append(TokenExample(guid, words, None))
            continue
        examples.append(TokenExample(guid, words, _tags(text, record["label"], types, where, overlap)))
    return require_nonempty(examples, path)


def _tags(text: str, label, types, where: str, overlap: str) -> list[str]:
    tags = ["O"] * len(text)
    if label is None:
        return tags
    spans: list[tuple[int, int, str, str]] = []
    if not isinstance(label, dict):
        raise DataError(f"{where}: 'label' must be an object of {{type: {{entity: [[start, end]]}}}}")
    for kind, entities in label.items():
        if types is not None and kind not in types:
            raise DataError(f"{where}: unknown entity type {kind!r} (expected one of {', '.join(types)})")
        if not isinstance(entities, dict):
            raise DataError(f"{where}: entities of type {kind!r} must be an object")
        for entity, offsets in entities.items():
            if not isinstance(offsets, list):
                raise DataError(f"{where}: spans of {entity!r} must be a list")
            for span in offsets:
                if not (isinstance(span, list) and len(span) == 2 and all(isinstance(i, int) for i in span)):
                    raise DataError(f"{where}: malformed span {span!r} of {entity!r} (expected [start, end])")
                start, end = span
                if not 0 <= start <= end < len(text) or text[start : end + 1] != entity:
                    raise DataError(f"{where}: span {span} does not match entity {entity!r}")
                spans.append((start, end, kind, entity))
    # Longest first, so that with overlap="outer" a nested entity loses to the one containing it.
    spans.sort(key=lambda s: (s[0] - s[1], s[0]))
    for start, end, kind, entity in spans:
        if any(tag != "O" for tag in tags[start : end + 1]):
            if overlap == "error":
                raise DataError(f"{where}: entity {entity!r} at [{start}, {end}] overlaps another entity")
            continue
        tags[start] = f"B-{kind}"
        for i in range(start + 1, end + 1):
            tags[i] = f"I-{kind}"
    return tags
