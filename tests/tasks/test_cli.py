"""`keras-electra finetune / evaluate / predict` end to end on real data."""

from __future__ import annotations

import json

import keras
import pytest

from keras_electra.cli import main
from tests.conftest import GLUE, SHARED_DATA, VOCAB_UNCASED


@pytest.fixture(scope="module")
def sst2_run(tmp_path_factory):
    """One short random-init SST-2 fine-tuning run through the CLI (`--jit auto`, the default: XLA off on CPUs)."""
    output = tmp_path_factory.mktemp("cli") / "sst2"
    rc = main([
        "finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", "random", "--preset", "tiny",
        "--vocab", str(VOCAB_UNCASED), "--max-train-examples", "256", "--max-eval-examples", "128",
        "--epochs", "1", "--seq-length", "64", "--output", str(output), "--quiet",
    ])
    assert rc == 0
    return output


@pytest.mark.backend_sensitive  # the SST-2 run, predict and evaluate on JAX too
def test_finetune_writes_model_results_plot_and_logs(sst2_run):
    results = json.loads((sst2_run / "results.json").read_text())
    assert results["task"] == "sst2" and results["metric"] == "accuracy"
    correct = results["dev"]["accuracy"] * 128  # a share of the 128 dev examples, not a mean of batch means
    assert correct == pytest.approx(round(correct), abs=1e-6)
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


@pytest.mark.backend_sensitive  # the SST-2 run, predict and evaluate on JAX too
def test_predict_answers_a_typed_sentence(sst2_run, capsys):
    assert main(["predict", "--model", str(sst2_run), "a gorgeous, witty, seductive movie.", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert len(out) == 1 and out[0]["text"] == "a gorgeous, witty, seductive movie."
    # The CLI reports what the saved model computes on that text, and its label is the likelier class.
    import numpy as np
    import tensorflow as tf

    model = keras.saving.load_model(sst2_run / "model.keras")
    inputs = model.preprocessor(tf.constant(["a gorgeous, witty, seductive movie."]))
    logits = keras.ops.convert_to_numpy(model(inputs))[0]
    probs = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
    assert [out[0]["probabilities"][k] for k in ("0", "1")] == pytest.approx(probs.tolist(), abs=1e-5)
    assert out[0]["label"] == str(int(probs.argmax())) and out[0]["probability"] == pytest.approx(probs.max())
    assert main(["predict", "--model", str(sst2_run), "the plot is dull"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.split("\t")[0] in ("0", "1") and line.endswith("the plot is dull")


@pytest.mark.backend_sensitive  # the SST-2 run, predict and evaluate on JAX too
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


def test_paper_protocol_reports_the_median_over_seeds_and_the_resolved_recipe(tmp_path, capsys):
    """The README's command on a tiny slice: MRPC, fixed epochs, last checkpoint, median over two seeds,
    both sentence orders (official double_unordered), and every resolved value in results.json."""
    output = tmp_path / "mrpc"
    rc = main([
        "finetune", "--task", "mrpc", "--data", str(GLUE / "MRPC"), "--init", "random", "--preset", "tiny",
        "--vocab", str(VOCAB_UNCASED), "--max-train-examples", "64", "--max-eval-examples", "64", "--epochs", "2",
        "--seq-length", "64", "--protocol", "paper", "--seeds", "0", "1", "--output", str(output), "--quiet",
        "--no-jit", "--config", "num_layers=1",
    ])
    assert rc == 0
    printed = capsys.readouterr().out
    results = json.loads((output / "results.json").read_text())
    values = [r["dev"]["accuracy"] for r in results["runs"]]
    assert results["protocol"] == "paper" and results["median"]["values"] == values
    assert results["median"]["dev"] == pytest.approx(sorted(values)[0] / 2 + sorted(values)[1] / 2)
    assert f"median over seeds [0, 1]: {results['median']['dev']:.4f}" in printed
    for run in results["runs"]:  # the last epoch is kept, not the best one
        assert run["best_epoch"] == 2 and run["dev"]["accuracy"] == run["dev_history"][-1]["accuracy"]
    # The saved model is the lower-median seed's.
    assert results["best_seed"] == results["runs"][min(range(2), key=lambda i: values[i])]["seed"]
    assert results["num_examples"]["train"] == 128  # 64 pairs in both orders
    hp = results["hyperparameters"]
    assert hp["protocol"] == "paper" and hp["double_unordered"] is True and hp["adam_bias_correction"] is False
    assert hp["early_stopping_patience"] is None and hp["default_initializer"] == "glorot_uniform"
    assert (hp["learning_rate"], hp["layerwise_lr_decay"], hp["epochs"]) == (3e-4, 0.8, 2)
    assert (hp["steps_per_epoch"], hp["total_steps"], hp["warmup_steps"]) == (4, 8, 0)
    assert hp["head"] == "electra" and hp["dropout"] == 0.1  # --head and --dropout unset: the official values
    assert hp["encoder_dropout"] == {"hidden": 0.1, "attention": 0.1}
    assert all(value is not None for key, value in hp.items() if key not in ("early_stopping_patience",
                                                                               "clip_norm"))


def test_best_dev_protocol_and_the_deviation_flags_are_recorded(tmp_path, capsys):
    output = tmp_path / "mrpc"
    rc = main([
        "finetune", "--task", "mrpc", "--data", str(GLUE / "MRPC"), "--init", "random", "--preset", "tiny",
        "--vocab", str(VOCAB_UNCASED), "--max-train-examples", "32", "--max-eval-examples", "32", "--epochs", "1",
        "--seq-length", "32", "--protocol", "best-dev", "--no-double-unordered", "--adam-bias-correction",
        "--default-initializer", "truncated_normal", "--output", str(output), "--quiet", "--no-jit",
        "--config", "num_layers=1",
    ])
    assert rc == 0 and "best epoch 1" in capsys.readouterr().out
    results = json.loads((output / "results.json").read_text())
    hp = results["hyperparameters"]
    assert (hp["protocol"], hp["double_unordered"], hp["adam_bias_correction"], hp["default_initializer"],
            hp["early_stopping_patience"]) == ("best-dev", False, True, "truncated_normal", 3)
    assert results["num_examples"]["train"] == 32
    model = keras.saving.load_model(output / "model.keras")
    assert model.backbone.default_initializer == "truncated_normal"


def test_a_truncated_task_json_is_one_line(sst2_run, tmp_path):
    import shutil

    from keras_electra.errors import DataError
    from keras_electra.tasks.outputs import load_finetuned

    copy = shutil.copytree(sst2_run, tmp_path / "run")
    text = (copy / "task.json").read_text()
    (copy / "task.json").write_text(text[: len(text) // 2])
    with pytest.raises(DataError, match=r"task\.json is not valid JSON .*it may be truncated"):
        load_finetuned(copy)
