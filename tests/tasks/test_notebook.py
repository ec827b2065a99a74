"""colab/finetune.ipynb runs top to bottom with a tiny setting: fine-tune, evaluate, predict for three tasks."""

from __future__ import annotations

import json

from tests.conftest import SHARED_DATA, run_notebook


def test_finetune_notebook_executes(tmp_path, monkeypatch):
    out = tmp_path / "out"
    outputs = run_notebook("finetune.ipynb", tmp_path, monkeypatch, {
        "ELECTRA_DATA": str(SHARED_DATA),
        "ELECTRA_TRAIN_EXAMPLES": "64",
        "ELECTRA_EVAL_EXAMPLES": "32",
        "ELECTRA_EPOCHS": "1",
        "ELECTRA_SEQ_LENGTH": "32",
        "ELECTRA_OUTPUT": str(out),
    })
    for task, metric in (("sst2", "accuracy"), ("conll2003", "f1"), ("xquad", "f1")):
        results = json.loads((out / task / "results.json").read_text())
        assert results["num_examples"]["train"] == 64 and results["num_examples"]["dev"] == 32
        assert 0.0 <= results["dev"][metric] <= 1.0
        assert (out / task / "model.keras").is_file() and (out / task / "training_curves.png").is_file()
    sst2 = json.loads((out / "sst2" / "results.json").read_text())
    # The reloaded model scores exactly what training reported for its best epoch.
    assert f"reloaded model, dev accuracy {sst2['dev']['accuracy']:.4f} on 32 examples" in outputs
    assert "a gorgeous, witty, seductive movie." in outputs  # predictions printed with their text
    assert "CoNLL-2003 dev entity F1" in outputs and "Angela Merkel" in outputs
    assert "XQuAD-en dev: exact match" in outputs and "Q: How large is the basin?" in outputs
