"""Bad input stops with a one-line ElectraError that names the culprit."""

from __future__ import annotations

from pathlib import Path

import pytest

from keras_electra.cli import main
from keras_electra.data.readers import TextExample, read_dataset
from keras_electra.errors import DataError
from keras_electra.tasks.classifier import ClassificationRunner, ElectraClassifier
from keras_electra.tasks.question_answerer import QuestionAnsweringRunner
from keras_electra.tasks.runner import LabelMap
from tests.conftest import SHARED_DATA, VOCAB_CHINESE, VOCAB_UNCASED
from tests.tasks.conftest import GLUE, tiny_backbone


def _one_line_error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    return err


def test_unknown_label_is_named(en_tokenizer):
    examples = read_dataset("sst2", GLUE, "dev")[:20]
    model = ElectraClassifier.from_backbone(tiny_backbone(en_tokenizer.vocabulary_size), en_tokenizer, 16,
                                            num_classes=2, label_names=["negative", "positive"])
    with pytest.raises(DataError) as info:
        ClassificationRunner().check(examples, model, "dev data")
    message = str(info.value)
    assert f"example {examples[0].guid}" in message and "unknown label '" in message and "negative" in message
    assert "\n" not in message
    with pytest.raises(DataError, match="unknown label 'maybe'"):
        LabelMap(["yes", "no"]).encode("maybe", "row 3")


def test_empty_text_is_named(en_tokenizer):
    model = ElectraClassifier.from_backbone(tiny_backbone(en_tokenizer.vocabulary_size), en_tokenizer, 16,
                                            num_classes=2, label_names=["0", "1"])
    examples = [*read_dataset("sst2", GLUE, "dev")[:3], TextExample("sst2-dev-blank", "   ", None, "1")]
    with pytest.raises(DataError, match="example sst2-dev-blank: empty text"):
        ClassificationRunner().check(examples, model, "dev data")


def test_missing_column_via_cli(capsys, tmp_path):
    err = _one_line_error(capsys, [
        "finetune", "--task", "table", "--data", str(SHARED_DATA / "chnsenticorp"), "--text-columns", "review",
        "--label-column", "label", "--init", "random", "--preset", "tiny", "--vocab", str(VOCAB_CHINESE),
        "--output", str(tmp_path / "out"),
    ])
    assert "missing column 'review'" in err and "train.tsv" in err


def test_empty_file_via_cli(capsys, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "train.tsv").write_text("")
    (data / "dev.tsv").write_text("")
    err = _one_line_error(capsys, [
        "finetune", "--task", "table", "--data", str(data), "--init", "random", "--preset", "tiny",
        "--vocab", str(VOCAB_UNCASED), "--output", str(tmp_path / "out"),
    ])
    assert "empty file" in err and "train.tsv" in err


def test_unknown_task_and_missing_init(capsys, tmp_path):
    err = _one_line_error(capsys, ["finetune", "--task", "sst3", "--data", str(GLUE), "--init", "random",
                                   "--output", str(tmp_path)])
    assert "unknown task 'sst3'" in err
    err = _one_line_error(capsys, ["finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init",
                                   str(tmp_path / "nowhere"), "--output", str(tmp_path / "out")])
    assert "nowhere" in err


def test_config_overrides_only_for_random_init(capsys, tmp_path):
    """`--config` reshapes a random network; with a pretrained --init it would do nothing, so it stops."""
    pretrained = Path(__file__).resolve().parents[2] / "saved_models" / "electra-tiny-novels"
    err = _one_line_error(capsys, ["finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init",
                                   str(pretrained), "--config", "num_layers=1", "--output", str(tmp_path / "out")])
    assert "--config num_layers" in err and "random" in err
    err = _one_line_error(capsys, ["finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", "random",
                                   "--preset", "tiny", "--vocab", str(VOCAB_UNCASED), "--config", "hiden_size=64",
                                   "--output", str(tmp_path / "out2"), "--max-train-examples", "8"])
    assert "hiden_size" in err


def test_long_context_without_stride_names_the_question(capsys, tmp_path, en_tokenizer):
    examples = read_dataset("xquad", SHARED_DATA, "dev")[:5]
    runner = QuestionAnsweringRunner()
    model = runner.build_model(tiny_backbone(en_tokenizer.vocabulary_size), en_tokenizer, 64, None,
                               {"doc_stride": 0})
    with pytest.raises(DataError) as info:
        runner.check(examples, model, "dev data")
    assert f"question {examples[0].guid}" in str(info.value) and "stride" in str(info.value)
    err = _one_line_error(capsys, [
        "finetune", "--task", "xquad", "--data", str(SHARED_DATA / "xquad"), "--init", "random", "--preset",
        "tiny", "--vocab", str(VOCAB_UNCASED), "--seq-length", "64", "--doc-stride", "0",
        "--output", str(tmp_path / "out"),
    ])
    assert "question" in err and "more than seq_length 64" in err
