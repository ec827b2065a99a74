"""Example types shared by every dataset reader and the task models built on them.

All are frozen dataclasses so that examples can be hashed, cached and compared. Labels are kept as
the dataset's own strings (or floats for regression, or an index for multiple choice); mapping to
ids belongs to the task preprocessors, which get the label set from `readers.label_list(name)`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "Answer",
    "ChoiceExample",
    "QAExample",
    "RelationExample",
    "TextExample",
    "TokenExample",
]


@dataclass(frozen=True)
class TextExample:
    """A single sentence (`text_b is None`) or a sentence pair; label is a string, a float
    (regression, e.g. STS-B) or None (unlabelled test data)."""

    guid: str
    text_a: str
    text_b: str | None = None
    label: str | float | None = None


@dataclass(frozen=True)
class TokenExample:
    """A pre-tokenised sentence with one IOB2 tag per word (tags is None when unlabelled).

    For Chinese (CLUENER) the words are single characters.
    """

    guid: str
    words: list[str]
    tags: list[str] | None = None

    def __post_init__(self) -> None:
        if self.tags is not None and len(self.tags) != len(self.words):
            raise ValueError(f"{self.guid}: {len(self.words)} words but {len(self.tags)} tags")

    def __hash__(self) -> int:
        return hash((self.guid, tuple(self.words), None if self.tags is None else tuple(self.tags)))


@dataclass(frozen=True)
class Answer:
    """An answer span: `text` starts at character offset `start` of the context."""

    text: str
    start: int

    @property
    def end(self) -> int:
        """Exclusive character end offset."""
        return self.start + len(self.text)


@dataclass(frozen=True)
class QAExample:
    """An extractive QA example (SQuAD v1.1/v2.0 layout). `answers` is empty when `is_impossible`.

    Readers guarantee `context[a.start:a.end] == a.text` for every answer.
    `title` is the article title (used to split by article). `unlocated` holds gold answer texts
    that do not occur in the context at all (CMRC 2018 dev has 193 such human-written answers):
    they count for scoring (`answer_texts`) but are never training spans.
    """

    guid: str
    question: str
    context: str
    answers: list[Answer] = field(default_factory=list)
    is_impossible: bool = False
    title: str = ""
    unlocated: tuple[str, ...] = ()

    @property
    def answer_texts(self) -> list[str]:
        """All gold answer texts, for scoring (located spans first)."""
        return [a.text for a in self.answers] + list(self.unlocated)

    def __hash__(self) -> int:
        return hash((self.guid, self.question, self.context, tuple(self.answers), self.is_impossible, self.unlocated))


@dataclass(frozen=True)
class ChoiceExample:
    """A multiple-choice example; label is the index of the right choice (None when unlabelled)."""

    guid: str
    context: str
    question: str
    choices: list[str]
    label: int | None = None

    def __hash__(self) -> int:
        return hash((self.guid, self.context, self.question, tuple(self.choices), self.label))


DEFAULT_MARKERS: tuple[str, str, str, str] = ("[E1]", "[/E1]", "[E2]", "[/E2]")


@dataclass(frozen=True)
class RelationExample:
    """A relation-classification example (SemEval-2010 Task 8 layout).

    `text` has the entity markup removed; `e1`/`e2` are (start, end) character spans of the two
    entities in it, end exclusive. `label` is the directional relation, e.g. "Cause-Effect(e1,e2)".
    """

    guid: str
    text: str
    e1: tuple[int, int]
    e2: tuple[int, int]
    label: str | None = None

    @property
    def e1_text(self) -> str:
        return self.text[self.e1[0] : self.e1[1]]

    @property
    def e2_text(self) -> str:
        return self.text[self.e2[0] : self.e2[1]]

    def marked_text(self, markers: tuple[str, str, str, str] = DEFAULT_MARKERS, space: bool = True) -> str:
        """The text with entity markers inserted, e.g. "the [E1] kitchen [/E1] ... [E2] house [/E2]".

        `markers` is (e1_open, e1_close, e2_open, e2_close). With `space` the markers are set off by
        single spaces so that a WordPiece tokenizer sees them as separate tokens.
        """
        return mark_entities(self.text, self.e1, self.e2, markers, space)


def mark_entities(
    text: str,
    e1: tuple[int, int],
    e2: tuple[int, int],
    markers: tuple[str, str, str, str] = DEFAULT_MARKERS,
    space: bool = True,
) -> str:
    """Insert entity markers around two (non-overlapping or nested) character spans of `text`."""
    e1_open, e1_close, e2_open, e2_close = markers
    # Insertions sorted by position; at equal positions closings come before openings so that
    # adjacent entities stay well nested.
    inserts = [(e1[0], 1, e1_open), (e1[1], 0, e1_close), (e2[0], 1, e2_open), (e2[1], 0, e2_close)]
    inserts.sort(key=lambda item: (item[0], item[1]))
    pieces: list[str] = []
    last = 0
    for pos, _, marker in inserts:
        pieces.append(text[last:pos])
        pieces.append(f" {marker} " if space else marker)
        last = pos
    pieces.append(text[last:])
    out = "".join(pieces)
    return " ".join(out.split()) if space else out
