"""Fixtures for the task tests: real vocabularies, a one-layer tiny backbone, real data paths."""

from __future__ import annotations

import pytest

from tests.conftest import SHARED_DATA, VOCAB_CHINESE, VOCAB_UNCASED

GLUE = SHARED_DATA / "glue"


@pytest.fixture(scope="session")
def en_tokenizer():
    from keras_electra.data.tokenizer import ElectraTokenizer

    return ElectraTokenizer(VOCAB_UNCASED, lower_case=True)


@pytest.fixture(scope="session")
def zh_tokenizer():
    from keras_electra.data.tokenizer import ElectraTokenizer

    return ElectraTokenizer(VOCAB_CHINESE, lower_case=True)


def tiny_backbone(vocab_size: int, seed: int = 0, **overrides):
    """A one-layer `tiny` ELECTRA backbone (the size the CPU tests can afford)."""
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.models.backbone import ElectraBackbone

    keras.utils.set_random_seed(seed)
    config = ElectraConfig.from_preset("tiny", **{"vocab_size": vocab_size, "num_layers": 1, **overrides})
    return ElectraBackbone.from_electra_config(config, name="backbone")
