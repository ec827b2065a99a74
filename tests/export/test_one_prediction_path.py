"""One prediction path: `predict_texts` is the Predictor's Keras backend, and the int8 calibration
encoder lives apart from the predictor, so `export.tflite` and `export.predictor` do not import each other."""

from __future__ import annotations

import ast
from pathlib import Path

import keras_electra

PACKAGE = Path(keras_electra.__file__).parent


def _imports(module: str) -> set[str]:
    """Every keras_electra module `module` imports, at the top or inside functions."""
    tree = ast.parse((PACKAGE / (module.replace(".", "/") + ".py")).read_text())
    return {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}


def test_tflite_and_the_predictor_do_not_import_each_other():
    assert "keras_electra.export.predictor" not in _imports("export.tflite")
    assert "keras_electra.export.predictor" not in _imports("export.encoding")
    assert "keras_electra.export.tflite" in _imports("export.predictor")  # one direction only


def test_predict_texts_is_the_predictor_and_runners_have_no_second_decoder():
    from keras_electra.tasks.registry import runners

    assert "keras_electra.export.predictor" in _imports("tasks.predict")
    for runner in runners().values():
        assert not hasattr(runner, "decode"), type(runner).__name__
