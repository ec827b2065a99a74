"""C3 (Chinese multiple-choice reading comprehension, CLUE) JSON files: c3-{m,d}-{train,dev,test}.json.

Each file is a list of documents `[[lines...], [{"question", "choice": [...], "answer"}...], "doc-id"]`.
A question becomes a ChoiceExample with context = the document lines joined by "\\n" (as the CLUE
baseline does) and label = the index of the answer among the choices (None without an answer).
Questions have 2 to 4 choices.
"""

from __future__ import annotations

from pathlib import Path

from keras_electra.data.readers._common import load_json, require_nonempty
from keras_electra.data.readers.examples import ChoiceExample
from keras_electra.errors import DataError


def read_c3(path: str | Path) -> list[ChoiceExample]:
    """ChoiceExamples of one C3 file; guid is "<doc id>-<question index>"."""
    document = load_json(path)
    if not isinstance(document, list):
        raise DataError(f"{path}: not C3-format JSON (expected a list of documents)")
    examples = []
    for d_index, doc in enumerate(document):
        where = f"{path}: document {d_index}"
        if not isinstance(doc, list) or len(doc) < 2 or not isinstance(doc[0], list) or not isinstance(doc[1], list):
            raise DataError(f"{where}: expected [[lines], [questions], id]")
        if not all(isinstance(line, str) for line in doc[0]):
            raise DataError(f"{where}: document lines must be strings")
        doc_id = str(doc[2]) if len(doc) > 2 else str(d_index)
        context = "\n".join(doc[0])
        for q_index, qa in enumerate(doc[1]):
            guid = f"{doc_id}-{q_index}"
            if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                raise DataError(f"{path}: question {guid!r} has no 'question' text")
            choices = qa.get("choice")
            if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) for c in choices):
                raise DataError(f"{path}: question {guid!r} needs a 'choice' list of at least two strings")
            label = None
            answer = qa.get("answer")
            if answer is not None:
                if answer not in choices:
                    raise DataError(f"{path}: question {guid!r}: answer {answer!r} is not one of its choices")
                label = choices.index(answer)
            examples.append(ChoiceExample(guid, context, qa["question"], list(choices), label))
    return require_nonempty(examples, path)
