"""The official ELECTRA QA head through every format: its static-shape beam (top_k) exports to
SavedModel, TFLite and ONNX; the in-graph decoding and every predictor give the Keras answers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.export.common import MODEL_KEYS
from tests.export.test_predictor import _close
from tests.export.test_saved_model import assert_serving_answers


def _windows(model, xquad_examples):
    from keras_electra.tasks.question_answerer import encode_windows

    encoded = encode_windows(model.preprocessor, [q for q, _ in xquad_examples], [c for _, c in xquad_examples])
    return {k: encoded[k] for k in MODEL_KEYS}


def _same_beam(ours: np.ndarray, keras_beam: np.ndarray, tolerance: float) -> None:
    """Identical beam indices, log-probabilities and answerability within `tolerance`."""
    from keras_electra.tasks.question_answerer import unpack_beam

    a, b = unpack_beam(ours), unpack_beam(keras_beam)
    for which in ("start", "end"):
        index, log_probs = f"{which}_top_index", b[f"{which}_top_log_probs"]
        differ = a[index] != b[index]
        # Only a near-tie may swap two beam entries: the entry next to it has the same log-probability.
        gap = np.full(log_probs.shape, np.inf)
        step = np.abs(np.diff(log_probs, axis=-1))
        gap[..., 1:] = step  # to the entry before
        gap[..., :-1] = np.minimum(gap[..., :-1], step)  # or the entry after
        assert not np.any(differ & (gap > tolerance)), f"{index}: {np.argwhere(differ & (gap > tolerance))[:5]}"
        assert differ.mean() < 0.01, f"{index}: {differ.mean():.2%} of the beam differs"
    for key in ("start_top_log_probs", "end_top_log_probs", "answerable_logit"):
        assert np.abs(a[key] - b[key]).max() <= tolerance, key


def test_saved_model_decodes_the_beam_in_graph(qa_electra_saved_model, qa_electra_dir, xquad_examples):
    from keras_electra.export.common import load_for_export

    model, info = load_for_export(qa_electra_dir)
    assert info.decoding["head"] == "electra" and info.decoding["beam_size"] == 20
    assert info.format_version == 2  # readers older than the electra head refuse it instead of misdecoding
    questions, contexts = [q for q, _ in xquad_examples], [c for _, c in xquad_examples]
    expected = model.answer(questions, contexts)
    # Random weights answer some questions and not others: both branches of the null rule run.
    assert {e["answer"] == "" for e in expected} == {True, False}
    loaded = tf.saved_model.load(str(qa_electra_saved_model))
    assert_serving_answers(loaded, questions, contexts, expected)
    inputs = _windows(model, xquad_examples)
    beam = loaded.signatures["token_ids"](**{k: tf.constant(v) for k, v in inputs.items()})["logits"].numpy()
    assert beam.shape == (len(inputs["token_ids"]), 20, 43)
    _same_beam(beam, np.asarray(model.predict(inputs, verbose=0)), 1e-4)


@pytest.mark.slow
def test_tflite_and_onnx_beam_parity(qa_electra_saved_model, qa_electra_dir, xquad_examples, export_root):
    from keras_electra.export.common import load_for_export
    from keras_electra.export.onnx import export_onnx, onnx_session, run_onnx
    from keras_electra.export.predictor import predict_any
    from keras_electra.export.tflite import builtin_only, export_tflite, load_interpreter, run_signature
    from keras_electra.tasks.predict import predict_texts

    model, _ = load_for_export(qa_electra_dir)
    inputs = _windows(model, xquad_examples)
    keras_beam = np.asarray(model.predict(inputs, verbose=0))
    tflite = export_tflite(qa_electra_saved_model, export_root / "xquad-electra.tflite")
    assert builtin_only(tflite.read_bytes())
    _same_beam(run_signature(load_interpreter(tflite), inputs, "token_ids", batch_size=64)["logits"], keras_beam, 1e-4)
    onnx_path = export_onnx(qa_electra_saved_model, export_root / "xquad-electra.onnx")
    _same_beam(run_onnx(onnx_session(onnx_path), inputs), keras_beam, 1e-4)
    # Every format answers as the Keras model does.
    question, context = xquad_examples[0]
    questions = [q for q, c in xquad_examples if c == context]
    reference = predict_texts(qa_electra_dir, question=questions, context=context)
    for path in (qa_electra_saved_model, tflite, onnx_path):
        _close(predict_any(path, question=questions, context=context), reference)


@pytest.mark.slow
def test_quantised_tflite_keeps_the_beam_indices(qa_electra_saved_model, qa_electra_dir, xquad_examples, export_root):
    """float16 keeps the beam (indices are exact integers; near-ties may swap); full int8 is refused,
    because int8 activations turn the indices into non-integers (measured: ~5% of them survive)."""
    from keras_electra.export.common import ExportError, load_for_export
    from keras_electra.export.tflite import export_tflite, load_interpreter, run_signature
    from keras_electra.tasks.question_answerer import unpack_beam

    model, _ = load_for_export(qa_electra_dir)
    inputs = _windows(model, xquad_examples)
    with pytest.raises(ExportError, match="int8 quantisation breaks the ELECTRA QA head"):
        export_tflite(qa_electra_saved_model, export_root / "xquad-electra-int8.tflite", "int8",
                      calibration_inputs=inputs)
    assert not (export_root / "xquad-electra-int8.tflite").exists()
    path = export_tflite(qa_electra_saved_model, export_root / "xquad-electra-float16.tflite", "float16")
    raw = run_signature(load_interpreter(path), inputs, "token_ids", batch_size=64)["logits"]
    np.testing.assert_array_equal(raw[:, :, 1], np.rint(raw[:, :, 1]))
    ours, keras_beam = unpack_beam(raw), unpack_beam(np.asarray(model.predict(inputs, verbose=0)))
    assert (ours["start_top_index"] == keras_beam["start_top_index"]).mean() >= 0.95
    assert np.abs(ours["answerable_logit"] - keras_beam["answerable_logit"]).max() <= 1e-2
