"""`keras_electra.load_model` opens .keras files in a fresh process after a plain `import keras_electra`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from keras_electra.errors import CheckpointError
from keras_electra.saving import SERIALIZABLE_MODULES, load_model
from tests.conftest import REPO

pytestmark = pytest.mark.backend_sensitive  # also run under KERAS_BACKEND=jax in CI (tests/conftest.py)


def test_every_registering_module_is_listed():
    found = {
        ".".join(path.relative_to(REPO).with_suffix("").parts)
        for path in (REPO / "keras_electra").rglob("*.py")
        if "@keras.saving.register_keras_serializable" in path.read_text()
    }
    assert found == set(SERIALIZABLE_MODULES)


def test_load_model_in_a_fresh_process(tmp_path):
    code = (
        "import numpy as np, keras_electra\n"
        "m = keras_electra.load_model('saved_models/electra-tiny-novels/discriminator')\n"
        "x = {'token_ids': np.array([[101, 1996, 2158, 102]]), 'segment_ids': np.zeros((1, 4), 'int32'),\n"
        "     'padding_mask': np.ones((1, 4), 'int32')}\n"
        "print(type(m).__name__, m(x).shape)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "ElectraDiscriminator (1, 4)" in out.stdout


def test_missing_model_is_one_clear_error(tmp_path):
    with pytest.raises(CheckpointError, match="no such model file"):
        load_model(tmp_path)
