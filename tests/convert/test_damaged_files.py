"""Damaged inputs to convert (issue 18): a truncated TF1 checkpoint is one line naming it."""

from __future__ import annotations

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
