"""File checks and line/JSON loading shared by the readers. Every failure is a one-line DataError."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keras_electra.errors import DataError


def check_file(path: str | Path) -> Path:
    """The path as a Path, after checking that it is an existing, non-empty file."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: file not found")
    if not path.is_file():
        raise DataError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise DataError(f"{path}: empty file")
    return path


def read_text(path: str | Path) -> str:
    """The whole file as text (UTF-8, a leading BOM dropped), after `check_file`."""
    path = check_file(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise DataError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    if not text.strip():
        raise DataError(f"{path}: empty file (only whitespace)")
    return text


def iter_lines(path: str | Path) -> Iterator[tuple[int, str]]:
    """(1-based line number, line without its line ending).

    Lines are split on "\\n" only (a trailing "\\r" is dropped): str.splitlines would also split on
    characters such as U+2028 or \\x1c that do occur inside real sentences.
    """
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    for number, line in enumerate(lines, start=1):
        yield number, line[:-1] if line.endswith("\r") else line


def load_json(path: str | Path) -> Any:
    """A JSON document, with a DataError naming the line and column of a syntax error."""
    text = read_text(path)
    try:
        return json.loads(text)
    except json.JSONDecodeError as err:
        raise DataError(f"{path}: invalid JSON at line {err.lineno} column {err.colno}: {err.msg}") from None


def iter_jsonl(path: str | Path) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line of a JSON-lines file."""
    for number, line in iter_lines(path):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as err:
            raise DataError(f"{path}:{number}: invalid JSON at column {err.colno}: {err.msg}") from None
        if not isinstance(record, dict):
            raise DataError(f"{path}:{number}: expected a JSON object, got {type(record).__name__}")
        yield number, record


def check_label(label: str, labels: list[str] | tuple[str, ...] | None, where: str) -> str:
    """The label, after checking it is one of `labels` (when given)."""
    if labels is not None and label not in labels:
        raise DataError(f"{where}: unknown label {label!r} (expected one of {', '.join(map(str, labels))})")
    return label


def require_nonempty(items: list, path: str | Path) -> list:
    if not items:
        raise DataError(f"{path}: no examples found")
    return items
