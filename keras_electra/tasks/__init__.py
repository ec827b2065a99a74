"""Fine-tuning: task models, preprocessors, the paper's recipe, metrics and the CLI.

Names resolve lazily, so `keras-electra --help` does not import TensorFlow.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "ElectraTask": "base",
    "ElectraClassifier": "classifier",
    "ElectraTokenClassifier": "token_classifier",
    "ElectraQuestionAnswerer": "question_answerer",
    "ElectraMultipleChoice": "multiple_choice",
    "ElectraRelationClassifier": "relation_classifier",
    "ElectraTextClassifierPreprocessor": "preprocessors",
    "ElectraTokenClassifierPreprocessor": "preprocessors",
    "ElectraQuestionAnswererPreprocessor": "preprocessors",
    "ElectraMultipleChoicePreprocessor": "preprocessors",
    "ElectraRelationClassifierPreprocessor": "preprocessors",
    "FinetuneConfig": "finetune",
    "finetune": "finetune",
    "evaluate": "finetune",
    "load_finetuned": "outputs",
    "predict_texts": "predict",
    "TASKS": "registry",
    "get_task": "registry",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
