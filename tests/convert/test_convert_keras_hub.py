"""keras-hub `ElectraBackbone` presets: a random preset saved to a local directory, loaded here."""

from __future__ import annotations

import pytest

from keras_electra.convert import from_pretrained, read_checkpoint, tokenizer_from_checkpoint
from keras_electra.errors import CheckpointError
from keras_electra.models.backbone import ElectraBackbone
from tests.convert.fixtures import keras_hub_preset, max_diff_at_tokens, real_batch

TOL = 1e-5


@pytest.fixture(scope="module")
def preset(tmp_path_factory):
    # keras-hub's converter builds uncased tokenizers without lowercase=True; reproduce that.
    return keras_hub_preset(tmp_path_factory.mktemp("keras_hub") / "preset", seed=0, lowercase=False)


@pytest.fixture(scope="module")
def batch():
    return real_batch(length=24)


def test_backbone_matches_keras_hub(preset, batch):
    kh, directory = preset
    ours, report = from_pretrained(directory, return_report=True)  # auto: the backbone
    assert isinstance(ours, ElectraBackbone) and ours.hidden_act == "gelu_approximate"
    assert sorted(report.ignored) == ["pooled_dense/bias", "pooled_dense/kernel"]
    assert len(report.loaded) == len(kh.weights) - 2
    theirs = kh(batch)["sequence_output"]
    assert max_diff_at_tokens(ours(batch), theirs, batch) <= TOL

    # Exact GELU (the original ELECTRA numerics) is one override away, and it does change outputs.
    exact = from_pretrained(directory, config={"hidden_act": "gelu"})
    assert exact.hidden_act == "gelu"
    assert max_diff_at_tokens(exact(batch), theirs, batch) > TOL


def test_presets_have_no_heads(preset):
    _, directory = preset
    for part in ("discriminator", "generator", "both"):
        with pytest.raises(CheckpointError, match="keras-hub presets carry no generator .MLM. head and no "
                                                  "discriminator .RTD. head"):
            from_pretrained(directory, part=part)


def test_tokenizer_casing_is_repaired_for_uncased_vocabularies(preset):
    _, directory = preset
    checkpoint = read_checkpoint(directory)
    tokenizer = tokenizer_from_checkpoint(checkpoint)
    assert tokenizer.vocabulary_size == 30522 and tokenizer.lower_case
    assert any("lowercase=false" in note for note in checkpoint.notes)
    assert tokenizer.tokenize(["Holmes"]).to_list() == tokenizer.tokenize(["holmes"]).to_list()


def test_wrong_format_named(preset):
    _, directory = preset
    with pytest.raises(CheckpointError, match=r"is not a Hugging Face directory .* it looks like a keras-hub preset "
                                              r"directory .*use --from keras-hub"):
        from_pretrained(directory, format="hf")
