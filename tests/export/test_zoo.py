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


def test_shipped_files_record_no_build_machine_path(tmp_path):
    """`zoo --update` drops a `.tflite`'s export source (the training directory on the machine that built it),
    and replacing a metadata entry leaves no stale copy of the old bytes in the file."""
    from keras_electra.export.tflite import read_tflite_info
    from keras_electra.export.zoo import forget_source

    shipped = [directory / read_card(directory)["file"] for directory in MODELS
               if read_card(directory)["kind"] == "task" and read_card(directory)["file"].endswith(".tflite")]
    assert shipped
    for path in shipped:
        assert read_tflite_info(path)[0].source is None, path
    # Put a source back into a copy, then drop it again: the path's bytes are gone from the file.
    import json

    from keras_electra.export.common import METADATA_NAME
    from keras_electra.export.tflite import add_metadata, read_metadata

    content = shipped[0].read_bytes()
    info = json.loads(read_metadata(content)[METADATA_NAME])
    info["source"] = "/home/builder/secret-run-directory"
    copy = tmp_path / "model.tflite"
    copy.write_bytes(add_metadata(content, {METADATA_NAME: json.dumps(info).encode()}))
    assert b"secret-run-directory" in copy.read_bytes()
    forget_source(copy)
    assert b"secret-run-directory" not in copy.read_bytes()
    assert read_tflite_info(copy)[0].source is None
