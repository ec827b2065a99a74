"""Unlabelled text from task datasets, as a pretraining corpus (domain-adaptive pretraining).

Only the text is kept: labels, answers, tags and entity spans are dropped. Each example (or each
distinct QA context) becomes one paragraph of a "paragraphs" corpus, so the in-graph sentence
splitter (CJK punctuation included) cuts it into sentences at pretraining time. Take the train
split only when the model will be evaluated on the same dataset.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

from keras_electra.data.readers import (
    ChoiceExample,
    QAExample,
    RelationExample,
    TextExample,
    TokenExample,
    read_dataset,
)
from keras_electra.errors import DataError
from keras_electra.utils.io import atomic_file


def _join_words(words: Sequence[str]) -> str:
    # CLUENER stores Chinese as one character per "word": those join without spaces.
    if all(len(w) == 1 for w in words) and any("\u4e00" <= w <= "\u9fff" for w in words):
        return "".join(words)
    return " ".join(words)


def example_texts(example) -> list[str]:
    """The raw text fields of one example, without labels (QA: the context and the question)."""
    if isinstance(example, TextExample):
        return [t for t in (example.text_a, example.text_b) if t]
    if isinstance(example, TokenExample):
        return [_join_words(example.words)]
    if isinstance(example, QAExample):
        return [example.context, example.question]
    if isinstance(example, ChoiceExample):
        return [example.context, example.question]
    if isinstance(example, RelationExample):
        return [example.text]
    raise DataError(f"no text fields known for {type(example).__name__}")


def task_paragraphs(examples: Iterable) -> list[str]:
    """One paragraph per distinct text, in first-seen order (QA contexts repeat per question)."""
    seen: set[str] = set()
    paragraphs: list[str] = []
    for example in examples:
        for text in example_texts(example):
            text = " ".join(text.split())  # a paragraph is one line
            if text and text not in seen:
                seen.add(text)
                paragraphs.append(text)
    return paragraphs


def write_task_corpus(sources: Sequence[tuple[str, str, str]], output: str | Path) -> dict[str, int]:
    """Write the text of each (dataset, data path, split) to one corpus file, atomically.

    Returns the number of paragraphs taken from each source.
    """
    counts: dict[str, int] = {}
    paragraphs: list[str] = []
    for name, path, split in sources:
        taken = task_paragraphs(read_dataset(name, path, split))
        if not taken:
            raise DataError(f"{name} {split} in {path} holds no text")
        counts[f"{name}:{split}"] = len(taken)
        paragraphs.extend(taken)
    with atomic_file(Path(output)) as tmp:
        tmp.write_text("\n\n".join(paragraphs) + "\n", encoding="utf-8")
    return counts
