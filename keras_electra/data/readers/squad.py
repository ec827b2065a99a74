"""SQuAD v1.1 / v2.0 JSON (also XQuAD and CMRC 2018, which use the same layout).

Layout: {"data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question", "answers":
[{"text", "answer_start"}], "is_impossible"?}]}]}]}. In v2.0, unanswerable questions have
`is_impossible: true` and no answers (their `plausible_answers` are ignored).

Every answer is checked: `context[answer_start:answer_start + len(text)] == text`. With
`misaligned="error"` (the default) a mismatch is a DataError naming the question id. With
`misaligned="fix"` the answer is moved to the occurrence of its text nearest to the given offset,
and a text that does not occur in the context at all is kept in `QAExample.unlocated` for scoring
only. CMRC 2018 needs "fix": 200 of its 9,657 dev answers are misaligned, 193 of them free text.
"""

from __future__ import annotations

import math
import random
from pathlib import Path

from keras_electra.data.readers._common import load_json, require_nonempty
from keras_electra.data.readers.examples import Answer, QAExample
from keras_electra.errors import DataError

MISALIGNED = ("error", "fix")


def _nearest_occurrence(context: str, text: str, start: int) -> int:
    best = -1
    position = context.find(text)
    while position != -1:
        if best == -1 or abs(position - start) < abs(best - start):
            best = position
        position = context.find(text, position + 1)
    return best


def read_squad(path: str | Path, misaligned: str = "error") -> list[QAExample]:
    """QAExamples of a SQuAD-format JSON file (v1.1 or v2.0). guid is the question id."""
    if misaligned not in MISALIGNED:
        raise DataError(f"{path}: misaligned must be one of {', '.join(MISALIGNED)}, got {misaligned!r}")
    document = load_json(path)
    if not isinstance(document, dict) or not isinstance(document.get("data"), list):
        raise DataError(f"{path}: not SQuAD-format JSON (expected an object with a 'data' list)")
    examples = []
    seen: set[str] = set()
    for a_index, article in enumerate(document["data"]):
        if not isinstance(article, dict) or not isinstance(article.get("paragraphs"), list):
            raise DataError(f"{path}: article {a_index} has no 'paragraphs' list")
        title = str(article.get("title", f"article-{a_index}"))
        for p_index, paragraph in enumerate(article["paragraphs"]):
            where = f"{path}: article {a_index} paragraph {p_index}"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise DataError(f"{where}: missing 'context'")
            if not isinstance(paragraph.get("qas"), list):
                raise DataError(f"{where}: missing 'qas' list")
            context = paragraph["context"]
            for q_index, qa in enumerate(paragraph["qas"]):
                examples.append(_read_qa(path, where, q_index, qa, context, title, misaligned, seen))
    return require_nonempty(examples, path)


def _read_qa(path, where, q_index, qa, context, title, misaligned, seen) -> QAExample:
    if not isinstance(qa, dict):
        raise DataError(f"{where}: question {q_index} is not an object")
    guid = str(qa.get("id", f"{where.rsplit(': ', 1)[-1]} question {q_index}"))
    if guid in seen:
        raise DataError(f"{path}: duplicate question id {guid!r}")
    seen.add(guid)
    if not isinstance(qa.get("question"), str):
        raise DataError(f"{path}: question {guid!r} has no 'question' text")
    is_impossible = bool(qa.get("is_impossible", False))
    raw_answers = qa.get("answers", [])
    if not isinstance(raw_answers, list):
        raise DataError(f"{path}: question {guid!r}: 'answers' must be a list")
    if not raw_answers and not is_impossible:
        raise DataError(f"{path}: question {guid!r} has no answers and is not marked is_impossible")
    answers: list[Answer] = []
    unlocated: list[str] = []
    for raw in [] if is_impossible else raw_answers:
        if not isinstance(raw, dict) or not isinstance(raw.get("text"), str) or "answer_start" not in raw:
            raise DataError(f"{path}: question {guid!r}: an answer lacks 'text' or 'answer_start'")
        text = raw["text"]
        try:
            start = int(raw["answer_start"])
        except (TypeError, ValueError):
            raise DataError(
                f"{path}: question {guid!r}: answer_start {raw['answer_start']!r} is not an integer"
            ) from None
        if not text:
            raise DataError(f"{path}: question {guid!r}: empty answer text")
        if start < 0 or context[start : start + len(text)] != text:
            if misaligned == "error":
                raise DataError(f"{path}: question {guid!r}: answer {text!r} is not at offset {start} of the context")
            start = _nearest_occurrence(context, text, start)
            if start == -1:
                unlocated.append(text)
                continue
        answers.append(Answer(text, start))
    return QAExample(guid, qa["question"], context, answers, is_impossible, title, tuple(unlocated))


def split_squad(
    examples: list[QAExample], dev_fraction: float = 0.2, seed: int = 0
) -> tuple[list[QAExample], list[QAExample]]:
    """A deterministic (train, dev) split by article, so no paragraph appears in both.

    Articles are keyed by title in order of first appearance, shuffled with `random.Random(seed)`,
    and the first round(dev_fraction × n_articles) of them (at least 1, at most n - 1) form dev.
    Example order within each part follows the input. For XQuAD (48 articles, 1,190 questions) the
    documented split is dev_fraction=0.2, seed=0: 10 dev articles.
    """
    if not 0.0 < dev_fraction < 1.0:
        raise DataError(f"dev_fraction must be in (0, 1), got {dev_fraction}")
    titles = list(dict.fromkeys(example.title for example in examples))
    if len(titles) < 2:
        raise DataError(f"cannot split {len(titles)} article(s) into train and dev")
    shuffled = titles[:]
    random.Random(seed).shuffle(shuffled)
    n_dev = min(max(1, math.floor(dev_fraction * len(titles) + 0.5)), len(titles) - 1)
    dev_titles = set(shuffled[:n_dev])
    train = [e for e in examples if e.title not in dev_titles]
    dev = [e for e in examples if e.title in dev_titles]
    return train, dev
