"""Google's TF1 checkpoints: written here under the official names (with Adam slots and
global_step) from random HF models, loaded, and compared with transformers' outputs."""

from __future__ import annotations

import numpy as np
import pytest

from keras_electra.config import ElectraConfig
from keras_electra.convert import (
    from_pretrained,
    init_pretrainer,
    load_pretraining_pair,
    pretraining_config,
    read_checkpoint,
)
from keras_electra.errors import CheckpointError
from tests.convert.fixtures import (
    hf_config,
    hf_hidden,
    hf_outputs,
    hf_pair,
    max_diff_at_tokens,
    official_pretraining_variables,
    real_batch,
    write_json,
    write_tf1_checkpoint,
)

TOL = 1e-5
# A Small++-like pair: the generator is as wide as the discriminator (hidden 32, 4 heads),
# while the config's generator_fraction (0.25) would say 8. Sizes must come from the shapes.
DISC = dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=64)
GEN = dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=64)
OUR_CONFIG = dict(vocab_size=30522, embedding_size=16, hidden_size=32, num_layers=2, num_heads=4,
                  intermediate_size=64, max_position_embeddings=64, generator_fraction=0.25)


@pytest.fixture(scope="module")
def batch():
    return real_batch(length=24)


@pytest.fixture(scope="module")
def tf1_pair(tmp_path_factory):
    gen, disc = hf_pair(hf_config(**DISC), hf_config(**GEN), seed=31)
    variables = official_pretraining_variables(gen, disc)
    root = tmp_path_factory.mktemp("tf1")
    prefix = write_tf1_checkpoint(root / "ckpt", variables, step=1000)
    config_path = write_json(root / "our_config.json", OUR_CONFIG)
    return gen, disc, variables, prefix, config_path


def test_pair_matches_transformers_and_shares_embeddings(tf1_pair, batch):
    gen_hf, disc_hf, variables, prefix, config_path = tf1_pair
    generator, discriminator, report = load_pretraining_pair(
        prefix.rsplit("/", 1)[0], config=config_path, return_report=True  # the directory: `checkpoint` file
    )
    # Adam slots and global_step are recognised and ignored on purpose; nothing else is.
    assert len(report.ignored) == 2 * len(variables) + 1
    assert set(report.ignored.values()) == {"Adam optimizer slot", "training step counter"}
    assert sorted(report.loaded) == sorted(variables)
    assert not report.other_parts and not report.allowed_unused
    # The generator's size came from the checkpoint, not from the config's fraction.
    assert generator.backbone.hidden_size == 32 and generator.backbone.num_heads == 4
    assert any("generator hidden size 32 read from the checkpoint" in note for note in report.notes)

    assert generator.backbone.embeddings is discriminator.backbone.embeddings
    assert max_diff_at_tokens(discriminator.backbone(batch), hf_hidden(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(discriminator(batch), hf_outputs(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL


def test_single_parts_and_backbone(tf1_pair, batch):
    gen_hf, disc_hf, _, prefix, config_path = tf1_pair
    disc, report = from_pretrained(prefix + ".index", config=config_path, return_report=True)  # auto: discriminator
    assert sum(name.startswith(("generator/", "generator_predictions/")) for name in report.other_parts) > 0
    assert max_diff_at_tokens(disc(batch), hf_outputs(disc_hf, batch), batch) <= TOL
    gen = from_pretrained(prefix, part="generator", config=config_path)
    assert max_diff_at_tokens(gen(batch), hf_outputs(gen_hf, batch), batch) <= TOL


def test_official_hparams_beside_the_checkpoint(tmp_path, batch):
    """The official hparams: heads = hidden // 64, generator = 1/4 width, FFN = 4 x hidden."""
    disc_kwargs = dict(embedding_size=16, hidden_size=128, num_attention_heads=2, intermediate_size=256,
                       num_hidden_layers=1)
    gen_kwargs = dict(embedding_size=16, hidden_size=32, num_attention_heads=1, intermediate_size=128,
                      num_hidden_layers=1)
    gen_hf, disc_hf = hf_pair(hf_config(**disc_kwargs), hf_config(**gen_kwargs), seed=41)
    prefix = write_tf1_checkpoint(tmp_path, official_pretraining_variables(gen_hf, disc_hf), step=7)
    write_json(tmp_path / "hparams.json", {
        "model_size": "small", "vocab_size": 30522, "embedding_size": 16, "do_lower_case": False,
        "model_hparam_overrides": {"hidden_size": 128, "num_hidden_layers": 1, "intermediate_size": 256,
                                   "max_position_embeddings": 64},
    })
    checkpoint = read_checkpoint(prefix)
    assert (checkpoint.config.num_heads, checkpoint.config.generator_config().num_heads) == (2, 1)
    assert checkpoint.lower_case is False
    generator, discriminator = load_pretraining_pair(checkpoint)
    assert max_diff_at_tokens(discriminator(batch), hf_outputs(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL


def test_without_config_heads_follow_the_official_rule(tf1_pair):
    _, _, _, prefix, _ = tf1_pair
    checkpoint = read_checkpoint(prefix)
    assert checkpoint.config.hidden_size == 32 and checkpoint.config.num_heads == 1  # max(1, 32 // 64)
    assert any("max(1, hidden // 64)" in note for note in checkpoint.notes)


def test_electric_variables_are_not_silently_ignored(tf1_pair, tmp_path):
    _, _, variables, _, config_path = tf1_pair
    extra = {"generator_ltr/encoder/layer_0/attention/self/query/kernel": np.zeros((32, 32), np.float32)}
    prefix = write_tf1_checkpoint(tmp_path, variables, step=5, extra=extra)
    with pytest.raises(CheckpointError, match=r"does not use: generator_ltr/encoder/layer_0/attention/self/query"):
        from_pretrained(prefix, config=config_path)
    _, report = from_pretrained(prefix, config=config_path, allow_unused=["generator_ltr/*"], return_report=True)
    assert report.allowed_unused == list(extra)


def test_config_that_disagrees_with_the_shapes(tf1_pair):
    _, _, _, prefix, _ = tf1_pair
    wrong = ElectraConfig(**{**OUR_CONFIG, "hidden_size": 64})
    with pytest.raises(CheckpointError, match=r"says hidden_size=64 but the checkpoint has 32 "
                                              r"\(electra/encoder/layer_0/attention/self/query/kernel is \[32, 32\]\)"):
        read_checkpoint(prefix, config=wrong)


def test_tf2_object_checkpoint_is_refused(tmp_path):
    import tensorflow as tf

    path = tf.train.Checkpoint(v=tf.Variable(1.0)).write(str(tmp_path / "obj"))
    with pytest.raises(CheckpointError, match="object-based TF2 checkpoint"):
        from_pretrained(path, format="tf1")


def test_init_pretrainer_continues_from_the_pair(tf1_pair, batch):
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    gen_hf, disc_hf, _, prefix, config_path = tf1_pair
    specials = {"cls": 101, "sep": 102, "pad": 0, "mask": 103}
    config = pretraining_config(prefix, config=config_path)
    pretrainer = ElectraPretrainer(config, specials, seq_length=24)
    report = init_pretrainer(pretrainer, prefix, config=config_path)
    assert len(report.loaded) == len({**pretrainer.discriminator.canonical_weights(),
                                      **pretrainer.generator.canonical_weights()})
    assert pretrainer.generator.backbone.embeddings is pretrainer.discriminator.backbone.embeddings
    assert max_diff_at_tokens(pretrainer.discriminator(batch), hf_outputs(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(pretrainer.generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL

    paper_sized = ElectraPretrainer(config.replace(generator_hidden_size=None, generator_num_heads=None,
                                                   generator_intermediate_size=None), specials, seq_length=24)
    with pytest.raises(CheckpointError, match="generator hidden_size: pretrainer 8 vs checkpoint 32"):
        init_pretrainer(paper_sized, prefix, config=config_path)


def test_chinese_electra_layout_with_separate_configs(tmp_path, batch):
    """Chinese-ELECTRA ships BERT-style `*_discriminator_config.json` / `*_generator_config.json`:
    the generator's heads come from its file, where the head-size rule would say otherwise."""
    disc_kwargs = dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=64)
    gen_kwargs = dict(embedding_size=16, hidden_size=16, num_attention_heads=4, intermediate_size=32)
    gen_hf, disc_hf = hf_pair(hf_config(**disc_kwargs), hf_config(**gen_kwargs), seed=43)
    prefix = write_tf1_checkpoint(tmp_path, official_pretraining_variables(gen_hf, disc_hf), step=9, adam=False)
    write_json(tmp_path / "small_discriminator_config.json", disc_hf.config.to_dict())
    write_json(tmp_path / "small_generator_config.json", gen_hf.config.to_dict())
    generator, discriminator = load_pretraining_pair(prefix)
    assert (generator.backbone.hidden_size, generator.backbone.num_heads) == (16, 4)
    assert max_diff_at_tokens(discriminator(batch), hf_outputs(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL
