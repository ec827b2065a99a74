"""Hostile input to predict and finetune (issue 18): invalid UTF-8, blank and invisible texts, one-class
training sets, untrusted pickles. Each ends in a result or one line."""

from __future__ import annotations

import io
import json
import sys

import pytest

from keras_electra.cli import main
from tests.conftest import GLUE, VOCAB_UNCASED


@pytest.fixture(scope="module")
def sst2_model(tmp_path_factory):
    output = tmp_path_factory.mktemp("hostile") / "sst2"
    assert main([
        "finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", "random", "--preset", "tiny",
        "--vocab", str(VOCAB_UNCASED), "--max-train-examples", "64", "--max-eval-examples", "32",
        "--epochs", "1", "--seq-length", "32", "--output", str(output), "--quiet",
    ]) == 0
    return output


def _stdin(monkeypatch, data: bytes) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data), encoding="utf-8"))


def test_stdin_blank_lines_keep_output_aligned_and_invalid_utf8_is_replaced(sst2_model, monkeypatch, capsys):
    _stdin(monkeypatch, b"a gorgeous movie\n\n\xe2\x80\x8b\nthe plot is dull \xff\xfe\n")
    assert main(["predict", "--model", str(sst2_model), "-", "--json"]) == 0
    captured = capsys.readouterr()
    results = json.loads(captured.out)
    assert len(results) == 4 and results[1] is None and results[2] is None  # blank and zero-width-only lines
    assert results[0]["text"] == "a gorgeous movie"
    assert results[3]["text"] == "the plot is dull \ufffd\ufffd" and results[3]["label"] in ("0", "1")
    assert "invalid UTF-8" in captured.err
    _stdin(monkeypatch, b"one\n\ntwo\n")
    assert main(["predict", "--model", str(sst2_model), "-"]) == 0
    lines = capsys.readouterr().out.split("\n")
    assert lines[1] == "" and lines[0].endswith("\tone") and lines[2].endswith("\ttwo")


def test_lone_surrogates_in_argv_are_replaced(sst2_model, capsys):
    # Python decodes invalid UTF-8 in argv to lone surrogates (surrogateescape).
    assert main(["predict", "--model", str(sst2_model), b"bad \xff bytes".decode("utf-8", "surrogateescape"),
                 "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out[0]["text"] == "bad \ufffd bytes"


@pytest.mark.parametrize("text", ["", "   ", "\u200b\u200c\u200d", "\x00\x00", "\ufeff", "\x00 \u2060"])
def test_empty_invisible_and_nul_texts_follow_one_rule(text, sst2_model, capsys):
    assert main(["predict", "--model", str(sst2_model), "a fine film", text]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "text 2 is empty" in err


def test_a_training_set_with_one_class_stops(tmp_path, capsys):
    data = tmp_path / "sst2"
    data.mkdir()
    rows = (GLUE / "SST-2" / "train.tsv").read_text().splitlines()
    data.joinpath("train.tsv").write_text("\n".join([rows[0]] + [r for r in rows[1:200] if r.endswith("\t1")]))
    data.joinpath("dev.tsv").write_text((GLUE / "SST-2" / "dev.tsv").read_text())
    code = main(["finetune", "--task", "sst2", "--data", str(data), "--init", "random", "--preset", "tiny",
                 "--vocab", str(VOCAB_UNCASED), "--output", str(tmp_path / "out"), "--quiet"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1
    assert "every training example of sst2 has the label '1'" in err


def test_an_untrusted_pickle_is_refused_in_our_own_line(tmp_path, capsys):
    import os

    import torch

    from tests.convert.fixtures import hf_config

    marker = tmp_path / "code_ran"

    class Payload:
        def __reduce__(self):
            return (os.mkdir, (str(marker),))

    source = tmp_path / "hf"
    source.mkdir()
    hf_config(num_hidden_layers=1).to_json_file(str(source / "config.json"))
    torch.save({"electra.embeddings.word_embeddings.weight": Payload()}, str(source / "pytorch_model.bin"))
    code = main(["convert", str(source), "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert "refused as unsafe" in err and "safetensors" in err and "weights_only=False" not in err
    assert not marker.exists()


@pytest.mark.slow  # export subprocesses import TensorFlow and convert
@pytest.mark.parametrize("fmt,name", [("saved_model", "1"), ("tflite", "model.tflite")])
def test_export_killed_while_publishing_leaves_the_previous_export_loadable(fmt, name, sst2_model, tmp_path):
    from keras_electra.export.predictor import predict_any
    from tests.killer import kill_run

    output = tmp_path / ("served" if fmt == "saved_model" else "model.tflite")
    args = ["export", "--model", str(sst2_model), "--format", fmt, "--output", str(output)]
    assert main(args) == 0
    expected = predict_any(output, ["a gorgeous movie"])
    kill_run(name, "publish", args)
    assert predict_any(output, ["a gorgeous movie"]) == expected
    assert main(args) == 0  # the next export removes what the kill left
    assert not [p for p in tmp_path.rglob(".*") if ".tmp-" in p.name or ".lock" in p.name]
