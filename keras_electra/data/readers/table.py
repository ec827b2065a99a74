"""Generic CSV / TSV / JSON-lines classification data: `read_table`.

TSV is split on tabs with quoting disabled (like GLUE: a sentence may start with a quote that is not
a CSV quote); CSV follows RFC 4180 quoting; JSONL has one object per line. The first row of CSV/TSV
is the header unless `columns` names the columns of a headerless file.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Sequence
from pathlib import Path

from keras_electra.data.readers._common import check_label, iter_jsonl, iter_lines, read_text, require_nonempty
from keras_electra.data.readers.examples import TextExample
from keras_electra.errors import DataError

FORMATS = ("auto", "csv", "tsv", "jsonl")


def detect_format(path: str | Path) -> str:
    """ "csv", "tsv" or "jsonl" from the file suffix (.csv, .tsv/.txt, .jsonl/.json)."""
    suffix = Path(path).suffix.lower()
    if suffix == ".csv":
        return "csv"
    if suffix in (".tsv", ".txt"):
        return "tsv"
    if suffix in (".jsonl", ".json", ".ndjson"):
        return "jsonl"
    raise DataError(f"{path}: cannot tell the format from the suffix {suffix!r}; pass format='csv', 'tsv' or 'jsonl'")


def read_rows(
    path: str | Path, format: str = "tsv", columns: Sequence[str] | None = None
) -> tuple[list[str], list[tuple[int, dict[str, str]]]]:
    """(column names, [(line number, {column: value})]) of a delimited file.

    Every row must have as many fields as the header; a trailing empty line is allowed.
    """
    if format not in ("csv", "tsv"):
        raise DataError(f"{path}: read_rows handles csv and tsv, not {format!r}")
    if format == "tsv":
        numbered = [(n, line.split("\t")) for n, line in iter_lines(path) if line.strip()]
    else:
        text = read_text(path)
        reader = csv.reader(io.StringIO(text, newline=""))
        numbered = []
        try:
            for fields in reader:
                if any(f.strip() for f in fields):
                    numbered.append((reader.line_num, fields))
        except csv.Error as err:
            raise DataError(f"{path}:{reader.line_num}: malformed CSV: {err}") from None
    if columns is None:
        if not numbered:
            raise DataError(f"{path}: empty file")
        header = [name.strip() for name in numbered[0][1]]
        numbered = numbered[1:]
    else:
        header = list(columns)
    if len(set(header)) != len(header):
        raise DataError(f"{path}: duplicate column names in the header {header}")
    rows = []
    for number, fields in numbered:
        if len(fields) != len(header):
            raise DataError(f"{path}:{number}: malformed row: {len(fields)} fields, expected {len(header)} ({header})")
        rows.append((number, dict(zip(header, fields))))
    return header, rows


def read_table(
    path: str | Path,
    text_columns: Sequence[str],
    label_column: str | None = None,
    format: str = "auto",
    labels: Sequence[str] | None = None,
    label_type: type = str,
    guid_column: str | None = None,
    columns: Sequence[str] | None = None,
) -> list[TextExample]:
    """TextExamples from a CSV, TSV or JSONL file with named columns.

    text_columns: one (single sentence) or two (sentence pair) column names.
    label_column: the label column, or None for unlabelled data.
    labels: when given, every label must be one of them.
    label_type: str (classification) or float (regression).
    guid_column: a column holding example ids (default: the 0-based row index).
    columns: names for a headerless CSV/TSV file.
    """
    if format not in FORMATS:
        raise DataError(f"{path}: unknown format {format!r} (expected one of {', '.join(FORMATS)})")
    if not 1 <= len(text_columns) <= 2:
        raise DataError(f"{path}: text_columns must name one or two columns, got {list(text_columns)}")
    if label_type not in (str, float):
        raise DataError(f"{path}: label_type must be str or float, got {label_type!r}")
    if format == "auto":
        format = detect_format(path)
    wanted = [*text_columns, *([label_column] if label_column else []), *([guid_column] if guid_column else [])]
    if format == "jsonl":
        rows = []
        for number, record in iter_jsonl(path):
            missing = [c for c in wanted if c not in record]
            if missing:
                raise DataError(f"{path}:{number}: missing column {missing[0]!r}")
            rows.append((number, {c: record[c] for c in wanted}))
    else:
        header, rows = read_rows(path, format, columns)
        missing = [c for c in wanted if c not in header]
        if missing:
            raise DataError(f"{path}: missing column {missing[0]!r} (columns: {', '.join(header)})")
    examples = []
    for index, (number, row) in enumerate(rows):
        where = f"{path}:{number}"
        texts = []
        for column in text_columns:
            value = row[column]
            if not isinstance(value, str):
                raise DataError(f"{where}: column {column!r} must be text, got {type(value).__name__}")
            texts.append(value)
        label = None
        if label_column:
            label = _parse_label(row[label_column], label_type, labels, where)
        guid = str(row[guid_column]) if guid_column else str(index)
        examples.append(TextExample(guid, texts[0], texts[1] if len(texts) > 1 else None, label))
    return require_nonempty(examples, path)


def _parse_label(value, label_type: type, labels: Sequence[str] | None, where: str) -> str | float:
    if label_type is float:
        try:
            return float(value)
        except (TypeError, ValueError):
            raise DataError(f"{where}: label {value!r} is not a number") from None
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise DataError(f"{where}: label {value!r} must be a string or an integer")
    return check_label(str(value).strip(), labels, where)
