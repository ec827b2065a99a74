"""`keras-electra convert`, tried as a new user would: one command, then use the output."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import transformers

from keras_electra.cli import main
from keras_electra.config import ElectraConfig
from keras_electra.convert import from_pretrained, load_pretraining_pair
from keras_electra.convert.saved import load_saved_model
from keras_electra.data.tokenizer import ElectraTokenizer
from tests.conftest import VOCAB_UNCASED
from tests.convert.fixtures import (
    hf_config,
    hf_outputs,
    hf_pair,
    make_hf,
    max_diff_at_tokens,
    novel_lines,
    official_pretraining_variables,
    real_batch,
    save_hf,
    write_json,
    write_tf1_checkpoint,
)

TOL = 1e-5


@pytest.fixture(scope="module")
def batch():
    return real_batch(length=24)


def test_hf_discriminator_converts_with_one_command(tmp_path, batch, capsys):
    reference = make_hf(transformers.ElectraForPreTraining, hf_config(), seed=51)
    source = save_hf(reference, tmp_path / "electra-tiny-discriminator")  # save_pretrained + tokenizer
    output = tmp_path / "converted"
    assert main(["convert", "--from", "hf", str(source), "--output", str(output)]) == 0
    printed = capsys.readouterr().out
    assert f"discriminator: {output / 'discriminator'} (loaded {len(reference.state_dict())} variables" in printed

    directory = output / "discriminator"
    assert sorted(p.name for p in directory.iterdir()) == [
        "config.json", "conversion.json", "model.keras", "tokenizer.json", "vocab.txt"]
    model = load_saved_model(directory)
    assert max_diff_at_tokens(model(batch), hf_outputs(reference, batch), batch) <= TOL
    config = ElectraConfig.from_json(directory / "config.json")
    assert (config.hidden_size, config.num_heads, config.embedding_size) == (32, 4, 16)
    report = json.loads((directory / "conversion.json").read_text())
    assert report["format"] == "hf" and report["architecture"] == "ElectraForPreTraining"
    assert report["lower_case"] is True

    # The tokenizer came along and agrees with transformers' on real text.
    tokenizer = ElectraTokenizer.from_directory(directory)
    hf_tok = transformers.BertTokenizer(vocab=str(VOCAB_UNCASED), do_lower_case=True)
    lines = novel_lines(100, min_chars=1)
    assert tokenizer.tokenize(lines).to_list() == [hf_tok.encode(x, add_special_tokens=False) for x in lines]

    # Converted output loads back through from_pretrained too (keras-electra format).
    again = from_pretrained(directory)
    assert max_diff_at_tokens(again(batch), model(batch), batch) == 0.0

    # An existing output is not overwritten by accident.
    assert main(["convert", "--from", "hf", str(source), "--output", str(output)]) == 2
    assert "already exists; pass --overwrite" in capsys.readouterr().err


def test_hf_discriminator_and_generator_convert_as_a_pair(tmp_path, batch):
    disc_kwargs = dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=64)
    gen_kwargs = dict(embedding_size=16, hidden_size=8, num_attention_heads=1, intermediate_size=32)
    gen_hf, disc_hf = hf_pair(hf_config(**disc_kwargs), hf_config(**gen_kwargs), seed=55)
    disc_dir, gen_dir = save_hf(disc_hf, tmp_path / "disc"), save_hf(gen_hf, tmp_path / "gen")
    output = tmp_path / "pair"
    assert main(["convert", "--from", "hf", str(disc_dir), "--generator", str(gen_dir), "--output", str(output)]) == 0
    generator, discriminator = load_pretraining_pair(output)
    assert generator.backbone.embeddings is discriminator.backbone.embeddings
    assert generator.backbone.hidden_size == 8 and generator.backbone.num_heads == 1
    assert max_diff_at_tokens(discriminator(batch), hf_outputs(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL


def test_tf1_checkpoint_converts_both_nets(tmp_path, batch, capsys):
    disc_kwargs = dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=64)
    gen_kwargs = dict(embedding_size=16, hidden_size=8, num_attention_heads=1, intermediate_size=32)
    gen_hf, disc_hf = hf_pair(hf_config(**disc_kwargs), hf_config(**gen_kwargs), seed=61)
    ckpt = tmp_path / "electra_tiny"
    variables = official_pretraining_variables(gen_hf, disc_hf)
    write_tf1_checkpoint(ckpt, variables, step=100)
    (ckpt / "vocab.txt").write_bytes(VOCAB_UNCASED.read_bytes())
    config = write_json(tmp_path / "config.json", dict(
        vocab_size=30522, embedding_size=16, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
        max_position_embeddings=64, generator_fraction=0.25, generator_num_heads=1))
    output = tmp_path / "out"
    assert main(["convert", "--from", "tf1", str(ckpt), "--output", str(output), "--config", str(config)]) == 0
    printed = capsys.readouterr().out
    for part in ("discriminator", "generator"):
        assert f"{part}: {output / part} (loaded {len(variables)} variables" in printed
    assert f"ignored {2 * len(variables) + 1} on purpose (Adam optimizer slot; training step counter)" in printed

    generator, discriminator = load_pretraining_pair(output)  # re-tied from DIR/{generator,discriminator}
    assert generator.backbone.embeddings is discriminator.backbone.embeddings
    assert max_diff_at_tokens(discriminator(batch), hf_outputs(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL
    saved_generator = keras.saving.load_model(output / "generator" / "model.keras")
    assert max_diff_at_tokens(saved_generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL


def test_errors_are_one_line_and_name_the_problem(tmp_path, capsys):
    reference = make_hf(transformers.ElectraForPreTraining, hf_config(num_hidden_layers=1), seed=71)
    source = save_hf(reference, tmp_path / "hf", with_tokenizer=False)
    tf1 = tmp_path / "tf1"
    variables = {"electra/embeddings/word_embeddings": np.zeros((10, 4), np.float32)}
    write_tf1_checkpoint(tf1, variables, step=3)

    cases = [
        (["--from", "hf", str(tf1)], "looks like a TF1 checkpoint (model.ckpt-N.index + .data-* files, or a "
                                     "directory with a `checkpoint` file) (use --from tf1)"),
        (["--from", "tf1", str(source)], "use --from hf"),
        (["--from", "hf", str(tmp_path / "missing")], "does not exist"),
        (["--from", "hf", str(source), "--part", "generator"], "keeps the generator in a separate checkpoint"),
        (["--from", "tf1", str(tf1)], "electra/embeddings/position_embeddings not found"),
    ]
    (tmp_path / "empty").mkdir()
    cases.append((["--from", "keras-hub", str(tmp_path / "empty")], "is not a keras-hub preset: expected "
                                                                    "config.json naming keras_hub>ElectraBackbone"))
    capsys.readouterr()  # drop what building the sources printed
    for i, (args, expected) in enumerate(cases):
        assert main(["convert", *args, "--output", str(tmp_path / f"out{i}")]) == 2, args
        err = capsys.readouterr().err
        assert err.startswith("keras-electra convert: error: ") and expected in err, (args, err)
        assert err.count("\n") == 1
        assert not (tmp_path / f"out{i}").exists()

    weights = source / "model.safetensors"
    from safetensors.numpy import load_file, save_file

    tensors = load_file(str(weights))
    tensors["electra.embeddings_project.extra"] = np.zeros(3, np.float32)
    save_file(tensors, str(weights), metadata={"format": "pt"})
    out = tmp_path / "allowed"
    assert main(["convert", str(source), "--output", str(out)]) == 2
    assert "electra.embeddings_project.extra" in capsys.readouterr().err
    assert main(["convert", str(source), "--output", str(out), "--allow-unused", "electra.*.extra"]) == 0
    assert "1 unused by allow-list" in capsys.readouterr().out
