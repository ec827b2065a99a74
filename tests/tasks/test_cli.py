"""`keras-electra finetune / evaluate / predict` end to end on real data."""

from __future__ import annotations

import json

import keras
import pytest

from keras_electra.cli import main
from tests.conftest import GLUE, SHARED_DATA, VOCAB_UNCASED


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory):
    """One short random-init SST-2 fine-tuning run through the CLI (XLA on, the default)."""
    output = tmp_path_factory.mktemp("cli") / "sst2"
    rc = main([
        "finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", "random", "--preset", "tiny",
        "--vocab", str(VOCAB_UNCASED), "--max-train-examples", "256", "--max-eval-examples", "128",
        "--epochs", "1", "--seq-length", "64", "--output", str(output), "--quiet",
    ])
    assert rc == 0
    return output


def test_finetune_writes_model_results_plot_and_logs(sst2_run):
    results = json.loads((sst2_run / "results.json").read_text())
    assert results["task"] == "sst2" and results["metric"] == "accuracy"
    assert 0.0 <= results["dev"]["accuracy"] <= 1.0
    assert results["num_examples"] == {"train": 256, "dev": 128}
    assert results["data_files"]["train"][0].endswith("SST-2/train.tsv")
    assert results["data_files"]["dev"][0].endswith("SST-2/dev.tsv")
    hp = results["hyperparameters"]
    assert (hp["learning_rate"], hp["layerwise_lr_decay"], hp["warmup_fraction"]) == (3e-4, 0.8, 0.1)
    assert (hp["weight_decay"], hp["adam_epsilon"], hp["batch_size"], hp["epochs"]) == (0.0, 1e-6, 32, 1)
    run = results["runs"][0]
    assert run["steps_per_epoch"] == 8 and len(run["step_losses"]["loss"]) == 8
    assert run["median_step_seconds"] > 0
    assert (sst2_run / "training_curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert list((sst2_run / "logs" / "seed_0").glob("events.out.tfevents.*"))
    task = json.loads((sst2_run / "task.json").read_text())
    assert task["labels"] == ["0", "1"] and task["seq_length"] == 64 and task["task"] == "sst2"
    assert (sst2_run / "vocab.txt").is_file() and (sst2_run / "tokenizer.json").is_file()
    model = keras.saving.load_model(sst2_run / "model.keras")
    assert model.preprocessor is not None and getattr(model, "optimizer", None) is None  # no optimizer state


def test_predict_answers_a_typed_sentence(sst2_run, capsys):
    assert main(["predict", "--model", str(sst2_run), "a gorgeous, witty, seductive movie.", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and out[0]["text"] == "a gorgeous, witty, seductive movie."
    assert out[0]["label"] in ("0", "1") and 0.5 <= out[0]["probability"] <= 1.0
    assert sum(out[0]["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert main(["predict", "--model", str(sst2_run), "the plot is dull"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split("\t")[0] in ("0", "1") and line.endswith("the plot is dull")


def test_evaluate_reproduces_the_dev_score(sst2_run, capsys):
    results = json.loads((sst2_run / "results.json").read_text())
    assert main(["evaluate", "--model", str(sst2_run), "--data", str(GLUE / "SST-2"), "--max-examples", "128",
                 "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["accuracy"] == pytest.approx(results["dev"]["accuracy"])


def test_ner_from_a_pretrained_directory_with_a_seed_ensemble(tmp_path, capsys, en_tokenizer):
    from tests.tasks.test_models import _write_pretraining_dir

    _write_pretraining_dir(tmp_path / "pretrained", en_tokenizer)
    output = tmp_path / "ner"
    rc = main([
        "finetune", "--task", "conll2003", "--data", str(SHARED_DATA / "conll2003"), "--init",
        str(tmp_path / "pretrained"), "--max-train-examples", "64", "--max-eval-examples", "32", "--epochs", "1",
        "--seq-length", "32", "--batch-size", "16", "--learning-rate", "5e-3", "--output", str(output), "--quiet",
        "--no-jit", "--seeds", "1", "2",
    ])
    assert rc == 0
    results = json.loads((output / "results.json").read_text())
    assert results["metric"] == "f1" and {"precision", "recall", "f1"} <= set(results["dev"])
    assert results["hyperparameters"]["model_size"] == "tiny"  # from the backbone's width
    # Two seeds: both runs are reported, and their averaged probabilities are scored as an ensemble.
    assert [r["seed"] for r in results["runs"]] == [1, 2] and results["best_seed"] in (1, 2)
    assert {"precision", "recall", "f1"} <= set(results["ensemble"]["dev"])
    assert results["seed_summary"]["values"] == [r["dev"]["f1"] for r in results["runs"]]
    capsys.readouterr()
    assert main(["predict", "--model", str(output), "EU rejects German call to boycott British lamb .", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)[0]
    assert len(out["tokens"]) == len(out["tags"]) == 9
    for entity in out["entities"]:
        assert out["text"][entity["start"]:entity["end"]] == entity["text"]
        assert entity["type"] in ("PER", "ORG", "LOC", "MISC")
