"""colab/export_tflite.ipynb runs top to bottom with a tiny setting: fine-tune, export, run the .tflite."""

from __future__ import annotations

from tests.conftest import SHARED_DATA, run_notebook


def test_export_tflite_notebook_executes(tmp_path, monkeypatch):
    outputs = run_notebook("export_tflite.ipynb", tmp_path, monkeypatch, {
        "ELECTRA_DATA": str(SHARED_DATA),
        "ELECTRA_TRAIN_EXAMPLES": "96",
        "ELECTRA_EVAL_EXAMPLES": "48",
        "ELECTRA_EPOCHS": "1",
        "ELECTRA_SEQ_LENGTH": "32",
        "ELECTRA_CALIBRATION": "16",
        "ELECTRA_JIT": "off",
        "ELECTRA_QUANTIZE": "none int8",
        "ELECTRA_OUTPUT": str(tmp_path / "out"),
    })
    assert "dev accuracy (Keras)" in outputs
    assert "custom ops in the none model: none" in outputs and "custom ops in the int8 model: none" in outputs
    assert "metadata: sst2 ['0', '1'] seq_length 32 vocabulary 30522" in outputs
    for quantize in ("none", "int8"):
        assert (tmp_path / "out" / f"sst2-{quantize}.tflite").is_file()
        assert f"{quantize:>8}: dev accuracy" in outputs
    assert "same label as Keras on 100.0%" in outputs  # float32 at least
    assert "sst2-text.tflite" in outputs and "p=" in outputs
