"""Fine-tuning options that a task would ignore are errors; `--dropout` reaches the pretrained encoder."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from keras_electra.cli import main
from keras_electra.errors import ElectraError
from keras_electra.tasks.recipe import FinetuneConfig, check_task_options
from keras_electra.tasks.registry import get_task
from tests.conftest import GLUE, VOCAB_UNCASED

RANDOM = ["--init", "random", "--preset", "tiny", "--vocab", str(VOCAB_UNCASED)]


def _config(task: str, **kwargs) -> FinetuneConfig:
    return FinetuneConfig(task=task, data="unused", init="random", output="unused", **kwargs)


@pytest.mark.parametrize("task, message", [
    ("conll2003", "--head huggingface: conll2003 (token) has one head only; choose its tagging head with "
                  "--tagging-head"),
    ("semeval", "--head huggingface: semeval (relation) has one head only"),
])
def test_head_is_refused_where_the_task_has_one_head(task, message, tmp_path, capsys):
    assert main(["finetune", "--task", task, "--data", str(tmp_path), "--output", str(tmp_path / "out"),
                 "--head", "huggingface", *RANDOM]) == 2
    assert capsys.readouterr().err.strip().endswith(message)
    assert not (tmp_path / "out").exists()  # refused before anything was written


@pytest.mark.parametrize("task", ["sst2", "stsb", "squad", "c3"])
def test_head_is_taken_where_the_task_has_both(task):
    for head in ("electra", "huggingface", None):
        check_task_options(_config(task, head=head), get_task(task))


@pytest.mark.parametrize("task, kind", [("squad", "qa"), ("stsb", "regression")])
def test_label_smoothing_is_refused_where_the_loss_has_no_classes(task, kind):
    with pytest.raises(ElectraError, match=rf"--label-smoothing 0.1: the {kind} loss of {task} has no class labels"):
        check_task_options(_config(task, label_smoothing=0.1), get_task(task))
    for task in ("sst2", "conll2003", "semeval", "c3"):
        check_task_options(_config(task, label_smoothing=0.1), get_task(task))


def test_dropout_out_of_range_is_one_line():
    with pytest.raises(ElectraError, match=r"--dropout 1 must be in \[0, 1\)"):
        check_task_options(_config("sst2", dropout=1.0), get_task("sst2"))


def test_an_explicit_dropout_reaches_the_pretrained_encoder(minilm_dir):
    from keras_electra.tasks.finetune import build_task_model

    spec = get_task("sst2")
    config = FinetuneConfig(task="sst2", data=str(GLUE / "SST-2"), init=str(minilm_dir), output="unused")
    # Without --dropout: the head's official 0.1 and the checkpoint's own encoder dropout (MiniLM: 0.1).
    default, _ = build_task_model(config, spec, list(spec.labels), 0, 32)
    assert (default.backbone.hidden_dropout, default.backbone.attention_dropout, default.dropout_rate) == (0.1,) * 3
    model, _ = build_task_model(dataclasses.replace(config, dropout=0.3), spec, list(spec.labels), 0, 32)
    encoder = model.backbone
    assert (encoder.hidden_dropout, encoder.attention_dropout) == (0.3, 0.3)
    assert {block.dropout.rate for block in encoder.transformer_layers} == {0.3}
    assert {block.attention.dropout.rate for block in encoder.transformer_layers} == {0.3}
    assert encoder.embeddings.dropout.rate == 0.3
    assert model.dropout_rate == 0.3  # the head's too
    for mine, theirs in zip(encoder.get_weights(), default.backbone.get_weights(), strict=True):
        np.testing.assert_array_equal(mine, theirs)  # the pretrained weights, unchanged
