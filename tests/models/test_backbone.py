"""The network itself: config rules, numerics, padding mask, the canonical name table."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_electra.config import ConfigError, ElectraConfig, max_predictions_for
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.discriminator import ElectraDiscriminator
from keras_electra.models.generator import ElectraGenerator


def test_config_rejects_unknown_keys_and_bad_values(tmp_path):
    with pytest.raises(ConfigError, match="hidden_sise"):
        ElectraConfig.from_dict({"hidden_sise": 12})
    with pytest.raises(ConfigError, match="divisible"):
        ElectraConfig(hidden_size=100, num_heads=3)
    with pytest.raises(ConfigError, match="preset"):
        ElectraConfig.from_preset("huge")
    config = ElectraConfig.from_preset("base")
    config.to_json(tmp_path / "c.json")
    assert ElectraConfig.from_json(tmp_path / "c.json") == config
    assert max_predictions_for(128, 0.15) == 19 and max_predictions_for(512, 0.25) == 130


def _inputs(ids, lengths):
    ids = np.asarray(ids, "int32")
    mask = (np.arange(ids.shape[1])[None, :] < np.asarray(lengths)[:, None]).astype("int32")
    return {"token_ids": ids * mask, "segment_ids": np.zeros_like(ids), "padding_mask": mask}


def test_padding_does_not_change_real_positions():
    keras.utils.set_random_seed(0)
    config = ElectraConfig.from_preset("tiny", vocab_size=50)
    backbone = ElectraBackbone.from_electra_config(config)
    rng = np.random.default_rng(0)
    ids = rng.integers(5, 50, (2, 12))
    short = backbone.predict(_inputs(ids[:, :7], [7, 5]), verbose=0)
    long = backbone.predict(_inputs(ids, [7, 5]), verbose=0)
    np.testing.assert_allclose(long[0, :7], short[0, :7], atol=1e-5)
    np.testing.assert_allclose(long[1, :5], short[1, :5], atol=1e-5)


def test_numerics_follow_the_official_code():
    keras.utils.set_random_seed(0)
    config = ElectraConfig.from_preset("tiny", vocab_size=4000)
    backbone = ElectraBackbone.from_electra_config(config)
    block = backbone.transformer_layers[0]
    assert block.attention_layer_norm.epsilon == 1e-12
    assert backbone.embeddings.layer_norm.epsilon == 1e-12
    x = np.linspace(-3, 3, 13).astype("float32")
    from scipy.special import erf

    exact = 0.5 * x * (1 + erf(x / np.sqrt(2)))
    np.testing.assert_allclose(np.asarray(block._activation(x)), exact, atol=1e-6)
    words = backbone.embeddings.word_embeddings.numpy()
    assert np.abs(words).max() <= 0.04 + 1e-6  # truncated at two standard deviations
    assert words.std() == pytest.approx(0.02 * 0.88, rel=0.05)  # std of a 2σ-truncated normal
    assert backbone.embeddings_project is not None  # E=64 != H=128
    same = ElectraBackbone.from_electra_config(config.replace(embedding_size=128))
    assert same.embeddings_project is None


def test_canonical_names_cover_every_weight_once():
    config = ElectraConfig.from_preset("tiny", vocab_size=100)
    disc = ElectraDiscriminator.from_electra_config(config)
    gen = ElectraGenerator.from_electra_config(config, embeddings=disc.backbone.embeddings)
    for model in (disc, gen):
        names = model.canonical_weights()
        assert len({id(v) for v in names.values()}) == len(names) == len(model.weights) - _seed_states(model)
    assert "electra/embeddings_project/kernel" in disc.canonical_weights()
    assert "generator/embeddings_project/kernel" in gen.canonical_weights()
    assert gen.canonical_weights()["generator_predictions/output_bias"].shape == (100,)
    assert disc.canonical_weights()["discriminator_predictions/dense_1/kernel"].shape == (128, 1)
    hidden_gen = gen.canonical_weights()["generator/encoder/layer_1/attention/self/query/kernel"]
    assert hidden_gen.shape == (32, 32)


def _seed_states(model) -> int:
    return sum(1 for v in model.weights if "seed_generator" in v.path)
