"""One predict for every format: the same dicts from a Keras directory, a SavedModel, TFLite and ONNX."""

from __future__ import annotations

import numpy as np
import pytest


def _close(a: list[dict], b: list[dict], tolerance: float = 1e-4) -> None:
    """Same keys, same strings and labels; numbers within `tolerance`."""
    assert len(a) == len(b)
    for x, y in zip(a, b):
        assert x.keys() == y.keys()
        for key in x:
            if isinstance(x[key], float):
                assert abs(x[key] - y[key]) <= tolerance, key
            elif isinstance(x[key], dict):
                assert x[key].keys() == y[key].keys()
                assert max(abs(x[key][k] - y[key][k]) for k in x[key]) <= tolerance
            elif isinstance(x[key], list) and x[key] and isinstance(x[key][0], dict):
                for u, v in zip(x[key], y[key], strict=True):
                    _close([u], [v], tolerance)
            else:
                assert x[key] == y[key], key


def test_classifier_every_format(sst2_dir, clf_saved_model, clf_tflite, clf_onnx, sst2_dev):
    from keras_electra.export.predictor import Predictor, detect_format, predict_any
    from keras_electra.tasks.predict import predict_texts

    texts = [e.text_a for e in sst2_dev[100:120]]
    reference = predict_texts(sst2_dir, texts)
    assert predict_any(sst2_dir, texts) == reference  # a Keras directory: the tasks' own predict
    paths = {"keras": sst2_dir, "saved_model": clf_saved_model.parent, "saved_model version": clf_saved_model,
             "tflite": clf_tflite("none"), "onnx": clf_onnx}
    for name, path in paths.items():
        predictor = Predictor.load(path)
        assert predictor.format == name.split()[0] == detect_format(path)
        _close(predictor.predict(texts), reference)


def test_ner_every_format(conll_dir, ner_saved_model, ner_tflite, ner_onnx, conll_sentences):
    from keras_electra.export.predictor import predict_any
    from keras_electra.tasks.predict import predict_texts

    texts = conll_sentences[:12]
    reference = predict_texts(conll_dir, texts)
    assert any(r["entities"] for r in reference)
    for path in (ner_saved_model, ner_tflite("none"), ner_onnx):
        _close(predict_any(path, texts), reference)


def test_qa_saved_model_predictor(qa_dir, qa_saved_model, xquad_examples):
    from keras_electra.export.predictor import predict_any
    from keras_electra.tasks.predict import predict_texts

    question, context = xquad_examples[0]
    questions = [q for q, c in xquad_examples if c == context]
    reference = predict_texts(qa_dir, question=questions, context=context)
    _close(predict_any(qa_saved_model, question=questions, context=context), reference)


def test_logits_check_the_sequence_length(clf_onnx, sst2_dev_inputs):
    from keras_electra.export.common import ExportError
    from keras_electra.export.predictor import Predictor

    inputs, keras_logits, _ = sst2_dev_inputs
    predictor = Predictor.load(clf_onnx)
    np.testing.assert_allclose(predictor.logits({k: v[:4] for k, v in inputs.items()}), keras_logits[:4], atol=1e-4)
    with pytest.raises(ExportError, match=r"expected \[batch, 48\]"):
        predictor.logits({k: v[:4, :32] for k, v in inputs.items()})


def test_unknown_paths(tmp_path):
    from keras_electra.export.common import ExportError
    from keras_electra.export.predictor import detect_format, predict_any

    with pytest.raises(ExportError, match="model not found"):
        detect_format(tmp_path / "nope")
    (tmp_path / "weights.bin").write_bytes(b"\0")
    with pytest.raises(ExportError, match="unknown model file type '.bin'"):
        detect_format(tmp_path / "weights.bin")
    with pytest.raises(ExportError, match="neither a fine-tuned model directory"):
        detect_format(tmp_path)
    (tmp_path / "plain.tflite").write_bytes(b"\0" * 64)
    with pytest.raises(ExportError, match="plain.tflite: (not a readable TFLite model|no keras_electra metadata)"):
        predict_any(tmp_path / "plain.tflite", ["text"])
