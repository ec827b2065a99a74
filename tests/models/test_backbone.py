"""The network itself: config rules, numerics, padding mask, the canonical name table."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_electra.config import ConfigError, ElectraConfig, max_predictions_for
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.models.discriminator import ElectraDiscriminator
from keras_electra.models.generator import ElectraGenerator

pytestmark = pytest.mark.backend_sensitive  # also run under KERAS_BACKEND=jax in CI (tests/conftest.py)


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


def test_layers_without_an_official_initialiser_are_glorot_by_default(tmp_path):
    """Officially embeddings_project, the RTD output dense_1 and the task heads are `tf.layers.dense`
    without an initialiser (glorot_uniform); truncated normal(0.02) is the named option."""
    from keras_electra.tasks.classifier import ElectraClassifier

    keras.utils.set_random_seed(0)
    config = ElectraConfig.from_preset("tiny", vocab_size=50, hidden_size=256, num_heads=4)
    assert config.default_initializer == "glorot_uniform"
    for choice in ("glorot_uniform", "truncated_normal"):
        model = ElectraDiscriminator.from_electra_config(config.replace(default_initializer=choice))
        classifier = ElectraClassifier(model.backbone, num_classes=2)
        kernels = {"projection": model.backbone.embeddings_project.kernel, "rtd": model.rtd_head.dense_1.kernel,
                   "head": classifier.classifier.kernel}
        for name, kernel in kernels.items():
            values = np.asarray(kernel.numpy())
            fan_in, fan_out = values.shape
            limit = np.sqrt(6 / (fan_in + fan_out))
            if choice == "glorot_uniform":
                assert np.abs(values).max() <= limit and np.abs(values).max() > 0.8 * limit, name
            else:
                assert np.abs(values).max() <= 0.04 + 1e-6, name
        values = model.backbone.embeddings_project.kernel.numpy()
        if choice == "truncated_normal":
            assert values.std() == pytest.approx(0.02 * 0.88, rel=0.05)
        else:
            assert values.std() == pytest.approx(np.sqrt(2 / (64 + 256)), rel=0.05)
        # The RTD hidden dense and the encoder stay truncated normal(0.02) either way.
        assert np.abs(model.rtd_head.dense.kernel.numpy()).max() <= 0.04 + 1e-6

    # The field is serialised; a config saved before it existed loads with the official value.
    backbone = ElectraBackbone.from_electra_config(config.replace(default_initializer="truncated_normal"))
    assert backbone.get_config()["default_initializer"] == "truncated_normal"
    old = backbone.get_config()
    del old["default_initializer"]
    assert ElectraBackbone.from_config(old).default_initializer == "glorot_uniform"
    model = ElectraDiscriminator(backbone)
    model.save(tmp_path / "d.keras")
    restored = keras.saving.load_model(tmp_path / "d.keras")
    assert restored.backbone.default_initializer == "truncated_normal"
    assert restored.rtd_head.output_initializer == "truncated_normal"
    with pytest.raises(ConfigError, match="default_initializer"):
        config.replace(default_initializer="zeros")


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
