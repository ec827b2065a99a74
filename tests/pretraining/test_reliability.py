"""Pretraining reliability (issue 18): nothing pinned before validation, no silent vocabulary switch,
stale temporaries removed, damaged checkpoints skipped or named, damaged JSON named."""

from __future__ import annotations

import shutil
import stat
from pathlib import Path

import pytest

from keras_electra.cli import main
from tests.conftest import NOVELS, VOCAB_CASED, VOCAB_UNCASED

CORPUS = str(NOVELS / "Burnett_Lord_1886.txt")


def _args(output: Path, *extra: str, vocab: Path = VOCAB_CASED) -> list[str]:
    return ["pretrain", "--preset", "tiny", "--corpus", CORPUS, "--vocab", str(vocab), "--steps", "4",
            "--batch-size", "2", "--seq-length", "16", "--checkpoint-every", "2", "--eval-batches", "1",
            "--output", str(output), *extra]


def _cli(args: list[str], capsys) -> tuple[int, str, str]:
    code = main(args)
    captured = capsys.readouterr()
    return code, captured.out, captured.err.strip()


@pytest.fixture(scope="module")
def cased_run(tmp_path_factory) -> Path:
    """A real (tiny) cased run with checkpoints at steps 2 and 4 and final models."""
    import os

    output = tmp_path_factory.mktemp("reliab") / "cased"
    # What an older version left after a failed uncased run: these must not pin this cased run.
    output.mkdir()
    (output / "vocab.txt").write_text(VOCAB_UNCASED.read_text())
    (output / "tokenizer.json").write_text('{"lower_case": true, "strip_accents": true}\n')
    old = os.umask(0o022)
    try:
        assert main(_args(output, "--cased")) == 0
    finally:
        os.umask(old)
    return output


def _copy(run: Path, tmp_path: Path) -> Path:
    copy = tmp_path / "run"
    shutil.copytree(run, copy)
    return copy


def test_files_left_by_a_failed_run_do_not_pin_the_next_one(cased_run):
    import json

    from keras_electra.data.tokenizer import load_vocabulary

    assert load_vocabulary(cased_run) == load_vocabulary(VOCAB_CASED)
    assert json.loads((cased_run / "tokenizer.json").read_text())["lower_case"] is False
    assert json.loads((cased_run / "discriminator" / "tokenizer.json").read_text())["lower_case"] is False


def test_final_model_directories_are_world_readable(cased_run):
    for part in ("discriminator", "generator"):
        assert stat.S_IMODE((cased_run / part).stat().st_mode) == 0o755
    assert not (cased_run / ".keras-electra.lock").exists()


def test_a_run_that_fails_validation_writes_nothing(tmp_path, capsys):
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n")
    output = tmp_path / "out"
    code, _, err = _cli([str(empty) if a == CORPUS else a for a in _args(output)], capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert not output.exists()  # no run_config.json, vocab.txt or tokenizer.json to pin the next run


def test_resume_refuses_another_vocabulary_or_casing(cased_run, tmp_path, capsys):
    run = _copy(cased_run, tmp_path)
    code, _, err = _cli(_args(run, vocab=VOCAB_UNCASED), capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"--vocab {VOCAB_UNCASED} differs from {run / 'vocab.txt'}" in err
    code, _, err = _cli(_args(run), capsys)  # the cased vocabulary without --cased
    assert code == 2 and "is cased" in err and "add --cased" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("name", ["run_config.json", "tokenizer.json"])
def test_truncated_json_is_one_line_naming_the_file(name, cased_run, tmp_path, capsys):
    run = _copy(cased_run, tmp_path)
    text = (run / name).read_text()
    (run / name).write_text(text[: len(text) // 2])
    code, _, err = _cli(_args(run, "--cased"), capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert f"{run / name} is not valid JSON" in err


def test_truncated_checkpoint_falls_back_to_the_newest_intact_one(cased_run, tmp_path, capsys):
    run = _copy(cased_run, tmp_path)
    newest = run / "checkpoints" / "ckpt-4.data-00000-of-00001"
    with open(newest, "r+b") as f:
        f.truncate(newest.stat().st_size // 3)
    # What a kill leaves: TF's staging directory and an atomic writer's temporary with an empty model.
    (run / "checkpoints" / "ckpt-6_temp").mkdir()
    (run / ".generator.tmp-k1ll3d").mkdir()
    (run / ".generator.tmp-k1ll3d" / "model.keras").write_bytes(b"")
    code, out, err = _cli(_args(run, "--cased"), capsys)
    assert code == 0, err
    assert f"checkpoint {run / 'checkpoints' / 'ckpt-4'} is unreadable" in out
    assert "Resuming from step 2" in out
    assert not (run / "checkpoints" / "ckpt-6_temp").exists() and not (run / ".generator.tmp-k1ll3d").exists()


def test_no_intact_checkpoint_is_one_line_naming_the_file(cased_run, tmp_path, capsys):
    run = _copy(cased_run, tmp_path)
    for data in (run / "checkpoints").glob("ckpt-*.data-*"):
        data.write_bytes(b"")
    code, _, err = _cli(_args(run, "--cased"), capsys)
    assert code == 2 and len(err.splitlines()) == 1
    assert "cannot resume" in err and "ckpt-" in err and "is damaged" in err


def test_truncated_model_keras_is_not_a_readable_archive_on_every_load_path(cased_run, tmp_path, capsys):
    from keras_electra.errors import CheckpointError
    from keras_electra.saving import load_model
    from keras_electra.tasks.base import load_pretrained_backbone

    run = _copy(cased_run, tmp_path)
    model = run / "discriminator" / "model.keras"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
    for load in (load_model, load_pretrained_backbone):
        with pytest.raises(CheckpointError, match="is not a readable .keras archive"):
            load(run / "discriminator")
    code, _, err = _cli(["convert", str(run / "discriminator"), "--output", str(tmp_path / "c")], capsys)
    assert code == 2 and "is not a readable .keras archive" in err and len(err.splitlines()) == 1


@pytest.mark.parametrize("change", [{"num_layers": "two"}, {"hidden_sise": 128}])
def test_config_json_is_validated_by_finetune_init_as_by_convert(change, cased_run, tmp_path, capsys):
    import json

    from keras_electra.errors import CheckpointError
    from keras_electra.tasks.base import load_pretrained_backbone

    run = _copy(cased_run, tmp_path)
    config = run / "discriminator" / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), **change}))
    with pytest.raises(CheckpointError, match="config.json") as finetune_error:
        load_pretrained_backbone(run / "discriminator")
    code, _, err = _cli(["convert", str(run / "discriminator"), "--output", str(tmp_path / "c")], capsys)
    assert code == 2 and str(finetune_error.value) in err


@pytest.mark.slow  # a pretraining subprocess per kill point
@pytest.mark.parametrize("point", ["checkpoint", "discriminator"])
def test_pretrain_killed_while_writing_leaves_the_previous_state_loadable(point, cased_run, tmp_path, capsys):
    import keras

    from keras_electra.saving import load_model
    from tests.killer import kill_run

    run = _copy(cased_run, tmp_path)
    before = keras.ops.convert_to_numpy(load_model(run / "discriminator").weights[0])
    args = [a if a != "4" else "6" for a in _args(run, "--cased")]  # two more steps, then the final save
    kill_run(point, "publish", args)
    # The previous final model is whole, and so is the latest listed checkpoint.
    assert (keras.ops.convert_to_numpy(load_model(run / "discriminator").weights[0]) == before).all()
    import tensorflow as tf

    latest = tf.train.latest_checkpoint(str(run / "checkpoints"))
    assert latest.endswith("ckpt-4" if point == "checkpoint" else "ckpt-6")
    code, out, err = _cli(args, capsys)
    assert code == 0, err
    assert f"Resuming from step {4 if point == 'checkpoint' else 6}" in out
    assert not [p for p in run.rglob("*") if ".tmp-" in p.name or p.name.endswith("_temp")]
    load_model(run / "discriminator")
