"""scripts/compare_finetune_with_hf.py without training: both sides must see the same packed rows,
the same layer-wise LR multipliers and the same LR schedule, or the comparison means nothing."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_DATA, VOCAB_UNCASED

pytest.importorskip("torch")
pytest.importorskip("transformers")

MINILM = Path.home() / ".cache" / "keras_electra" / "minilm" / "hf"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_finetune_with_hf",
                                                  REPO / "scripts" / "compare_finetune_with_hf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tokenizers(script):
    from keras_electra.data.tokenizer import ElectraTokenizer

    return ElectraTokenizer(VOCAB_UNCASED, lower_case=True), script.hf_tokenizer(VOCAB_UNCASED, lower_case=True)


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(data=SHARED_DATA, data_seed=0, max_train_examples=kw.get("train", 300),
                              max_eval_examples=kw.get("dev", 300))


# Short lengths, so that pairs and sentences are cut: the truncation rules must agree too.
@pytest.mark.parametrize("task,length", [("sst2", 16), ("mrpc", 40), ("mrpc", 128), ("conll2003", 12)])
def test_both_sides_pack_the_same_rows(script, tokenizers, task, length):
    ours, theirs = tokenizers
    spec, data = script.task_data(task, _args())
    kind, labels = spec.runner.kind, list(data.labels)
    for examples in (data.train, data.dev):
        hf = script.encode(kind, theirs, examples, length, labels)
        mine = script.keras_encoding(kind, ours, examples, length, labels)
        info = script.check_agreement(hf, mine, task, theirs.unk_token_id)
        assert info["rows"] == len(examples)
        assert info["unk_rate"] < 0.01
    if kind == "token":  # the tags really are on the first sub-words, not all ignored
        assert (hf["labels"] != script.IGNORE_INDEX).sum() > len(examples)
    else:
        assert set(np.unique(hf["labels"])) == {0, 1}
    truncated = (hf["attention_mask"].sum(1) == length).mean()
    assert truncated > 0 or length == 128


def test_a_mismatch_or_an_unk_tokenizer_is_caught(script, tokenizers):
    ours, theirs = tokenizers
    spec, data = script.task_data("mrpc", _args(train=20, dev=20))
    labels = list(data.labels)
    hf = script.encode("classification", theirs, data.dev, 64, labels)
    mine = script.keras_encoding("classification", ours, data.dev, 64, labels)
    hf["token_type_ids"][3, 5] = 1 - hf["token_type_ids"][3, 5]
    with pytest.raises(script.ComparisonError, match="row 3"):
        script.check_agreement(hf, mine, "mrpc dev", theirs.unk_token_id)
    hf["token_type_ids"][3, 5] = mine["segment_ids"][3, 5]
    real = hf["attention_mask"].astype(bool)
    hf["input_ids"][real] = theirs.unk_token_id
    mine["token_ids"][real] = theirs.unk_token_id
    with pytest.raises(script.ComparisonError, match=r"\[UNK\]"):
        script.check_agreement(hf, mine, "mrpc dev", theirs.unk_token_id)


@pytest.mark.parametrize("kind,head", [("classification", "huggingface"), ("classification", "electra"),
                                       ("token", "huggingface")])
@pytest.mark.parametrize("embedding_size", [32, 16])  # 16: with the embeddings projection
def test_layerwise_multipliers_match_keras_electra(script, kind, head, embedding_size):
    import transformers

    from keras_electra.config import ElectraConfig
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.registry import runners

    config = ElectraConfig.from_preset("tiny", vocab_size=100, hidden_size=32, embedding_size=embedding_size,
                                       num_layers=2, num_heads=2, intermediate_size=64)
    backbone = ElectraBackbone.from_electra_config(config)
    from keras_electra.data.tokenizer import ElectraTokenizer

    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    keras_model = runners()[kind].build_model(backbone, tokenizer, 16, ["a", "b", "c"], {"head": head})
    hf_config = transformers.ElectraConfig(vocab_size=100, embedding_size=embedding_size, hidden_size=32,
                                           num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                           num_labels=3)
    cls = transformers.ElectraForTokenClassification if kind == "token" else \
        transformers.ElectraForSequenceClassification
    hf_model = cls(hf_config)
    if kind != "token" and head == "electra":
        hf_model.classifier = script.paper_head(32, 3, 0.1)
    multipliers = script.check_multipliers(hf_model, keras_model, 0.8)
    assert multipliers["electra.embeddings.word_embeddings.weight"] == pytest.approx(0.8 ** 3)
    assert multipliers["electra.encoder.layer.1.output.dense.weight"] == pytest.approx(0.8)
    assert set(v for k, v in multipliers.items() if k.startswith("classifier")) == {1.0}


def test_schedule_is_keras_electras(script):
    from keras_electra.pretraining.optimization import WarmupLinearDecay

    ours = WarmupLinearDecay(1.0, 50, 5)
    factor = script.lr_lambda(50, 5)
    for step in (0, 1, 4, 5, 6, 25, 49, 50, 60):
        assert factor(step) == pytest.approx(float(ours(step)), abs=1e-6)



@pytest.mark.skipif(not (MINILM / "model.safetensors").is_file(), reason="the MiniLM weights are not fetched")
def test_electra_layout_keeps_every_minilm_tensor(script, tmp_path):
    import torch
    from safetensors.torch import load_file

    target = script.electra_layout(MINILM, tmp_path / "electra")  # checks every tensor itself
    assert script.check_same_tensors(target / "model.safetensors", MINILM / "model.safetensors") == 101
    assert (target / "vocab.txt").read_bytes() == (MINILM / "vocab.txt").read_bytes()
    model = script.build_hf_model("classification", target, 2, "electra", 0.1, seed=0)  # checks the loaded weights
    weight = model.classifier.weight
    assert weight.abs().max() <= 0.04 and weight.std() > 0.005  # truncated normal, not HF's default init
    bert = load_file(MINILM / "model.safetensors")
    assert torch.equal(model.electra.embeddings.word_embeddings.weight, bert["embeddings.word_embeddings.weight"])
