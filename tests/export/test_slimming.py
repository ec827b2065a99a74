"""Drop the top layers, quantise, measure: the slimmed model computes exactly the bottom layers."""

from __future__ import annotations

import numpy as np
import pytest
import tensorflow as tf

from tests.export.conftest import SST2


def test_slim_model_keeps_the_bottom_layers(clf_model, sst2_dev_inputs):
    from keras_electra.export.common import slim_model
    from keras_electra.layers.transformer import attention_bias_from_padding_mask

    model, _ = clf_model
    slim = slim_model(model, 1)
    assert slim.backbone.num_layers == 1 and model.backbone.num_layers == 2
    inputs, keras_logits, _ = sst2_dev_inputs
    x = {k: tf.constant(v[:16]) for k, v in inputs.items()}
    # The same computation by hand from the original model's layers: embeddings, layer 0, head.
    bb = model.backbone
    hidden = bb.embeddings(x["token_ids"], x["segment_ids"])
    hidden = bb.embeddings_project(hidden)
    hidden = bb.transformer_layers[0](hidden, attention_bias_from_padding_mask(x["padding_mask"]))
    expected = model.classifier(hidden[:, 0])
    got = slim.predict({k: v.numpy() for k, v in x.items()}, verbose=0)
    np.testing.assert_allclose(got, expected.numpy(), atol=1e-5)
    assert np.abs(got - keras_logits[:16]).max() > 1e-3  # the dropped layer did matter
    assert slim_model(model, 2) is model


@pytest.mark.slow
def test_slimming_table_rows(sst2_dir):
    from keras_electra.export.slimming import format_table, slimming_table

    rows = slimming_table(sst2_dir, SST2, keep_layers=[1], quantize=["dynamic"], max_examples=120, repeats=10)
    assert len(rows) == 1
    row = rows[0]
    assert row["keep_layers"] == 1 and row["quantize"] == "dynamic" and row["metric"] == "accuracy"
    assert 0.3 < row["score"] < 1.0 and row["latency_ms"] > 0 and 0 < row["bytes"] < 3_000_000
    table = format_table(rows)
    assert table.splitlines()[2].startswith("| 1 | dynamic |")


@pytest.mark.slow
def test_full_slimming_table(sst2_dir, sst2_dev_inputs):
    """All variants on the whole of SST-2 dev; the unslimmed float model scores exactly as Keras."""
    from keras_electra.export.slimming import format_table, slimming_table

    _, keras_logits, gold = sst2_dev_inputs
    rows = slimming_table(sst2_dir, SST2, keep_layers=[2, 1], quantize=["none", "float16", "dynamic", "int8"])
    print("\n" + format_table(rows))
    by = {(r["keep_layers"], r["quantize"]): r for r in rows}
    assert by[(2, "none")]["score"] == pytest.approx(float((keras_logits.argmax(-1) == gold).mean()))
    for q in ("none", "float16", "dynamic", "int8"):
        assert by[(1, q)]["bytes"] < by[(2, q)]["bytes"]
    assert by[(2, "int8")]["bytes"] <= 0.3 * by[(2, "none")]["bytes"]
