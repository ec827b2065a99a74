"""The quickstart: the replaced-token demo's ranking (fast, tiny model), argument checks, and the
whole five-step run on MiniLM, Python's text and SST-2 (slow: minutes)."""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest

from keras_electra.cli import main
from keras_electra.pretraining.quickstart import (
    DEMO_SWAPS,
    show_replaced_token_detection,
    swap_word,
    swapped_token_rank,
)
from tests.conftest import GLUE


def _suspicious_words_model(tokenizer, words: dict[str, float]) -> keras.Model:
    """A real Keras model whose RTD logit is a per-vocabulary-entry constant: high for `words`."""
    token_ids = keras.Input((None,), dtype="int32", name="token_ids")
    segment_ids = keras.Input((None,), dtype="int32", name="segment_ids")
    padding_mask = keras.Input((None,), dtype="int32", name="padding_mask")
    table = np.full((tokenizer.vocabulary_size, 1), -5.0, "float32")
    for word, logit in words.items():
        for piece in tokenizer.tokenize([word]).to_list()[0]:
            table[piece] = logit
    embedding = keras.layers.Embedding(tokenizer.vocabulary_size, 1, embeddings_initializer="zeros")
    logits = keras.layers.Reshape((-1,))(embedding(token_ids))
    model = keras.Model({"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding_mask}, logits)
    embedding.embeddings.assign(table)
    return model


def test_demo_marks_and_ranks_the_swapped_token(uncased_tokenizer, capsys):
    replacements = {replacement: 4.0 for _, _, replacement in DEMO_SWAPS}
    replacements["banana"] = -4.0  # sentence 2: its swapped word looks real ...
    replacements["dark"] = 2.0  # ... and two of its own words look more suspicious
    replacements["room"] = 1.0
    model = _suspicious_words_model(uncased_tokenizer, replacements)
    ranks = show_replaced_token_detection(model, uncased_tokenizer, seq_length=32)
    out = capsys.readouterr().out
    assert ranks == [1, 3, 1, 1, 1]
    assert "*purple* 0.98" in out and "*banana* 0.02" in out and "dark 0.88" in out
    assert "'door' -> 'banana': the swapped token ranks 3 of 12" in out


def test_swap_and_rank_of_a_word_split_into_pieces(uncased_tokenizer):
    corrupted, index = swap_word("the cat sat on the mat .", "mat", "xylophonist")
    assert corrupted == "the cat sat on the xylophonist ." and index == 5
    pieces = [uncased_tokenizer.id_to_token(i) for i in uncased_tokenizer.tokenize(["xylophonist"]).to_list()[0]]
    assert len(pieces) > 1
    tokens = [("[CLS]", 0.9), ("the", 0.1), ("cat", 0.5), ("sat", 0.2), ("on", 0.1), ("the", 0.1)]
    tokens += [(p, 0.3 if i == 0 else 0.6) for i, p in enumerate(pieces)] + [(".", 0.1), ("[SEP]", 0.99)]
    # The word counts with its most suspicious piece (0.6), above "cat" (0.5); [CLS]/[SEP] are not ranked.
    assert swapped_token_rank(tokens, pieces, index, corrupted.split(), uncased_tokenizer) == (6, 1)
    with pytest.raises(Exception, match="has no word"):
        swap_word("the cat sat", "dog", "cow")


@pytest.mark.parametrize("args, message", [
    (["--steps", "0"], "must be positive"),
    (["--seq-length", "16"], "--seq-length must be at least 32"),
    (["--sst2", "/nonexistent/SST-2"], "SST-2 not found at /nonexistent/SST-2"),
])
def test_bad_arguments_are_one_line(tmp_path, capsys, args, message):
    assert main(["quickstart", "--output", str(tmp_path / "qs"), *args]) != 0
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


@pytest.mark.slow
def test_quickstart_end_to_end(tmp_path, capsys):
    """The full quickstart with its defaults: what README's "What the quickstart does" promises."""
    output = tmp_path / "qs"
    assert main(["quickstart", "--output", str(output), "--sst2", str(GLUE / "SST-2")]) == 0
    out = capsys.readouterr().out
    for section in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "discriminator AUC", "generator MLM accuracy",
                    "SavedModel", "int8 TFLite"):
        assert section in out
    summary = json.loads((output / "quickstart.json").read_text())
    assert summary["rtd_ranks"].count(1) >= 4
    assert summary["sst2_dev_accuracy"] > 0.80
    pretraining = summary["pretraining"]
    assert pretraining["after"]["disc_auc"] > pretraining["before"]["disc_auc"]
    assert {p["label"] for p in summary["predictions"].values()} == {"positive"}
    assert summary["timings_s"]["total"] < 900
