"""TFLite: builtin ops, parity with Keras per quantisation, int8 on SST-2 dev, metadata, string in.

Every model runs in the LiteRT interpreter (`ai_edge_litert`).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.export.common import MODEL_KEYS


def _run(path, inputs):
    from keras_electra.export.tflite import load_interpreter, run_signature

    interpreter = load_interpreter(path)
    assert type(interpreter).__module__ == "ai_edge_litert.interpreter"
    return run_signature(interpreter, inputs, "token_ids", batch_size=64)["logits"]


def test_token_ids_model_uses_builtin_ops_only(clf_tflite, capfd):
    from keras_electra.export.tflite import op_types

    for quantize in ("none", "int8"):
        content = clf_tflite(quantize).read_bytes()
        ops = op_types(content)
        assert "FULLY_CONNECTED" in ops and "SOFTMAX" in ops and "GELU" in ops
        assert not [op for op in ops if op.startswith("CUSTOM") or op.startswith("Flex")], ops
        # TFLite's own analyzer agrees (it prints from C++, hence capfd).
        capfd.readouterr()
        tf.lite.experimental.Analyzer.analyze(model_content=content)
        report = capfd.readouterr().out
        assert "Subgraph#0" in report and "CUSTOM" not in report and "Flex" not in report


@pytest.mark.parametrize("quantize, tolerance", [("none", 1e-4), ("float16", 1e-2)])
def test_classifier_parity(clf_tflite, sst2_dev_inputs, quantize, tolerance):
    inputs, keras_logits, _ = sst2_dev_inputs
    subset = {k: v[:256] for k, v in inputs.items()}
    logits = _run(clf_tflite(quantize), subset)
    assert np.abs(logits - keras_logits[:256]).max() <= tolerance


@pytest.mark.parametrize("quantize, tolerance", [("none", 1e-4), ("float16", 1e-2)])
def test_ner_parity(ner_tflite, conll_inputs, quantize, tolerance):
    inputs, keras_logits = conll_inputs
    logits = _run(ner_tflite(quantize), inputs)
    assert logits.shape == keras_logits.shape
    assert np.abs(logits - keras_logits).max() <= tolerance


@pytest.mark.parametrize("quantize", ["dynamic", "int8"])
def test_int8_on_sst2_dev(clf_tflite, sst2_dev_inputs, quantize):
    """Labels agree with Keras on >= 98% of SST-2 dev; dev accuracy within 1 point."""
    inputs, keras_logits, gold = sst2_dev_inputs
    keras_pred = keras_logits.argmax(-1)
    keras_accuracy = float((keras_pred == gold).mean())
    assert keras_accuracy >= 0.65, f"the fixture model did not learn SST-2 ({keras_accuracy:.3f})"
    pred = _run(clf_tflite(quantize), inputs).argmax(-1)
    agreement = float((pred == keras_pred).mean())
    accuracy = float((pred == gold).mean())
    print(f"\n{quantize}: agreement {agreement:.4f}, dev accuracy {accuracy:.4f} (Keras {keras_accuracy:.4f}) "
          f"on {len(gold)} SST-2 dev sentences")
    assert agreement >= 0.98
    assert abs(accuracy - keras_accuracy) <= 0.01


def test_int8_sizes_and_precision(clf_tflite):
    from keras_electra.export.tflite import int8_float_nodes_summary, read_metadata

    sizes = {q: clf_tflite(q).stat().st_size for q in ("none", "float16", "dynamic", "int8")}
    print("\nTFLite sizes (bytes):", sizes)
    assert sizes["int8"] <= 0.30 * sizes["none"]
    assert sizes["dynamic"] <= 0.30 * sizes["none"]
    assert sizes["float16"] <= 0.55 * sizes["none"]
    content = clf_tflite("int8").read_bytes()
    counts = int8_float_nodes_summary(content)
    assert counts["int8"] > 2 * counts["float32"]  # full integer except the documented float spots
    # Every weight-carrying matmul runs in int8, except the token-type one-hot's.
    from keras_electra.export.tflite import _graph, load_interpreter

    ops, tensors = _graph(content)
    dtypes = {d["name"]: d["dtype"] for d in load_interpreter(content).get_tensor_details()}
    matmuls = [dtypes[tensors[outs[0]]] for kind, _, outs in ops if kind == "FULLY_CONNECTED"]
    assert len(matmuls) > 10 and sum(d != np.int8 for d in matmuls) == 1
    meta = json.loads(read_metadata(content)["keras_electra"])
    assert meta["quantize"] == "int8" and meta["op_precision"] == counts


def test_int8_float_nodes_are_softmax_one_hot_norm_statistics_and_attention_matmuls(clf_tflite):
    from keras_electra.export.tflite import _graph, int8_float_nodes

    content = clf_tflite("none").read_bytes()
    names = int8_float_nodes(content)
    ops, tensors = _graph(content)
    kinds = {tensors[o]: kind for kind, _, outs in ops for o in outs}
    chosen = [kinds[n] for n in names if n in kinds]
    assert chosen.count("SOFTMAX") == 2  # one per layer of the 2-layer model
    assert chosen.count("ONE_HOT") == 1
    assert chosen.count("RSQRT") == 5  # the embedding LayerNorm and two per layer
    assert chosen.count("SQUARED_DIFFERENCE") == 5 and chosen.count("MEAN") == 10  # mean and variance
    assert chosen.count("BATCH_MATMUL") == 4  # q·k and probabilities·v per layer
    assert "GELU" not in chosen and chosen.count("FULLY_CONNECTED") == 1  # only the one-hot's matmul stays float


def test_metadata_carries_labels_vocab_and_task(clf_tflite, sst2_dir):
    from keras_electra.export.tflite import read_metadata, read_tflite_info

    info, vocabulary = read_tflite_info(clf_tflite("none"))
    assert info.labels == ["0", "1"] and info.seq_length == 48 and info.task == "sst2"
    assert vocabulary == (sst2_dir / "vocab.txt").read_text(encoding="utf-8").split("\n")[:-1]
    entries = read_metadata(clf_tflite("none").read_bytes())
    assert entries["labels.txt"] == b"0\n1\n"
    assert {"min_runtime_version", "keras_electra", "vocab.txt"} <= set(entries)


def test_dynamic_batch_size(clf_tflite, sst2_dev_inputs):
    from keras_electra.export.tflite import load_interpreter

    inputs, keras_logits, _ = sst2_dev_inputs
    runner = load_interpreter(clf_tflite("none")).get_signature_runner("token_ids")
    for n in (1, 7):
        out = runner(**{k: inputs[k][:n] for k in MODEL_KEYS})["logits"]
        assert out.shape == (n, 2)
        assert np.abs(out - keras_logits[:n]).max() <= 1e-4


# ---------------------------------------------------------------- string in
@pytest.fixture(scope="module")
def text_tflite(sst2_dir, export_root):
    from keras_electra.export.tflite import export_tflite_text

    return export_tflite_text(sst2_dir, export_root / "sst2-text.tflite")


def test_string_in_model_tokenises_on_device(text_tflite, clf_model, sst2_dev):
    from keras_electra.export.tflite import custom_ops, load_interpreter

    assert sorted(custom_ops(text_tflite.read_bytes())) == ["FastBertNormalize", "FastWordpieceTokenizeWithOffsets"]
    model, _ = clf_model
    texts = [e.text_a for e in sst2_dev[:64]] + ["Ünïcödé café — naïve résumé", "x" * 400, ""]
    interpreter = load_interpreter(text_tflite)
    assert type(interpreter).__name__ == "InterpreterWithCustomOps"
    out = interpreter.get_signature_runner("serving_default")(text=np.array([t.encode() for t in texts], object))
    x = model.preprocessor(tf.constant(texts))
    keras_logits = np.asarray(model.predict({k: x[k] for k in MODEL_KEYS}, verbose=0))
    assert np.abs(out["logits"] - keras_logits).max() <= 1e-4
    np.testing.assert_allclose(out["probabilities"].sum(-1), 1.0, atol=1e-5)


def test_dense_packer_equals_the_task_preprocessor(clf_model, sst2_dev):
    """The dense-op packing of the string-in model gives the tasks' ids, pairs included (MRPC)."""
    from keras_electra.data.readers.glue import read_glue
    from keras_electra.export.tflite import TextPacker
    from keras_electra.tasks.preprocessors import ElectraTextClassifierPreprocessor
    from tests.conftest import GLUE

    model, _ = clf_model
    tok = model.preprocessor.tokenizer
    mrpc = read_glue("mrpc", GLUE / "MRPC", "dev")[:48]
    a = tf.constant([e.text_a for e in mrpc])
    b = tf.constant([e.text_b for e in mrpc])
    for length in (16, 48):  # 16 forces longest-first truncation of most pairs
        packer = TextPacker(tok.vocabulary, tok.lower_case, tok.strip_accents, length, tok.cls_id, tok.sep_id,
                            tok.pad_id)
        reference = ElectraTextClassifierPreprocessor(tok, seq_length=length)
        for got, want in ((packer(a, b), reference((a, b))),
                          (packer(tf.constant([e.text_a for e in sst2_dev[:48]])),
                           reference(tf.constant([e.text_a for e in sst2_dev[:48]])))):
            for k in MODEL_KEYS:
                np.testing.assert_array_equal(got[k].numpy(), want[k].numpy(), err_msg=f"{k} at length {length}")


def test_string_in_model_refuses_what_it_cannot_do(conll_dir, sst2_dir, tmp_path):
    from keras_electra.export.common import ExportError
    from keras_electra.export.tflite import export_tflite_text

    with pytest.raises(ExportError, match="classification and regression, not token_classification"):
        export_tflite_text(conll_dir, tmp_path / "x.tflite")
    with pytest.raises(ExportError, match="not 'int8'"):
        export_tflite_text(sst2_dir, tmp_path / "x.tflite", quantize="int8")
    assert not (tmp_path / "x.tflite").exists()


def test_max_seq_len_and_keep_layers(sst2_dir, clf_model, sst2_dev, tmp_path):
    """A shorter fixed length and a slimmed model: the file matches the Keras model with the same changes."""
    from keras_electra.export.common import slim_model, with_seq_length
    from keras_electra.export.encoding import encode_examples
    from keras_electra.export.tflite import export_tflite, read_tflite_info

    path = export_tflite(sst2_dir, tmp_path / "short.tflite", max_seq_len=24, keep_layers=1)
    info, _ = read_tflite_info(path)
    assert info.seq_length == 24 and info.num_layers == 1
    model, _ = clf_model
    slim = slim_model(model, 1)
    inputs = encode_examples(with_seq_length(model, 24), info, sst2_dev[:64])
    assert inputs["token_ids"].shape == (64, 24)
    expected = np.asarray(slim.predict(inputs, verbose=0))
    assert np.abs(_run(path, inputs) - expected).max() <= 1e-4
