"""The one JSON reader (`keras_electra.utils.io.read_json`): the converters get it with CheckpointError
and the object requirement, the rest with DataError; every failure is one line naming the file."""

from __future__ import annotations

import pytest

from keras_electra.config import ConfigError, ElectraConfig
from keras_electra.convert import read_checkpoint
from keras_electra.errors import CheckpointError, DataError
from keras_electra.utils.io import read_json


def test_a_truncated_or_wrong_config_json_of_a_checkpoint_is_a_checkpoint_error(tmp_path):
    config = tmp_path / "config.json"
    config.write_text('{"model_type": "electra", "hidden_size": 2')
    with pytest.raises(CheckpointError, match=r"config\.json is not valid JSON \(.*\); it may be truncated"):
        read_checkpoint(tmp_path)
    config.write_text('["electra"]')
    with pytest.raises(CheckpointError, match=r"config\.json: expected a JSON object, found list"):
        read_checkpoint(tmp_path)


def test_the_reader_defaults_to_data_error_and_any_json_value(tmp_path):
    path = tmp_path / "values.json"
    path.write_text("[1, 2]")
    assert read_json(path) == [1, 2]
    with pytest.raises(DataError, match="cannot read .*missing.json"):
        read_json(tmp_path / "missing.json")
    path.write_text("{")
    with pytest.raises(ConfigError, match=r"values\.json is not valid JSON"):
        ElectraConfig.from_json(path)
