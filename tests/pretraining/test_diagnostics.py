"""Held-out evaluation and the collapse signals (token cosine, attention entropy) of `pretrain`."""

from __future__ import annotations

import json

import numpy as np
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from keras_electra.cli import main
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.pretraining.diagnostics import collapse_signals
from tests.conftest import NOVELS, VOCAB_UNCASED


def _backbone(**kwargs) -> ElectraBackbone:
    return ElectraBackbone(vocab_size=50, embedding_size=16, hidden_size=16, num_layers=2, num_heads=2,
                           intermediate_size=32, max_position_embeddings=32, **kwargs)


def _batch(length: int = 12) -> dict:
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 50, size=(2, 16)).astype("int32")
    mask = np.zeros((2, 16), "int32")
    mask[0, :length], mask[1, :16] = 1, 1
    return {"token_ids": ids, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def test_collapse_signals_measure_uniform_attention_and_identical_vectors():
    backbone = _backbone()
    signals = collapse_signals(backbone, [_batch()])
    assert len(signals["attention_entropy"]) == 2
    # Random init: near-uniform attention (entropy close to its maximum), distinct token vectors.
    assert all(0.9 < e <= 1.0 + 1e-6 for e in signals["attention_entropy"])
    assert -0.5 < signals["token_cosine"] < 0.9
    # Collapse: zero the final LayerNorm's gain: every token vector becomes the same bias vector.
    norm = backbone.transformer_layers[-1].output_layer_norm
    norm.gamma.assign(np.zeros(norm.gamma.shape, "float32"))
    norm.beta.assign(np.ones(norm.beta.shape, "float32"))
    assert collapse_signals(backbone, [_batch()])["token_cosine"] == pytest.approx(1.0, abs=1e-5)
    # Sharp attention: large query/key weights push the entropy far below its maximum.
    attention = backbone.transformer_layers[0].attention
    for dense in (attention.query, attention.key):
        dense.kernel.assign(np.asarray(dense.kernel) * 60)
    assert collapse_signals(backbone, [_batch()])["attention_entropy"][0] < 0.7


def test_pretrain_evaluates_on_held_out_novels_and_logs_the_curve(tmp_path, capsys):
    output = tmp_path / "run"
    held_out = NOVELS / "Doyle_Hound_1902.txt"
    train = tmp_path / "corpus"
    train.mkdir()
    for name in ("Doyle_Hound_1902.txt", "Burnett_Lord_1886.txt"):
        (train / name).symlink_to(NOVELS / name)
    code = main(["pretrain", "--preset", "tiny", "--corpus", str(train), "--eval-corpus", str(held_out),
                 "--eval-every", "2", "--vocab", str(VOCAB_UNCASED), "--steps", "4", "--batch-size", "4",
                 "--seq-length", "32", "--eval-batches", "1", "--output", str(output)])
    assert code == 0
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["eval_corpus"] == [str(held_out)]
    assert [point["step"] for point in metrics["heldout_curve"]] == [0, 2, 4]
    first, last = metrics["heldout_curve"][0], metrics["heldout_curve"][-1]
    assert {k: v for k, v in first.items() if k != "step"} == metrics["before"]
    assert {k: v for k, v in last.items() if k != "step"} == metrics["after"]
    assert first["gen_accuracy"] < 0.05  # an untrained generator almost never predicts the masked token
    assert all(len(point["attention_entropy"]) == 2 for point in metrics["heldout_curve"])
    events = EventAccumulator(str(next((output / "logs" / "heldout").glob("events*")))).Reload()
    tags = set(events.Tags()["tensors"]) | set(events.Tags()["scalars"])
    assert {"disc_auc", "token_cosine", "attention_entropy/layer_0", "gen_accuracy"} <= tags
    # The held-out novel is the only file that the evaluation reads; training never sees it.
    config = json.loads((output / "run_config.json").read_text())
    assert config["eval_sources"] == [str(held_out)]


def test_eval_corpus_that_holds_out_everything_is_one_clear_line(tmp_path, capsys):
    held_out = str(NOVELS / "Doyle_Hound_1902.txt")
    code = main(["pretrain", "--corpus", held_out, "--eval-corpus", held_out, "--vocab", str(VOCAB_UNCASED),
                 "--steps", "2", "--output", str(tmp_path / "run")])
    assert code != 0
    assert "--eval-corpus holds out every training file" in capsys.readouterr().err
