"""`finetune --init`, `evaluate --model` on checkpoints in any format `convert` reads.

The real MiniLM weights (a Hugging Face BERT directory) fine-tune through the CLI; a tiny
random Hugging Face `ElectraForSequenceClassification` scores through `evaluate` as
transformers scores it.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import transformers

from keras_electra.cli import main
from keras_electra.convert import read_checkpoint
from keras_electra.data.readers.glue import read_glue
from keras_electra.tasks.base import load_pretrained_backbone
from keras_electra.tasks.finetune import evaluate
from keras_electra.tasks.outputs import load_finetuned
from keras_electra.tasks.task_data import subsample
from tests.conftest import GLUE, VOCAB_UNCASED
from tests.convert.fixtures import hf_config, make_hf, save_hf


@pytest.fixture(scope="module")
def minilm_sst2(minilm_dir, tmp_path_factory):
    output = tmp_path_factory.mktemp("minilm") / "sst2"
    rc = main([
        "finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", str(minilm_dir),
        "--max-train-examples", "64", "--max-eval-examples", "64", "--epochs", "1", "--seq-length", "32",
        "--output", str(output), "--quiet",
    ])
    assert rc == 0
    return output


def test_finetune_init_from_a_hugging_face_bert_directory(minilm_sst2, minilm_dir):
    results = json.loads((minilm_sst2 / "results.json").read_text())
    assert results["init"] == str(minilm_dir) and results["num_examples"] == {"train": 64, "dev": 64}
    model, _ = load_finetuned(minilm_sst2)
    backbone = model.backbone
    assert (backbone.num_layers, backbone.hidden_size, backbone.num_heads) == (6, 384, 12)
    # Started from MiniLM: two small steps later the position embeddings are still MiniLM's.
    theirs = read_checkpoint(minilm_dir).tensors["electra/embeddings/position_embeddings"].load()
    ours = np.asarray(backbone.embeddings.position_embeddings)
    assert np.max(np.abs(ours - theirs)) < 1e-3
    assert model.preprocessor.tokenizer.vocabulary == read_checkpoint(minilm_dir).vocabulary


def test_evaluate_a_pretraining_checkpoint_says_to_fine_tune_it(minilm_dir, capsys):
    assert main(["evaluate", "--model", str(minilm_dir), "--task", "sst2", "--data", str(GLUE / "SST-2")]) != 0
    err = capsys.readouterr().err.strip()
    assert "holds no fine-tuned task head" in err and "finetune --init" in err and "\n" not in err


def test_convert_output_and_hf_directory_give_the_same_backbone(minilm_dir, tmp_path, capsys):
    assert main(["convert", "--from", "hf", str(minilm_dir), "--output", str(tmp_path / "minilm")]) == 0
    capsys.readouterr()
    converted, tokenizer = load_pretrained_backbone(tmp_path / "minilm")  # its backbone/ part
    direct, direct_tokenizer = load_pretrained_backbone(minilm_dir)
    assert tokenizer.vocabulary == direct_tokenizer.vocabulary and tokenizer.lower_case
    theirs = direct.canonical_weights()
    for name, variable in converted.canonical_weights().items():
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(theirs[name]), err_msg=name)


def test_evaluate_a_hugging_face_electra_classifier(tmp_path):
    config = hf_config(num_labels=2, id2label={0: "0", 1: "1"}, label2id={"0": 0, "1": 1})
    reference = make_hf(transformers.ElectraForSequenceClassification, config, seed=4)
    directory = save_hf(reference, tmp_path / "hf_sst2")
    result = evaluate(directory, "sst2", str(GLUE / "SST-2"), max_examples=32)
    model, _ = load_finetuned(directory, "sst2")
    assert model.head == "huggingface" and model.label_names == ["0", "1"]
    # The same examples (same subsample), scored by transformers.
    examples = {e.guid: e for e in read_glue("sst2", GLUE / "SST-2", "dev")}
    chosen = subsample(list(examples.values()), 32, 0)
    tokenizer = transformers.BertTokenizer(vocab=str(VOCAB_UNCASED), do_lower_case=True)
    batch = tokenizer([e.text_a for e in chosen], padding="max_length", truncation=True,
                      max_length=model.preprocessor.seq_length, return_tensors="pt")
    with torch.no_grad():
        predicted = reference(**batch).logits.argmax(-1).numpy()
    accuracy = float(np.mean([str(p) == e.label for p, e in zip(predicted, chosen)]))
    assert result["scores"]["accuracy"] == pytest.approx(accuracy)
