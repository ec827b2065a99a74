"""`keras-electra export`: each format from the command line, int8 calibrated from the recorded training data."""

from __future__ import annotations

import json

import pytest

from keras_electra.cli import main


def test_export_every_format_from_the_command_line(sst2_dir, tmp_path, capsys, sst2_dev):
    from keras_electra.export.predictor import predict_any
    from keras_electra.export.tflite import read_metadata
    from keras_electra.tasks.predict import predict_texts

    serving = tmp_path / "serving" / "sst2"
    assert main(["export", "--model", str(sst2_dir), "--format", "saved_model", "--output", str(serving),
                 "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["output"] == str(serving / "1") and summary["bytes"] > 1_000_000
    # From the SavedModel: int8 calibrates on the training file recorded beside the source model.
    assert main(["export", "--model", str(serving), "--format", "tflite", "--quantize", "int8",
                 "--num-calibration", "64", "--output", str(tmp_path / "sst2-int8.tflite")]) == 0
    assert main(["export", "--model", str(serving), "--format", "onnx", "--output", str(tmp_path / "sst2.onnx")]) == 0
    out = capsys.readouterr().out
    assert "sst2-int8.tflite" in out and "sst2.onnx" in out
    meta = json.loads(read_metadata((tmp_path / "sst2-int8.tflite").read_bytes())["keras_electra"])
    assert meta["quantize"] == "int8"

    texts = [e.text_a for e in sst2_dev if len(e.text_a) < 60][:12]
    reference = [r["label"] for r in predict_texts(sst2_dir, texts)]
    for path in (serving, tmp_path / "sst2.onnx"):
        assert [r["label"] for r in predict_any(path, texts)] == reference
    int8 = [r["label"] for r in predict_any(tmp_path / "sst2-int8.tflite", texts)]
    assert sum(a == b for a, b in zip(int8, reference)) >= len(texts) - 1


def test_calibration_from_a_text_file(sst2_dir, tmp_path):
    from keras_electra.export.cli import calibration_inputs

    lines = tmp_path / "calibration.txt"
    lines.write_text("a fine movie\n\nthe worst film of the year\nit 's ok\n", encoding="utf-8")
    inputs = calibration_inputs(sst2_dir, str(lines), 10)
    assert inputs["token_ids"].shape == (3, 48) and (inputs["token_ids"][:, 0] == 101).all()


@pytest.mark.parametrize("args, message", [
    (["--format", "onnx", "--quantize", "int8"], "--quantize int8 applies to --format tflite only"),
    (["--format", "tflite", "--keep-layers", "3"], "--keep-layers 3 must be between 1 and the model's 2 layers"),
    (["--format", "tflite", "--quantize", "int8", "--calibration-data", "/nonexistent/train.tsv"],
     "calibration data not found: /nonexistent/train.tsv"),
])
def test_errors_are_one_line(sst2_dir, tmp_path, capsys, args, message):
    assert main(["export", "--model", str(sst2_dir), "--output", str(tmp_path / "out"), *args]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-electra export: error:") and message in err and "\n" not in err
    assert not (tmp_path / "out").exists()


def test_evaluate_scores_every_export_like_the_keras_model(sst2_dir, clf_saved_model, clf_tflite, clf_onnx, conll_dir,
                                                           ner_tflite, capsys):
    """`keras-electra evaluate --model EXPORT`: the task runner scores a SavedModel, .tflite or .onnx."""
    from tests.export.conftest import CONLL, SST2

    def scores(model, data) -> dict:
        assert main(["evaluate", "--model", str(model), "--data", str(data), "--max-examples", "96", "--json"]) == 0
        return json.loads(capsys.readouterr().out)["scores"]

    reference = scores(sst2_dir, SST2)
    for export in (clf_saved_model.parent, clf_tflite("none"), clf_onnx):
        assert scores(export, SST2)["accuracy"] == pytest.approx(reference["accuracy"])
    ner = scores(conll_dir, CONLL)
    assert scores(ner_tflite("none"), CONLL)["f1"] == pytest.approx(ner["f1"], abs=1e-6)
