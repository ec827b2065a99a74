"""WordPiece vocabularies without TensorFlow: read, validate and save `vocab.txt` / `tokenizer.json`.

`ElectraTokenizer` (tensorflow-text) tokenises; `Vocabulary` is what a run needs when the text is
already ids (pretraining from ArrayRecord shards on a machine without TensorFlow): the special
token ids and the files saved beside a model.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from keras_electra.errors import VocabularyError
from keras_electra.utils.io import atomic_file, read_json

PAD, UNK, CLS, SEP, MASK = "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"
REQUIRED_TOKENS = (PAD, UNK, CLS, SEP, MASK)
VOCAB_FILE = "vocab.txt"
TOKENIZER_CONFIG_FILE = "tokenizer.json"


def load_vocabulary(path: str | Path) -> list[str]:
    """Read a `vocab.txt` (one token per line, line number = id) and validate it."""
    path = Path(path)
    if path.is_dir():
        path = path / VOCAB_FILE
    if not path.is_file():
        raise VocabularyError(f"vocabulary file not found: {path}")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise VocabularyError(f"vocabulary {path} is not UTF-8 text: {err}") from None
    tokens = text.split("\n")
    if tokens and tokens[-1] == "":
        tokens.pop()
    tokens = [t.rstrip("\r") for t in tokens]
    return validate_vocabulary(tokens, source=str(path))


def validate_vocabulary(tokens: Sequence[str], source: str = "vocabulary") -> list[str]:
    tokens = list(tokens)
    if not tokens:
        raise VocabularyError(f"{source} is empty")
    missing = [t for t in REQUIRED_TOKENS if t not in tokens]
    if missing:
        raise VocabularyError(f"{source} lacks the special token(s) {', '.join(missing)}")
    seen: set[str] = set()
    for i, token in enumerate(tokens):
        if token in seen:
            raise VocabularyError(f"{source} repeats the token {token!r} (line {i + 1})")
        if token == "":
            raise VocabularyError(f"{source} has an empty token on line {i + 1}")
        seen.add(token)
    return tokens


def write_vocabulary(tokens: Iterable[str], path: str | Path) -> Path:
    tokens = validate_vocabulary(list(tokens), source=str(path))
    path = Path(path)
    with atomic_file(path) as tmp:
        tmp.write_text("\n".join(tokens) + "\n", encoding="utf-8")
    return path


def save_vocabulary_files(directory: str | Path, vocabulary: Sequence[str], lower_case: bool,
                          strip_accents: bool) -> None:
    """Write `vocab.txt` and `tokenizer.json` (casing), the layout released checkpoints use."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with atomic_file(directory / VOCAB_FILE) as tmp:
        tmp.write_text("\n".join(vocabulary) + "\n", encoding="utf-8")
    with atomic_file(directory / TOKENIZER_CONFIG_FILE) as tmp:
        tmp.write_text(json.dumps({"lower_case": lower_case, "strip_accents": strip_accents}) + "\n")


def saved_casing(vocab: str | Path) -> dict[str, bool]:
    """The casing recorded beside a vocabulary: `tokenizer.json` in `vocab` (a directory), or beside
    `vocab` when it is a file named vocab.txt (`build-vocab` writes one only then), else {}."""
    path = Path(vocab)
    if path.is_dir():
        config_path = path / TOKENIZER_CONFIG_FILE
    elif path.name == VOCAB_FILE:
        config_path = path.parent / TOKENIZER_CONFIG_FILE
    else:
        return {}
    if not config_path.is_file():
        return {}
    settings = read_json(config_path, VocabularyError, require_object=True)
    if (set(settings) - {"lower_case", "strip_accents"}
            or not all(isinstance(v, bool) for v in settings.values())):
        raise VocabularyError(f"{config_path}: expected {{\"lower_case\": true|false, \"strip_accents\": true|false}}")
    return settings


def resolve_casing(vocab: Sequence[str] | str | Path, lower_case: bool | None = None,
                   strip_accents: bool | None = None) -> tuple[bool, bool]:
    """(lower_case, strip_accents) for `vocab`: the explicit values win, then the vocabulary's
    tokenizer.json, then BERT's defaults (uncased; accents stripped exactly when lower-casing)."""
    saved = saved_casing(vocab) if isinstance(vocab, str | Path) else {}
    if lower_case is None:
        lower_case = saved.get("lower_case", True)
        if strip_accents is None and "lower_case" in saved:
            strip_accents = saved.get("strip_accents")
    return bool(lower_case), bool(lower_case if strip_accents is None else strip_accents)


class Vocabulary:
    """The TensorFlow-free half of `ElectraTokenizer`: tokens, casing, special ids and saving.

    Same attribute names as the tokenizer, so a run on pre-tokenised data can use either.
    """

    def __init__(self, vocabulary: Sequence[str] | str | Path, lower_case: bool = True,
                 strip_accents: bool | None = None) -> None:
        if isinstance(vocabulary, str | Path):
            vocabulary = load_vocabulary(vocabulary)
        self.vocabulary = validate_vocabulary(vocabulary)
        self.lower_case = bool(lower_case)
        self.strip_accents = self.lower_case if strip_accents is None else bool(strip_accents)
        self._token_to_id = {t: i for i, t in enumerate(self.vocabulary)}

    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    @property
    def special_token_ids(self) -> dict[str, int]:
        """The ids ElectraPretrainer needs: cls, sep, pad, mask."""
        ids = self._token_to_id
        return {"cls": ids[CLS], "sep": ids[SEP], "pad": ids[PAD], "mask": ids[MASK]}

    def save_to_directory(self, directory: str | Path) -> None:
        save_vocabulary_files(directory, self.vocabulary, self.lower_case, self.strip_accents)

    @classmethod
    def from_directory(cls, directory: str | Path, lower_case: bool | None = None,
                       strip_accents: bool | None = None) -> Vocabulary:
        lower, strip = resolve_casing(directory, lower_case, strip_accents)
        return cls(load_vocabulary(directory), lower_case=lower, strip_accents=strip)
