"""SavedModel for TF Serving: layout, signatures (saved_model_cli, a fresh process), answers."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.export.common import MODEL_KEYS

REPO = Path(__file__).resolve().parents[2]


def _run(args: list[str], timeout: int = 240, extra_env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    env = {"TF_CPP_MIN_LOG_LEVEL": "2", "PATH": str(Path(sys.executable).parent), "HOME": str(Path.home()),
           **(extra_env or {})}
    return subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=REPO)


def _keras_logits(model, texts):
    x = model.preprocessor(tf.constant(texts))
    return np.asarray(model.predict({k: x[k] for k in MODEL_KEYS}, verbose=0)), x


def test_tf_serving_layout(clf_saved_model):
    assert clf_saved_model.name == "1" and clf_saved_model.parent.name == "sst2"
    assert (clf_saved_model / "saved_model.pb").is_file()
    assert (clf_saved_model / "variables" / "variables.index").is_file()
    vocab = (clf_saved_model / "assets" / "vocab.txt").read_text(encoding="utf-8").split("\n")
    assert vocab[101:104] == ["[CLS]", "[SEP]", "[MASK]"]
    assert (clf_saved_model / "assets" / "labels.txt").read_text() == "0\n1\n"
    meta = json.loads((clf_saved_model / "assets.extra" / "keras_electra.json").read_text())
    assert meta["task_type"] == "classification" and meta["seq_length"] == 48 and meta["task"] == "sst2"
    leftovers = [p.name for p in clf_saved_model.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_signatures_with_saved_model_cli(clf_saved_model):
    result = _run([str(Path(sys.executable).parent / "saved_model_cli"), "show", "--dir", str(clf_saved_model),
                   "--all"])
    assert result.returncode == 0, result.stderr[-2000:]
    out = result.stdout
    serving = out[out.index("signature_def['serving_default']"):]
    serving = serving[:serving.index("Method name is")]
    assert "inputs['text'] tensor_info:\n        dtype: DT_STRING\n        shape: (-1)" in serving
    for name, dtype in (("label", "DT_STRING"), ("label_id", "DT_INT32"), ("probabilities", "DT_FLOAT"),
                        ("probability", "DT_FLOAT"), ("logits", "DT_FLOAT")):
        assert f"outputs['{name}'] tensor_info:\n        dtype: {dtype}" in serving, name
    ids = out[out.index("signature_def['token_ids']"):]
    ids = ids[:ids.index("Method name is")]
    for name in MODEL_KEYS:
        assert f"inputs['{name}'] tensor_info:\n        dtype: DT_INT32\n        shape: (-1, 48)" in ids
    assert "outputs['logits'] tensor_info:\n        dtype: DT_FLOAT\n        shape: (-1, 2)" in ids
    assert out.count("Method name is: tensorflow/serving/predict") >= 2


def test_fresh_process_without_keras_electra(clf_saved_model, clf_model, sst2_dev):
    """tf.saved_model.load in a process that imports only tensorflow and tensorflow_text."""
    model, _ = clf_model
    texts = [e.text_a for e in sst2_dev[:24]]
    logits, packed = _keras_logits(model, texts)
    script = textwrap.dedent("""
        import json, sys
        import numpy as np
        import tensorflow as tf
        import tensorflow_text  # the tokenizer ops
        loaded = tf.saved_model.load(sys.argv[1])
        texts = json.loads(sys.argv[2])
        ids = json.loads(sys.argv[3])
        out = loaded.signatures["serving_default"](text=tf.constant(texts))
        by_ids = loaded.signatures["token_ids"](**{k: tf.constant(v, tf.int32) for k, v in ids.items()})
        assert "keras_electra" not in sys.modules
        print(json.dumps({
            "label": [s.decode() for s in out["label"].numpy()],
            "probabilities": out["probabilities"].numpy().tolist(),
            "logits": out["logits"].numpy().tolist(),
            "ids_logits": by_ids["logits"].numpy().tolist(),
            "inputs": sorted(loaded.signatures["serving_default"].structured_input_signature[1]),
        }))
    """)
    ids = {k: packed[k].numpy().tolist() for k in MODEL_KEYS}
    result = _run([sys.executable, "-c", script, str(clf_saved_model), json.dumps(texts), json.dumps(ids)])
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["inputs"] == ["text"]
    assert np.abs(np.array(out["logits"]) - logits).max() <= 1e-4
    assert np.abs(np.array(out["ids_logits"]) - logits).max() <= 1e-4
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    assert np.abs(np.array(out["probabilities"]) - probs).max() <= 1e-5
    assert out["label"] == [model.label_names[i] for i in logits.argmax(-1)]


def test_ner_signature_gives_entity_tag_per_token(ner_saved_model, ner_model, conll_sentences):
    from keras_electra.tasks.token_classifier import decode_text

    model, _ = ner_model
    loaded = tf.saved_model.load(str(ner_saved_model))
    out = {k: v.numpy() for k, v in loaded.signatures["serving_default"](text=tf.constant(conll_sentences)).items()}
    packed = model.preprocessor.encode_text(tf.constant(conll_sentences))
    keras_logits = np.asarray(model.predict({k: packed[k] for k in MODEL_KEYS}, verbose=0))
    assert np.abs(out["logits"] - keras_logits).max() <= 1e-4
    np.testing.assert_array_equal(out["char_start"], packed["char_start"].numpy())
    expected = decode_text(model, conll_sentences)
    for row, result in enumerate(expected):
        starts = out["is_word_start"][row]
        tags = [t.decode() for t in out["token_labels"][row][starts]]
        assert tags == result["tags"][:len(tags)]
        assert all(t == b"" for t in out["token_labels"][row][~starts])
        tokens = [t.decode() for t in out["tokens"][row] if t]
        assert tokens[0] == "[CLS]" and tokens[-1] == "[SEP]"


def test_qa_signature_decodes_spans_in_graph(qa_saved_model, qa_dir, xquad_examples):
    from keras_electra.export.common import load_for_export

    model, _ = load_for_export(qa_dir)
    questions, contexts = [q for q, _ in xquad_examples], [c for _, c in xquad_examples]
    expected = model.answer(questions, contexts)
    windows = model.preprocessor.encode(tf.constant(questions), tf.constant(contexts))["example_index"].numpy()
    assert len(windows) > len(questions)  # long contexts really span several windows
    loaded = tf.saved_model.load(str(qa_saved_model))
    assert_serving_answers(loaded, questions, contexts, expected)


def _cli_label(stdout: str) -> str:
    assert "Result for output key label:" in stdout, stdout[-2000:]
    return stdout.split("Result for output key label:")[1].split("\n")[1].strip()


@pytest.mark.parametrize("tool", ["plain", "wrapper"])
def test_saved_model_cli_run_answers_a_raw_string(clf_saved_model, clf_model, tool):
    """TensorFlow's own `saved_model_cli run` (the tensorflow-text ops loaded through
    TF_PLUGGABLE_DEVICE_LIBRARY_PATH), and the `python -m` wrapper that sets it."""
    from keras_electra.export.saved_model_cli import OPS_DIR_VARIABLE, tf_text_ops_dir

    model, _ = clf_model
    text = "a gorgeous , witty , seductive movie ."
    run = ["run", "--dir", str(clf_saved_model), "--tag_set", "serve", "--signature_def", "serving_default",
           "--input_exprs", f"text=[{text!r}]"]
    if tool == "plain":
        result = _run([str(Path(sys.executable).parent / "saved_model_cli"), *run],
                      extra_env={OPS_DIR_VARIABLE: str(tf_text_ops_dir())})
    else:
        result = _run([sys.executable, "-m", "keras_electra.export.saved_model_cli", *run])
    assert result.returncode == 0, result.stderr[-3000:]
    logits, _ = _keras_logits(model, [text])
    assert _cli_label(result.stdout) == f"[b'{model.label_names[int(logits.argmax())]}']"


def test_plain_saved_model_cli_needs_the_ops(clf_saved_model):
    """Without the variable the plain tool cannot run the string signature (why the README sets it)."""
    result = _run([str(Path(sys.executable).parent / "saved_model_cli"), "run", "--dir", str(clf_saved_model),
                   "--tag_set", "serve", "--signature_def", "serving_default", "--input_exprs", "text=['fine']"])
    assert result.returncode != 0 and "Op type not registered" in result.stderr


def test_grpc_and_rest_requests_match_the_signature(clf_saved_model, clf_model, sst2_dev):
    """The PredictRequest / REST body a client sends, decoded as the model server decodes it."""
    from tensorflow_serving.apis import predict_pb2

    from keras_electra.export.serving import decode_response, predict_request, rest_body

    model, _ = clf_model
    texts = [e.text_a for e in sst2_dev[30:38]]
    request = predict_request("sst2", {"text": texts}, version=1)
    assert request.model_spec.name == "sst2" and request.model_spec.signature_name == "serving_default"
    assert request.model_spec.version.value == 1
    request = predict_pb2.PredictRequest.FromString(request.SerializeToString())  # over the wire
    loaded = tf.saved_model.load(str(clf_saved_model))
    signature = loaded.signatures[request.model_spec.signature_name]
    assert set(request.inputs) == set(signature.structured_input_signature[1])
    feed = {k: tf.make_ndarray(v) for k, v in request.inputs.items()}
    outputs = signature(**{k: tf.constant(v) for k, v in feed.items()})
    response = predict_pb2.PredictResponse()
    for name, value in outputs.items():
        response.outputs[name].CopyFrom(tf.make_tensor_proto(value.numpy()))
    decoded = decode_response(response)
    logits, _ = _keras_logits(model, texts)
    assert [s.decode() for s in decoded["label"]] == [model.label_names[i] for i in logits.argmax(-1)]

    body = json.loads(json.dumps(rest_body({"text": texts})))
    assert body["signature_name"] == "serving_default" and len(body["instances"]) == len(texts)
    columns = {k: tf.constant([row[k] for row in body["instances"]]) for k in body["instances"][0]}
    rest_out = signature(**columns)
    np.testing.assert_allclose(rest_out["logits"].numpy(), outputs["logits"].numpy(), atol=1e-6)


def test_export_is_atomic(sst2_dir, tmp_path, monkeypatch):
    from keras_electra.export.saved_model import export_saved_model

    def broken_save(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr(tf.saved_model, "save", broken_save)
    with pytest.raises(RuntimeError, match="disk full"):
        export_saved_model(sst2_dir, tmp_path / "sst2")
    assert not (tmp_path / "sst2" / "1").exists()
    assert [p.name for p in (tmp_path / "sst2").iterdir()] == []


def test_bad_arguments_raise_clear_errors(sst2_dir, tmp_path):
    from keras_electra.export.common import ExportError
    from keras_electra.export.saved_model import export_saved_model

    with pytest.raises(ExportError, match="--keep-layers 5 must be between 1 and the model's 2 layers"):
        export_saved_model(sst2_dir, tmp_path / "x", keep_layers=5)
    with pytest.raises(ExportError, match="--max-seq-len 1000 must be between 4 and the model's 512 positions"):
        export_saved_model(sst2_dir, tmp_path / "x", max_seq_len=1000)
    with pytest.raises(ExportError, match="model directory not found"):
        export_saved_model(tmp_path / "missing", tmp_path / "x")


def assert_serving_answers(loaded, questions: list[str], contexts: list[str], expected: list[dict]) -> None:
    """The SavedModel's string-in `serving_default` gives the Keras model's answers, spans and scores."""
    out = loaded.signatures["serving_default"](question=tf.constant(questions), context=tf.constant(contexts))
    out = {k: v.numpy() for k, v in out.items()}
    assert [a.decode() for a in out["answer"]] == [e["answer"] for e in expected]
    assert out["start"].tolist() == [e["start"] for e in expected]
    assert out["end"].tolist() == [e["end"] for e in expected]
    assert np.abs(out["score"] - np.array([e["score"] for e in expected])).max() <= 1e-4
