"""Hugging Face BERT checkpoints → keras-electra, against transformers (CPU torch, float32).

Tiny random BERTs of every supported class (built with transformers, every parameter
randomised) load as a discriminator backbone; the MLM head of `BertForMaskedLM` /
`BertForPreTraining` loads as a full-size generator on request. Pooler, NSP head, task
heads and buffers are reported as ignored, never dropped silently.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

from keras_electra.cli import main
from keras_electra.convert import from_pretrained, read_checkpoint
from keras_electra.convert.saved import load_saved_model
from keras_electra.errors import CheckpointError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.generator import ElectraGenerator
from tests.convert.fixtures import VOCAB_SIZE, hf_kwargs, make_hf, max_diff_at_tokens, real_batch, save_hf

TOL = 1e-5


def bert_config(**overrides) -> transformers.BertConfig:
    values = dict(vocab_size=VOCAB_SIZE, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                  intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
                  layer_norm_eps=1e-12, num_labels=3)
    values.update(overrides)
    return transformers.BertConfig(**values)


@pytest.fixture(scope="module")
def batch():
    return real_batch(length=24)


@torch.no_grad()
def bert_hidden(model, batch) -> np.ndarray:
    base = model.bert if hasattr(model, "bert") else model
    return base(**hf_kwargs(batch)).last_hidden_state.numpy()


@torch.no_grad()
def bert_mlm_logits(model, batch) -> np.ndarray:
    out = model(**hf_kwargs(batch))
    return (out.prediction_logits if hasattr(out, "prediction_logits") else out.logits).numpy()


# class -> source names ignored on purpose (besides the position-id buffer some versions save)
HEADS = {
    "BertModel": {"pooler.dense.weight", "pooler.dense.bias"},
    "BertForPreTraining": {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "cls.seq_relationship.weight",
                           "cls.seq_relationship.bias"},
    "BertForMaskedLM": set(),
    "BertForSequenceClassification": {"bert.pooler.dense.weight", "bert.pooler.dense.bias", "classifier.weight",
                                      "classifier.bias"},
    "BertForTokenClassification": {"classifier.weight", "classifier.bias"},
}


@pytest.mark.parametrize("architecture", sorted(HEADS))
def test_every_bert_class_loads_as_a_discriminator_backbone(architecture, tmp_path, batch):
    reference = make_hf(getattr(transformers, architecture), bert_config(), seed=len(architecture))
    directory = save_hf(reference, tmp_path / architecture)
    backbone, report = from_pretrained(directory, return_report=True)
    assert isinstance(backbone, ElectraBackbone) and backbone.embedding_size == backbone.hidden_size
    assert max_diff_at_tokens(backbone(batch), bert_hidden(reference, batch), batch) <= TOL
    assert not report.left_initialised and not report.allowed_unused
    ignored = {k for k in report.ignored if not k.endswith("position_ids")}
    assert ignored >= HEADS[architecture] and all(
        "tied" in report.ignored[k] for k in ignored - HEADS[architecture])
    assert read_checkpoint(directory).architecture == architecture
    if architecture in ("BertForMaskedLM", "BertForPreTraining"):  # the MLM head is there, just not loaded
        assert any(name.startswith("cls.predictions.") for name in report.other_parts)


@pytest.mark.parametrize("architecture,act", [("BertForMaskedLM", "gelu"), ("BertForPreTraining", "gelu"),
                                              ("BertForMaskedLM", "gelu_new")])
def test_mlm_head_loads_as_a_full_size_generator(architecture, act, tmp_path, batch):
    reference = make_hf(getattr(transformers, architecture), bert_config(hidden_act=act), seed=3)
    directory = save_hf(reference, tmp_path / architecture)
    generator, report = from_pretrained(directory, part="generator", return_report=True)
    assert isinstance(generator, ElectraGenerator)
    assert generator.backbone.hidden_size == 32 and generator.backbone.num_layers == 2  # full size
    assert max_diff_at_tokens(generator.backbone(batch), bert_hidden(reference, batch), batch) <= TOL
    logits = generator(batch, mask_positions=None)
    assert max_diff_at_tokens(logits, bert_mlm_logits(reference, batch), batch) <= TOL
    assert not report.left_initialised and not report.other_parts or all(
        "seq_relationship" in n for n in report.other_parts)


def test_convert_cli_writes_backbone_and_generator(tmp_path, batch, capsys):
    reference = make_hf(transformers.BertForMaskedLM, bert_config(), seed=5)
    directory = save_hf(reference, tmp_path / "mlm")
    assert main(["convert", "--from", "hf", str(directory), "--output", str(tmp_path / "out")]) == 0
    backbone = load_saved_model(tmp_path / "out" / "backbone")
    assert max_diff_at_tokens(backbone(batch), bert_hidden(reference, batch), batch) <= TOL
    report = json.loads((tmp_path / "out" / "backbone" / "conversion.json").read_text())
    assert report["architecture"] == "BertForMaskedLM" and report["lower_case"] is True

    args = ["convert", "--from", "hf", "--part", "generator", str(directory), "--output", str(tmp_path / "gen")]
    assert main(args) == 0
    generator = load_saved_model(tmp_path / "gen" / "generator")
    assert max_diff_at_tokens(generator(batch, mask_positions=None), bert_mlm_logits(reference, batch),
                              batch) <= TOL
    config = json.loads((tmp_path / "gen" / "generator" / "config.json").read_text())
    assert config["generator_fraction"] == 1.0
    capsys.readouterr()


def test_bert_checkpoint_without_mlm_head_has_no_generator_or_discriminator(tmp_path, capsys):
    directory = save_hf(make_hf(transformers.BertModel, bert_config(), seed=1), tmp_path / "bert")
    with pytest.raises(CheckpointError, match="without an MLM head"):
        from_pretrained(directory, part="generator")
    with pytest.raises(CheckpointError, match="BERT checkpoint .* no replaced-token-detection head"):
        from_pretrained(directory, part="discriminator")
    args = ["convert", "--from", "hf", "--part", "discriminator", str(directory), "--output", str(tmp_path / "o")]
    assert main(args) != 0
    err = capsys.readouterr().err.strip()
    assert "replaced-token-detection" in err and "\n" not in err and "Traceback" not in err


def test_tf_style_gamma_beta_names_and_tied_decoder_are_read(tmp_path, batch):
    reference = make_hf(transformers.BertForMaskedLM, bert_config(), seed=7)
    directory = save_hf(reference, tmp_path / "old")
    file = directory / "model.safetensors"
    tensors = load_file(str(file))
    renamed = {}
    for key, value in tensors.items():
        if "LayerNorm" in key:
            key = key.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta")
        renamed[key] = value
    # Older saves hold the tied decoder matrix and bias explicitly.
    renamed["cls.predictions.decoder.weight"] = tensors["bert.embeddings.word_embeddings.weight"].copy()
    renamed["cls.predictions.decoder.bias"] = tensors["cls.predictions.bias"].copy()
    save_file(renamed, str(file), metadata={"format": "pt"})
    generator, report = from_pretrained(directory, part="generator", return_report=True)
    assert max_diff_at_tokens(generator(batch, mask_positions=None), bert_mlm_logits(reference, batch),
                              batch) <= TOL
    assert "tied" in report.ignored["cls.predictions.decoder.weight"]
    assert "tied" in report.ignored["cls.predictions.decoder.bias"]

    renamed["cls.predictions.decoder.weight"] = renamed["cls.predictions.decoder.weight"] + 1.0
    save_file(renamed, str(file), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match="untied MLM output embeddings"):
        from_pretrained(directory, part="generator")


def test_unknown_bert_weight_is_named(tmp_path):
    directory = save_hf(make_hf(transformers.BertModel, bert_config(), seed=2), tmp_path / "bert")
    file = directory / "model.safetensors"
    tensors = load_file(str(file))
    tensors["adapter.down.weight"] = np.zeros((4, 32), np.float32)
    save_file(tensors, str(file), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"adapter\.down\.weight"):
        from_pretrained(directory)
