"""--wandb: the offline W&B run holds the TensorBoard scalars, the run config and the final results."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import GLUE, NOVELS, REPO, VOCAB_UNCASED


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch) -> Path:
    directory = tmp_path / "wandb_dir"
    directory.mkdir()
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_DIR", str(directory))
    monkeypatch.setenv("WANDB_SILENT", "true")
    return directory


def offline_runs(directory: Path) -> list[dict]:
    import wandb

    from keras_electra.utils.tracking import read_offline_run

    wandb.teardown()  # the service writes the run file's last records when it stops

    runs = sorted((directory / "wandb").glob("offline-run-*"))
    assert runs, f"no offline run under {directory}"
    return [read_offline_run(r) for r in runs]


def tensorboard_scalars(log_dir: Path) -> dict[str, dict[int, float]]:
    """tag -> {step: value} from every event file under `log_dir` (the scalars `tf.summary.write` wrote)."""
    import tensorflow as tf

    out: dict[str, dict[int, float]] = {}
    for events in log_dir.rglob("events.out.tfevents.*"):
        for event in tf.compat.v1.train.summary_iterator(str(events)):
            for value in event.summary.value:
                number = float(tf.make_ndarray(value.tensor)) if value.HasField("tensor") else value.simple_value
                out.setdefault(value.tag, {})[int(event.step)] = number
    return out


def history_scalars(history: list[dict]) -> dict[str, dict[int, float]]:
    """W&B history rows -> tag -> {step: value}, each group against its own step key."""
    from keras_electra.utils.tracking import STEP_KEYS

    out: dict[str, dict[int, float]] = {}
    for row in history:
        for key, value in row.items():
            group = key.split("/", 1)[0]
            if key.startswith("_") or key in STEP_KEYS.values() or group not in STEP_KEYS:
                continue
            out.setdefault(key, {})[int(row[STEP_KEYS[group]])] = value
    return out


def test_finetune_wandb_offline_run_mirrors_tensorboard(offline_wandb, tmp_path):
    from keras_electra.cli import main

    out = tmp_path / "sst2"
    assert main(["finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", "random", "--preset", "tiny",
                 "--vocab", str(VOCAB_UNCASED), "--config", "num_layers=1", "--max-train-examples", "40",
                 "--batch-size", "4", "--epochs", "1", "--seq-length", "32", "--max-eval-examples", "16",
                 "--output", str(out), "--quiet", "--wandb", "keras-electra-test"]) == 0
    (run,) = offline_runs(offline_wandb)
    results = json.loads((out / "results.json").read_text())
    # The config: the run's options and resolved hyperparameters.
    assert run["config"]["task"] == "sst2" and run["config"]["seed"] == 0
    assert run["config"]["hyperparameters"]["learning_rate"] == results["hyperparameters"]["learning_rate"]
    # The history: exactly the TensorBoard scalars, tag for tag, step for step.
    tensorboard = tensorboard_scalars(out / "logs")
    logged = history_scalars(run["history"])
    assert set(logged) == set(tensorboard)
    assert {"train/loss", "train/learning_rate", "epoch/loss", "epoch/dev_accuracy"} <= set(logged)
    for tag, points in tensorboard.items():
        assert set(logged[tag]) == set(points), tag
        for step, value in points.items():
            assert logged[tag][step] == pytest.approx(value, rel=1e-5), (tag, step)
    # The summary: the final results.
    assert run["summary"]["dev/accuracy"] == pytest.approx(results["dev"]["accuracy"])
    assert run["summary"]["median/dev"] == pytest.approx(results["median"]["dev"])


@pytest.mark.slow
def test_pretrain_wandb_offline_run_holds_the_heldout_curve(offline_wandb, tmp_path):
    from keras_electra.cli import main

    out = tmp_path / "pre"
    corpus = [str(NOVELS / "Doyle_Hound_1902.txt")]
    assert main(["pretrain", "--preset", "tiny", "--config", "num_layers=1", "--vocab", str(VOCAB_UNCASED),
                 "--corpus", *corpus, "--steps", "4", "--batch-size", "2", "--seq-length", "32", "--log-every", "2",
                 "--eval-every", "2", "--eval-batches", "1", "--output", str(out),
                 "--wandb", "keras-electra-test"]) == 0
    (run,) = offline_runs(offline_wandb)
    metrics = json.loads((out / "metrics.json").read_text())
    curve = history_scalars(run["history"])
    assert set(curve["heldout/disc_auc"]) == {p["step"] for p in metrics["heldout_curve"]} == {0, 2, 4}
    for point in metrics["heldout_curve"]:
        assert curve["heldout/disc_auc"][point["step"]] == pytest.approx(point["disc_auc"], rel=1e-5)
    assert set(curve["train/loss"]) == {2, 4}
    assert run["config"]["steps"] == 4 and run["config"]["wandb"] == "keras-electra-test"
    assert run["summary"]["after/disc_auc"] == pytest.approx(metrics["after"]["disc_auc"])


def test_wandb_is_imported_only_when_asked():
    code = ("import sys; import keras_electra.tasks.finetune, keras_electra.pretraining.trainer, "
            "keras_electra.utils.tracking as t; assert t.start(None, {}, '.') is None; "
            "print('wandb' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False"
