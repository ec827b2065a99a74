"""ONNX: tf2onnx from the SavedModel, onnxruntime with a dynamic batch axis, parity with Keras."""

from __future__ import annotations

import numpy as np
import pytest

from keras_electra.export.common import MODEL_KEYS


def test_classifier_parity_and_dynamic_batch(clf_onnx, sst2_dev_inputs):
    from keras_electra.export.onnx import onnx_session, run_onnx

    session = onnx_session(clf_onnx)
    for value in session.get_inputs():
        assert value.name in MODEL_KEYS and value.shape == ["batch", 48] and value.type == "tensor(int32)"
    assert session.get_outputs()[0].shape == ["batch", 2]
    inputs, keras_logits, _ = sst2_dev_inputs
    for n in (1, 5, 300):
        logits = run_onnx(session, {k: v[:n] for k, v in inputs.items()})
        assert logits.shape == (n, 2)
        assert np.abs(logits - keras_logits[:n]).max() <= 1e-4


def test_ner_parity(ner_onnx, conll_inputs):
    from keras_electra.export.onnx import onnx_session, run_onnx

    inputs, keras_logits = conll_inputs
    logits = run_onnx(onnx_session(ner_onnx), inputs)
    assert logits.shape == keras_logits.shape
    assert np.abs(logits - keras_logits).max() <= 1e-4


def test_exact_gelu_survives_conversion(clf_onnx):
    """TF writes exact GELU with Erfc, which tf2onnx lacks: it must become Erf, not a tanh GELU."""
    import onnx

    model = onnx.load(str(clf_onnx))
    ops = {n.op_type for n in model.graph.node}
    assert "Erf" in ops and "Tanh" not in ops
    assert all(n.domain in ("", "ai.onnx") for n in model.graph.node)


def test_layer_norm_and_gelu_fused(clf_saved_model, clf_onnx, sst2_dev_inputs, tmp_path):
    """Every LayerNorm becomes one node, every GELU the form onnxruntime fuses, and the logits
    stay those of the unfused graph."""
    import onnx
    import onnxruntime as ort

    from keras_electra.export.onnx import convert_saved_model, onnx_session, run_onnx

    plain = convert_saved_model(clf_saved_model, tmp_path / "plain.onnx", fuse=False)
    plain_ops = [n.op_type for n in onnx.load(str(plain)).graph.node]
    fused_ops = [n.op_type for n in onnx.load(str(clf_onnx)).graph.node]
    layer_norms = plain_ops.count("Reciprocal")  # one rsqrt per LayerNorm
    assert layer_norms >= 3 and plain_ops.count("GlobalAveragePool") == 2 * layer_norms
    assert fused_ops.count("LayerNormalization") == layer_norms
    assert "GlobalAveragePool" not in fused_ops and "Neg" not in fused_ops
    assert fused_ops.count("Erf") == plain_ops.count("Erf") > 0

    options = ort.SessionOptions()
    options.optimized_model_filepath = str(tmp_path / "runtime.onnx")
    ort.InferenceSession(str(clf_onnx), options, providers=["CPUExecutionProvider"])
    runtime_ops = [n.op_type for n in onnx.load(str(tmp_path / "runtime.onnx")).graph.node]
    assert runtime_ops.count("Gelu") == plain_ops.count("Erf") and "Erf" not in runtime_ops

    inputs, _, _ = sst2_dev_inputs
    batch = {k: v[:64] for k, v in inputs.items()}
    difference = run_onnx(onnx_session(clf_onnx), batch) - run_onnx(onnx_session(plain), batch)
    assert np.abs(difference).max() <= 1e-5


def test_metadata(clf_onnx, ner_onnx):
    from keras_electra.export.onnx import read_onnx_info

    info, vocabulary = read_onnx_info(clf_onnx)
    assert info.task_type == "classification" and info.labels == ["0", "1"] and len(vocabulary) == 30522
    info, _ = read_onnx_info(ner_onnx)
    assert info.task_type == "token_classification" and info.labels[0] == "O" and "B-PER" in info.labels


def test_not_an_export(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    from keras_electra.export.common import ExportError
    from keras_electra.export.onnx import read_onnx_info

    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "g",
                              [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    onnx.save(helper.make_model(graph), str(tmp_path / "other.onnx"))
    with pytest.raises(ExportError, match="no keras_electra metadata"):
        read_onnx_info(tmp_path / "other.onnx")


def test_unused_node_removal_keeps_values_read_inside_subgraphs():
    """The fusion clean-up must not drop a node whose output only an If/Loop branch reads."""
    from onnx import TensorProto, helper

    from keras_electra.export.onnx_fusion import _drop_unused

    def branch(name, source):
        return helper.make_graph([helper.make_node("Identity", [source], [name])], name, [],
                                 [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1])])

    nodes = [helper.make_node("Neg", ["x"], ["outer"]), helper.make_node("Abs", ["x"], ["dead"]),
             helper.make_node("If", ["c"], ["y"], then_branch=branch("t", "outer"), else_branch=branch("e", "x"))]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1]),
                                           helper.make_tensor_value_info("c", TensorProto.BOOL, [])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])])
    _drop_unused(graph)
    assert [n.op_type for n in graph.node] == ["Neg", "If"]
