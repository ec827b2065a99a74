"""`keras-electra pretrain --init`: continue pretraining from a Hugging Face generator/discriminator pair."""

from __future__ import annotations

import json

import keras
import numpy as np
import torch
import transformers

from keras_electra.cli import main
from tests.conftest import NOVELS
from tests.convert.fixtures import hf_config, hf_kwargs, hf_outputs, hf_pair, make_hf, real_batch, save_hf


def test_pretrain_init_from_hf_pair(tmp_path):
    disc_config = hf_config(max_position_embeddings=128)
    gen_config = hf_config(max_position_embeddings=128, hidden_size=16, num_attention_heads=2, intermediate_size=32)
    gen, disc = hf_pair(disc_config, gen_config, seed=3)
    disc_dir = save_hf(disc, tmp_path / "hf-disc")
    gen_dir = save_hf(gen, tmp_path / "hf-gen")
    output = tmp_path / "continued"
    code = main(["pretrain", "--init", str(disc_dir), "--init-generator", str(gen_dir),
                 "--corpus", str(NOVELS / "Doyle_Hound_1902.txt"), "--steps", "3", "--batch-size", "4",
                 "--seq-length", "32", "--learning-rate", "1e-5", "--warmup-steps", "0", "--eval-batches", "1",
                 "--output", str(output)])
    assert code == 0
    assert json.loads((output / "metrics.json").read_text())["steps"] == 3
    ours = keras.saving.load_model(output / "discriminator" / "model.keras")
    assert ours.backbone.hidden_size == 32 and ours.backbone.embedding_size == 16
    generator = keras.saving.load_model(output / "generator" / "model.keras")
    assert generator.backbone.hidden_size == 16
    # Three tiny steps at LR 1e-5 move the weights only slightly away from the HF start.
    batch = real_batch()
    theirs = hf_outputs(disc, batch)
    mine = ours.predict({k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}, verbose=0)
    real = batch["padding_mask"] == 1
    assert np.abs(mine[real] - theirs[real]).max() < 0.05



def test_pretrain_init_from_a_bert_encoder_starts_the_heads_and_generator_fresh(tmp_path, capsys):
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=128)
    bert = make_hf(transformers.BertForMaskedLM, config, seed=11)
    bert_dir = save_hf(bert, tmp_path / "bert")
    output = tmp_path / "from-bert"
    code = main(["pretrain", "--init", str(bert_dir), "--corpus", str(NOVELS / "Doyle_Hound_1902.txt"),
                 "--steps", "2", "--batch-size", "4", "--seq-length", "32", "--learning-rate", "1e-5",
                 "--warmup-steps", "0", "--eval-batches", "1", "--output", str(output)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "model parameters left newly initialised" in printed and "BertForMaskedLM" in printed
    ours = keras.saving.load_model(output / "discriminator" / "model.keras")
    assert ours.backbone.hidden_size == 32 and ours.backbone.embedding_size == 32
    generator = keras.saving.load_model(output / "generator" / "model.keras")
    assert generator.backbone.hidden_size == 8  # the default 1/4-size generator, not BERT's MLM head
    batch = real_batch()
    with torch.no_grad():
        theirs = bert.bert(**hf_kwargs(batch)).last_hidden_state.numpy()
    mine = np.asarray(ours.backbone({k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}))
    real = batch["padding_mask"] == 1
    assert np.abs(mine[real] - theirs[real]).max() < 0.05  # two tiny steps from BERT's encoder


def test_pretrain_init_takes_the_fresh_layers_initializer_and_refuses_other_network_changes(tmp_path, capsys):
    """With --init the checkpoint brings the network: --default-initializer reaches the fresh layers (it was once
    dropped silently), while a --config that would change the network is one line."""
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=128)
    bert_dir = save_hf(make_hf(transformers.BertModel, config, seed=3), tmp_path / "bert")
    common = ["pretrain", "--init", str(bert_dir), "--corpus", str(NOVELS / "Doyle_Hound_1902.txt"), "--steps", "1",
              "--batch-size", "4", "--seq-length", "32", "--warmup-steps", "0", "--eval-batches", "1"]
    assert main([*common, "--default-initializer", "truncated_normal", "--output", str(tmp_path / "tn")]) == 0
    saved = json.loads((tmp_path / "tn" / "discriminator" / "config.json").read_text())
    assert saved["default_initializer"] == "truncated_normal"
    assert main([*common, "--config", "hidden_size=64", "--output", str(tmp_path / "bad")]) == 2
    assert "--config hidden_size: changes the network of a run from scratch only" in capsys.readouterr().err


def test_pretrain_init_sizes_a_fresh_generator_and_refuses_a_fraction_for_a_loaded_one(tmp_path, capsys):
    """--generator-fraction with an encoder-only --init sizes the fresh generator (it was once ignored silently:
    the generator stayed at 1/4); a checkpoint that brings its generator refuses the option in one line."""
    config = transformers.BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                                     intermediate_size=64, max_position_embeddings=128)
    bert_dir = save_hf(make_hf(transformers.BertModel, config, seed=5), tmp_path / "bert")
    common = ["--corpus", str(NOVELS / "Doyle_Hound_1902.txt"), "--steps", "1", "--batch-size", "4",
              "--seq-length", "32", "--warmup-steps", "0", "--eval-batches", "1"]
    full = tmp_path / "full-size"
    assert main(["pretrain", "--init", str(bert_dir), "--generator-fraction", "1.0", *common,
                 "--output", str(full)]) == 0
    generator = keras.saving.load_model(full / "generator" / "model.keras")
    assert generator.backbone.hidden_size == 32 and generator.backbone.num_layers == 2
    # The run just written brings its generator: continuing it with another fraction is refused before any work.
    again = tmp_path / "again"
    assert main(["pretrain", "--init", str(full), "--generator-fraction", "0.5", *common, "--output", str(again)]) == 2
    assert "--generator-fraction" in capsys.readouterr().err and not again.exists()
