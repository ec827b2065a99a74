"""Damaged inputs to convert (issue 18): a truncated TF1 checkpoint is one line naming it."""

from __future__ import annotations

import pytest

from keras_electra.cli import main
from tests.convert.fixtures import hf_config, hf_pair, official_pretraining_variables, write_tf1_checkpoint


def test_truncated_tf1_checkpoint_is_one_line(tmp_path, capsys):
    kwargs = dict(embedding_size=16, hidden_size=32, num_attention_heads=1, intermediate_size=64,
                  num_hidden_layers=1)
    gen_hf, disc_hf = hf_pair(hf_config(**kwargs), hf_config(**kwargs), seed=3)
    prefix = write_tf1_checkpoint(tmp_path / "ckpt", official_pretraining_variables(gen_hf, disc_hf), step=5)
    data = next((tmp_path / "ckpt").glob("model.ckpt-5.data-*"))
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    code = main(["convert", prefix, "--from", "tf1", "--output", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert prefix in err and "truncated or damaged" in err
    assert not (tmp_path / "out").exists()


@pytest.mark.slow  # two subprocesses that import TensorFlow
@pytest.mark.parametrize("when", ["publish", "after_publish"])
def test_convert_killed_while_replacing_its_output_leaves_a_loadable_model(when, tmp_path):
    from keras_electra.saving import load_model
    from tests.convert.fixtures import save_hf
    from tests.killer import kill_run

    kwargs = dict(embedding_size=16, hidden_size=32, num_attention_heads=1, intermediate_size=64,
                  num_hidden_layers=1)
    _, disc_hf = hf_pair(hf_config(**kwargs), hf_config(**kwargs), seed=4)
    source = save_hf(disc_hf, tmp_path / "hf")
    output = tmp_path / "out"
    assert main(["convert", str(source), "--output", str(output)]) == 0
    kill_run(output.name, when, ["convert", str(source), "--output", str(output), "--overwrite"])
    load_model(output / "discriminator")  # the old (publish) or the new (after_publish) model, whole
    leftovers = [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]
    assert leftovers  # what the kill left ...
    assert main(["convert", str(source), "--output", str(output), "--overwrite"]) == 0
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".out.")]  # ... the next run removes
    load_model(output / "discriminator")
