"""colab/pretrain.ipynb runs top to bottom with a tiny setting, so it cannot rot."""

from __future__ import annotations

import os

from tests.conftest import NOVELS, VOCAB_UNCASED, run_notebook


def test_pretrain_notebook_executes(tmp_path, monkeypatch):
    outputs = run_notebook("pretrain.ipynb", tmp_path, monkeypatch, {
        "ELECTRA_CORPUS": str(NOVELS / "Doyle_Hound_1902.txt"),
        "ELECTRA_VOCAB": str(VOCAB_UNCASED),
        "ELECTRA_STEPS": "6",
        "ELECTRA_BATCH_SIZE": "8",
        "ELECTRA_SEQ_LENGTH": "64",
        "ELECTRA_OUTPUT": str(tmp_path / "out"),
    })
    assert "Running on CPU" in outputs
    assert "gen_accuracy" in outputs and "disc_auc" in outputs
    assert (tmp_path / "out" / "discriminator" / "model.keras").is_file()
    assert os.path.getsize(tmp_path / "out" / "discriminator" / "vocab.txt") > 100_000
