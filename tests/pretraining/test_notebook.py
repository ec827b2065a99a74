"""colab/pretrain.ipynb runs top to bottom with a tiny setting, so it cannot rot."""

from __future__ import annotations

import os

import nbformat
from nbclient import NotebookClient

from tests.conftest import NOVELS, REPO, VOCAB_UNCASED


def test_pretrain_notebook_executes(tmp_path, monkeypatch):
    settings = {
        "ELECTRA_CORPUS": str(NOVELS / "Doyle_Hound_1902.txt"),
        "ELECTRA_VOCAB": str(VOCAB_UNCASED),
        "ELECTRA_STEPS": "6",
        "ELECTRA_BATCH_SIZE": "8",
        "ELECTRA_SEQ_LENGTH": "64",
        "ELECTRA_OUTPUT": str(tmp_path / "out"),
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(REPO / "colab" / "pretrain.ipynb", as_version=4)
    NotebookClient(notebook, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    outputs = "".join(
        out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
    assert "Running on CPU" in outputs
    assert "gen_accuracy" in outputs and "disc_auc" in outputs
    assert (tmp_path / "out" / "discriminator" / "model.keras").is_file()
    assert os.path.getsize(tmp_path / "out" / "discriminator" / "vocab.txt") > 100_000
