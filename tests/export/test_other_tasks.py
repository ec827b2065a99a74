"""Relation classification and multiple choice through every format (random-init tiny models: parity only)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import SHARED_DATA, VOCAB_CHINESE, VOCAB_UNCASED
from tests.export.test_predictor import _close

pytestmark = pytest.mark.slow


def _export_all(model_dir, root):
    from keras_electra.export.onnx import export_onnx
    from keras_electra.export.saved_model import export_saved_model
    from keras_electra.export.tflite import builtin_only, export_tflite

    saved = export_saved_model(model_dir, root / "serving" / model_dir.name)
    tflite = export_tflite(saved, root / f"{model_dir.name}.tflite")
    assert builtin_only(tflite.read_bytes())
    return [saved, tflite, export_onnx(saved, root / f"{model_dir.name}.onnx")]


def _random_task(cls, vocabulary, directory, task, seq_length, **kwargs):
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.outputs import save_task_model
    from keras_electra.tasks.registry import get_task

    keras.utils.set_random_seed(5)
    tokenizer = ElectraTokenizer(vocabulary)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=1)
    model = cls.from_backbone(ElectraBackbone.from_electra_config(config, name="backbone"), tokenizer, seq_length,
                              **kwargs)
    save_task_model(model, tokenizer, directory, get_task(task))
    return directory


def test_relation_classifier(tmp_path):
    from keras_electra.data.readers.semeval import SEMEVAL_LABELS, read_semeval
    from keras_electra.export.predictor import predict_any
    from keras_electra.tasks.predict import predict_texts
    from keras_electra.tasks.relation_classifier import ElectraRelationClassifier, marked_texts

    model_dir = _random_task(ElectraRelationClassifier, VOCAB_UNCASED, tmp_path / "semeval", "semeval", 48,
                             num_classes=len(SEMEVAL_LABELS), label_names=list(SEMEVAL_LABELS))
    examples = read_semeval(SHARED_DATA / "semeval2010_task8" / "TEST_FILE_FULL.TXT")[:10]
    texts = marked_texts(examples)
    reference = predict_texts(model_dir, texts)
    for path in _export_all(model_dir, tmp_path):
        _close(predict_any(path, texts), reference)


def test_multiple_choice(tmp_path):
    from keras_electra.data.readers.c3 import read_c3
    from keras_electra.export.predictor import predict_any
    from keras_electra.tasks.multiple_choice import ElectraMultipleChoice
    from keras_electra.tasks.predict import predict_texts

    model_dir = _random_task(ElectraMultipleChoice, VOCAB_CHINESE, tmp_path / "c3", "c3", 64, num_choices=4)
    example = next(e for e in read_c3(SHARED_DATA / "c3" / "c3-d-dev.json") if len(e.choices) == 3)
    kwargs = {"question": example.question, "context": example.context, "choices": example.choices}
    reference = predict_texts(model_dir, **kwargs)
    for path in _export_all(model_dir, tmp_path):
        _close(predict_any(path, **kwargs), reference)
    saved = tmp_path / "serving" / "c3" / "1"
    meta = json.loads((saved / "assets.extra" / "keras_electra.json").read_text())
    assert meta["num_choices"] == 4 and meta["task_type"] == "multiple_choice"


def test_sentence_pair_classifier(tmp_path):
    """A pair task (MRPC, from task.json): `serving_default` takes text_a/text_b; TFLite text in takes both."""
    import numpy as np
    import tensorflow as tf

    from keras_electra.data.readers.glue import read_glue
    from keras_electra.export.common import load_for_export
    from keras_electra.export.saved_model import export_saved_model
    from keras_electra.export.tflite import export_tflite_text, load_interpreter
    from keras_electra.tasks.classifier import ElectraClassifier
    from tests.conftest import GLUE

    model_dir = _random_task(ElectraClassifier, VOCAB_UNCASED, tmp_path / "mrpc", "mrpc", 40, num_classes=2,
                             label_names=["0", "1"])
    model, info = load_for_export(model_dir)
    assert info.pair and info.text_inputs == ("text_a", "text_b")
    pairs = read_glue("mrpc", GLUE / "MRPC", "dev")[:16]
    a, b = tf.constant([e.text_a for e in pairs]), tf.constant([e.text_b for e in pairs])
    expected = np.asarray(model.predict(model.preprocessor((a, b)), verbose=0))
    loaded = tf.saved_model.load(str(export_saved_model(model_dir, tmp_path / "serving" / "mrpc")))
    assert np.abs(loaded.signatures["serving_default"](text_a=a, text_b=b)["logits"].numpy() - expected).max() <= 1e-4
    runner = load_interpreter(export_tflite_text(model_dir, tmp_path / "mrpc-text.tflite")).get_signature_runner()
    out = runner(text_a=a.numpy(), text_b=b.numpy())
    assert np.abs(out["logits"] - expected).max() <= 1e-4
