"""`predict_texts`: raw text in, labels / entities / answers out, from a fine-tuned model directory,
and the input checks and output dicts that `keras_electra.export.predictor` (the one prediction
path, for every format) shares:

- classification / relation: {"text", "label", "probability", "probabilities": {label: p}}
- regression: {"text", "score"}
- token classification: {"text", "tokens", "tags", "entities": [{"type", "text", "start", "end", "probability"}]}
  (start/end are character offsets, end exclusive)
- question answering: {"question", "context", "answer", "start", "end", "score"}
- multiple choice: {"context", "question", "choices", "choice", "answer", "probability", "probabilities"}
"""

from __future__ import annotations

import re
import sys
import unicodedata
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from keras_electra.errors import DataError

PAIR_SEPARATORS = ("\t", " ||| ")


def split_pair(text: str) -> tuple[str, str | None]:
    """"first<TAB>second" or "first ||| second" → a sentence pair; otherwise a single text."""
    for sep in PAIR_SEPARATORS:
        if sep in text:
            a, b = text.split(sep, 1)
            return a.strip(), b.strip()
    return text, None


_SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(text: str, warn: bool = True) -> str:
    """`text` with lone surrogates (what Python makes of invalid UTF-8 in argv, or of a broken
    JSON escape) replaced by U+FFFD; no tokenizer or TF string op accepts them."""
    text = str(text)
    if _SURROGATE.search(text) is None:
        return text
    if warn:
        print("warning: invalid UTF-8 (lone surrogates) in the input, replaced by U+FFFD", file=sys.stderr)
    return _SURROGATE.sub("\ufffd", text)


def clean_inputs(texts: Sequence[str], question, context, choices):
    """`clean_text` on every input string (texts, question(s), context, choices)."""
    def clean(value):
        if value is None:
            return None
        return clean_text(value) if isinstance(value, str) else [clean_text(v) for v in value]

    return clean(list(texts)) or [], clean(question), clean(context), clean(choices)


def is_blank(text: str) -> bool:
    """The one rule for an empty input: nothing but white space, control characters (NUL ...),
    format characters (zero-width space, joiners, BOM) or U+FFFD. The tokenizer drops all of
    them (as BERT's `_clean_text` does), so such a text would be predicted from no tokens."""
    return all(ch.isspace() or ch == "\ufffd" or unicodedata.category(ch) in ("Cc", "Cf", "Cs") for ch in text)


def check_texts(texts: Sequence[str]) -> None:
    if not texts:
        raise DataError("nothing to predict: give one or more texts")
    for i, text in enumerate(texts):
        if is_blank(text):
            raise DataError(f"text {i + 1} is empty (only white space, control or zero-width characters)")


def predict_texts(
    model_dir: str | Path,
    texts: Sequence[str] = (),
    question: str | Sequence[str] | None = None,
    context: str | None = None,
    choices: Sequence[str] | None = None,
    batch_size: int = 32,
) -> list[dict]:
    """Predictions of the Keras model in `model_dir` for raw inputs (see the module doc).

    - classifiers: `texts` (a pair as "a<TAB>b" or "a ||| b");
    - NER: `texts`; relations: `texts` with `<e1>..</e1>` and `<e2>..</e2>` markers;
    - QA: `context` and one or more questions (`question`, or `texts` as the questions);
    - multiple choice: `context`, `question` and `choices` (or `texts` as the choices).

    The one prediction path: `keras_electra.export.predictor.Predictor`, whose Keras backend
    serves a model directory exactly as its other backends serve SavedModel, TFLite and ONNX.
    """
    if _task_info(model_dir).get("kind") == "prompt":  # not exportable: scored through its template
        from keras_electra.tasks.outputs import load_finetuned
        from keras_electra.tasks.prompting import predict_prompt_texts

        texts = clean_inputs(texts, question, context, choices)[0]
        check_texts(texts)
        return predict_prompt_texts(load_finetuned(model_dir)[0], texts, batch_size)
    from keras_electra.export.predictor import load_predictor

    return load_predictor(model_dir).predict(texts, question=question, context=context, choices=choices,
                                             batch_size=batch_size)


def qa_questions(question: str | Sequence[str] | None, texts: Sequence[str], context: str | None) -> list[str]:
    questions = [question] if isinstance(question, str) else list(question or texts)
    if not context or not questions:
        raise DataError("a question-answering model needs --context and at least one --question")
    return questions


def qa_results(questions: Sequence[str], context: str, answers: Sequence[dict]) -> list[dict]:
    return [{"question": q, "context": context, "answer": a["answer"], "start": a["start"], "end": a["end"],
             "score": a["score"]} for q, a in zip(questions, answers)]


def choice_inputs(context: str | None, question, choices: Sequence[str], num_choices: int):
    """(question, the given choices, the choices padded to the model's `num_choices`), checked."""
    options = list(choices)
    q = question if isinstance(question, str) else (question[0] if question else "")
    if not context or len(options) < 2:
        raise DataError("a multiple-choice model needs --context and at least two choices")
    if len(options) > num_choices:
        raise DataError(f"{len(options)} choices given; the model takes at most {num_choices}")
    return q, options, options + [""] * (num_choices - len(options))


def choice_result(context: str, question: str, options: Sequence[str], probs: np.ndarray) -> list[dict]:
    probs = probs[: len(options)]
    best = int(probs.argmax())
    return [{"context": context, "question": question, "choices": list(options), "choice": best,
             "answer": options[best], "probability": float(probs[best]), "probabilities": [float(p) for p in probs]}]


def _labelled(texts: Sequence[str], probs: np.ndarray, label_names: Sequence[str]) -> list[dict]:
    out = []
    for text, p in zip(texts, probs):
        best = int(p.argmax())
        out.append({"text": text, "label": label_names[best], "probability": float(p[best]),
                    "probabilities": {name: float(v) for name, v in zip(label_names, p)}})
    return out


def format_prediction(result: dict) -> str:
    """One human-readable line (or a few) per prediction."""
    if "answer" in result and "question" in result and "choices" not in result:
        if not result["answer"]:
            return f"Q: {result['question']}\n  A: (no answer)  score {result['score']:.3f}"
        return (f"Q: {result['question']}\n  A: {result['answer']}  [chars {result['start']}-{result['end']}]"
                f"  score {result['score']:.3f}")
    if "choices" in result:
        return f"{result['question']} → {result['answer']} (choice {result['choice']}, p={result['probability']:.3f})"
    if "entities" in result:
        lines = [result["text"]]
        for e in result["entities"]:
            lines.append(f"  {e['type']:<6} {e['text']}  [chars {e['start']}-{e['end']}]  p={e['probability']:.3f}")
        if not result["entities"]:
            lines.append("  (no entities)")
        return "\n".join(lines)
    if "score" in result:
        return f"{result['score']:.4f}\t{result['text']}"
    return f"{result['label']}\t(p={result['probability']:.3f})\t{result['text']}"


def _task_info(model_dir: str | Path) -> dict:
    """task.json of a fine-tuned model directory ({} for anything else, e.g. an export)."""
    from keras_electra.tasks.outputs import TASK_FILE
    from keras_electra.utils.io import read_json

    path = Path(model_dir) / TASK_FILE
    return read_json(path) if path.is_file() else {}
