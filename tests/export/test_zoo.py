"""saved_models/: every shipped model loads, matches its card, and is small enough to commit."""

from __future__ import annotations

import numpy as np
import pytest

from keras_electra.export.zoo import CARD, MAX_FILE_BYTES, read_card, shipped_models, slice_score
from tests.conftest import REPO, SHARED_DATA

ZOO = REPO / "saved_models"
MODELS = shipped_models(ZOO)


def test_every_file_is_small_enough_to_commit():
    large = [f"{p.relative_to(REPO)} ({p.stat().st_size:,} bytes)" for p in ZOO.rglob("*")
             if p.is_file() and p.stat().st_size > MAX_FILE_BYTES]
    assert not large


@pytest.mark.parametrize("directory", MODELS, ids=[p.name for p in MODELS])
def test_shipped_model_matches_its_card(directory):
    card = read_card(directory)
    assert (directory / "README.md").is_file() or card["kind"] == "pretraining"
    if card["kind"] == "task":
        assert (directory / card["file"]).stat().st_size == card["bytes"]
        if card.get("source_weights"):  # weights derived from a released checkpoint carry its licence
            assert all((directory / name).is_file() for name in card["source_weights"]["license_files"])
        score = slice_score(directory, SHARED_DATA)
        assert score["rows"] == card["slice"]["rows"]
        # One example's flip is allowed: another CPU's kernels may round a borderline logit the other way.
        assert score["accuracy"] == pytest.approx(card["slice"]["accuracy"], abs=1.01 / score["rows"])
        return
    assert card["kind"] == "pretraining", f"{directory / CARD}: unknown kind {card['kind']!r}"
    import keras_electra
    from keras_electra.utils.io import read_json

    assert read_json(directory / "metrics.json")["after"]["disc_auc"] == pytest.approx(card["heldout"]["disc_auc"])
    x = {"token_ids": np.array([[101, 1996, 2158, 102]]), "segment_ids": np.zeros((1, 4), "int32"),
         "padding_mask": np.ones((1, 4), "int32")}
    for part in ("discriminator", "generator"):
        out = np.asarray(keras_electra.load_model(directory / part)(x))
        assert out.shape[:2] == (1, 4) and np.isfinite(out).all()
