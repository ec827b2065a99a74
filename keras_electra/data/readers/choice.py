"""Generic multiple-choice files (any dataset, not only C3's layout): JSONL, CSV or TSV.

- JSONL: one object per line with "question", a "choices" list (or "options", "endings"), an
  optional "context" (or "article", "passage") and a "label".
- CSV / TSV: a header with "question", the choice columns (names starting with "choice", "option"
  or "ending", in header order, e.g. choice0..choice3 as in SWAG's ending0..ending3), an optional
  "context" column and a "label" column. Empty choice cells are dropped (questions may have fewer
  choices than columns).

The label is the right choice's 0-based index ("2"), its letter ("C") or its text. guid is the
"id" field/column when there is one, else the 0-based row index.
"""

from __future__ import annotations

from pathlib import Path

from keras_electra.data.readers._common import iter_jsonl, require_nonempty
from keras_electra.data.readers.examples import ChoiceExample
from keras_electra.data.readers.table import detect_format, read_rows
from keras_electra.errors import DataError

CONTEXT_KEYS = ("context", "article", "passage")
CHOICE_LIST_KEYS = ("choices", "options", "endings")
CHOICE_COLUMN_PREFIXES = ("choice", "option", "ending")


def _label_index(value, choices: list[str], where: str) -> int | None:
    """A label as given (index, letter or the answer text) → the index of the right choice."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise DataError(f"{where}: label {value!r} is not a choice index, letter or text")
    if isinstance(value, int):
        index = value
    else:
        text = str(value).strip()
        if text.isdigit():
            index = int(text)
        elif len(text) == 1 and "A" <= text.upper() <= "Z" and text not in choices:
            index = ord(text.upper()) - ord("A")
        elif text in choices:
            index = choices.index(text)
        else:
            raise DataError(f"{where}: label {value!r} is neither a choice index, a letter nor one of the choices")
    if not 0 <= index < len(choices):
        raise DataError(f"{where}: label {value!r} points outside the {len(choices)} choices")
    return index


def _first(record: dict, keys: tuple[str, ...]):
    return next((record[k] for k in keys if k in record), None)


def read_choice_table(path: str | Path, format: str = "auto") -> list[ChoiceExample]:
    """ChoiceExamples of a generic multiple-choice file (see the module doc)."""
    path = Path(path)
    format = detect_format(path) if format == "auto" else format
    rows: list[tuple[int, dict]] = []
    if format == "jsonl":
        for number, record in iter_jsonl(path):
            choices = _first(record, CHOICE_LIST_KEYS)
            if not isinstance(choices, list):
                raise DataError(f"{path}:{number}: no choice list (a {' / '.join(CHOICE_LIST_KEYS)} field)")
            rows.append((number, {**record, "_choices": choices}))
    else:
        header, table = read_rows(path, format)
        choice_columns = [c for c in header if c.lower().startswith(CHOICE_COLUMN_PREFIXES)]
        if len(choice_columns) < 2:
            raise DataError(f"{path}: needs two or more choice columns (choice0, choice1, ...; columns: "
                            f"{', '.join(header)})")
        for name in ("question", "label"):
            if name not in header:
                raise DataError(f"{path}: missing column {name!r} (columns: {', '.join(header)})")
        rows = [(n, {**r, "_choices": [r[c] for c in choice_columns if r[c].strip()]}) for n, r in table]
    examples = []
    for index, (number, record) in enumerate(rows):
        where = f"{path}:{number}"
        choices = record["_choices"]
        if len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
            raise DataError(f"{where}: needs at least two non-empty text choices, got {choices!r}")
        question = record.get("question")
        if not isinstance(question, str):
            raise DataError(f"{where}: missing 'question' text")
        context = _first(record, CONTEXT_KEYS) or ""
        if not isinstance(context, str):
            raise DataError(f"{where}: the context must be text")
        label = _label_index(record.get("label"), choices, where)
        guid = str(record["id"]) if "id" in record else str(index)
        examples.append(ChoiceExample(guid, context, question, list(choices), label))
    return require_nonempty(examples, path)
