"""AdaLoRA and prefix tuning on a one-layer tiny model and real SST-2 batches: training lowers the loss,
the rank budget is met, the orthogonality penalty falls, saving merges/folds with identical outputs,
the folded prefix model exports with parity, and what has no equivalent is refused in one line."""

from __future__ import annotations

import json

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.errors import ElectraError
from keras_electra.optimization import create_optimizer
from keras_electra.saving import load_keras_file
from keras_electra.tasks.base import MODEL_KEYS
from keras_electra.tasks.outputs import save_task_model
from keras_electra.tasks.peft import (
    AdaLoraOptions,
    PrefixOptions,
    adalora_ranks,
    apply_peft,
    fold_prefix,
    model_for_saving,
    orthogonality_penalty,
    peft_callbacks,
    peft_optimizer_options,
    trainable_summary,
)
from keras_electra.tasks.registry import get_task
from tests.tasks.test_training import _batches_and_model, _loss

STEPS = 24
ADALORA = AdaLoraOptions(init_rank=6, target_rank=2, tinit=4, tfinal=6)
PREFIX = PrefixOptions(length=5, hidden=32)


def _train(method: str, tokenizer, **peft):
    """A tiny SST-2 classifier with `method`, trained STEPS steps on two real batches (as `finetune` does:
    the optimiser options and callbacks come from peft.py). Returns (model, batches, loss before/after, callbacks)."""
    spec, model, batches = _batches_and_model("sst2", tokenizer)
    apply_peft(model, method, **peft)
    compile_args = spec.runner.compile_args(model, {})
    before = _loss(model, compile_args["loss"], batches)
    model.compile(optimizer=create_optimizer(5e-3, STEPS, 0, weight_decay_rate=0.0, bias_correction=True,
                                             **peft_optimizer_options(model)),
                  jit_compile=False, **compile_args)
    data = [(x, y) for x, y in batches]
    stream = tf.data.Dataset.from_tensor_slices(list(range(len(batches)))).repeat().map(
        lambda i: tf.nest.map_structure(lambda *t: tf.stack(t)[i], *data))
    callbacks = peft_callbacks(model, STEPS)
    model.fit(stream, steps_per_epoch=STEPS, epochs=1, verbose=0, callbacks=callbacks)
    after = _loss(model, compile_args["loss"], batches)
    return spec, model, batches, (before, after), callbacks


def _inputs(batches):
    return {k: batches[0][0][k] for k in MODEL_KEYS}


def test_adalora_trains_prunes_to_the_budget_and_merges(en_tokenizer, tmp_path):
    spec, model, batches, (before, after), callbacks = _train("adalora", en_tokenizer, adalora=ADALORA)
    assert after < 0.9 * before, (before, after)  # frozen random tiny encoder, pruned to 2 ranks a matrix
    trainable = {v.path for v in model.trainable_variables}
    assert all(p.startswith("classifier/") or p.rsplit("/", 1)[-1] in ("adalora_p", "adalora_e", "adalora_q")
               for p in trainable)
    assert len(trainable) == 2 + 3 * 6  # head + P, Λ, Q of Wq, Wk, Wv, Wo, Wf1, Wf2
    # The budget fell along the cubic schedule to target_rank × 6 matrices, and the ranks left match it.
    (allocator,) = callbacks
    budgets = [b for _, b in allocator.budgets]
    assert budgets == sorted(budgets, reverse=True) and budgets[-1] == 2 * 6 and budgets[0] < 6 * 6
    assert allocator.budgets[0][0] == ADALORA.tinit + 1  # nothing is pruned during the warm-up
    ranks = adalora_ranks(model)
    assert sum(ranks.values()) == 12 and len(set(ranks.values())) > 1, ranks  # allocated unevenly
    # Saved as plain kernels (W + P·Λ·Q merged) with identical outputs after reloading.
    x = _inputs(batches)
    expected = np.asarray(model(x))
    save_task_model(model, en_tokenizer, tmp_path / "model", spec)
    restored = load_keras_file(tmp_path / "model" / "model.keras")
    assert not any("adalora" in v.path for v in restored.weights)
    np.testing.assert_allclose(np.asarray(restored(x)), expected, atol=1e-5)


def test_adalora_orthogonality_regulariser_falls(en_tokenizer):
    options = AdaLoraOptions(init_rank=6, target_rank=6, orth_reg_weight=5.0)  # no pruning: the penalty alone
    spec, model, batches = _batches_and_model("sst2", en_tokenizer)
    apply_peft(model, "adalora", adalora=options)
    start = orthogonality_penalty(model)
    y_pred = model(_inputs(batches), training=True)
    assert len(model.losses) == 6  # one term per adapted matrix, added while training only
    np.testing.assert_allclose(float(sum(model.losses)), options.orth_reg_weight * start, rtol=1e-5)
    model(_inputs(batches), training=False)
    assert not model.losses
    del y_pred
    model.compile(optimizer=create_optimizer(5e-3, 12, 0, weight_decay_rate=0.0, bias_correction=True,
                                             **peft_optimizer_options(model)),
                  jit_compile=False, **spec.runner.compile_args(model, {}))
    model.fit(batches[0][0], batches[0][1], batch_size=16, epochs=12, verbose=0,
              callbacks=peft_callbacks(model, 12))
    assert orthogonality_penalty(model) < 0.75 * start


def test_adalora_options_are_checked(en_tokenizer):
    _, model, _ = _batches_and_model("sst2", en_tokenizer)
    with pytest.raises(ElectraError, match="target-rank"):
        apply_peft(model, "adalora", adalora=AdaLoraOptions(init_rank=4, target_rank=8))
    _, model, _ = _batches_and_model("sst2", en_tokenizer)
    apply_peft(model, "adalora", adalora=AdaLoraOptions(tinit=10, tfinal=10))
    with pytest.raises(ElectraError, match="below the 20 training steps"):
        peft_callbacks(model, 20)


def test_prefix_trains_folds_exactly_and_saves(en_tokenizer, tmp_path):
    spec, model, batches, (before, after), _ = _train("prefix", en_tokenizer, prefix=PREFIX)
    assert after < 0.9 * before, (before, after)  # frozen random tiny encoder: only the prefixes and head learn
    assert {v.path for v in model.trainable_variables} == {
        "classifier/kernel", "classifier/bias", "prefix_encoder/embeddings", "prefix_encoder/mlp_hidden/kernel",
        "prefix_encoder/mlp_hidden/bias", "prefix_encoder/mlp_output/kernel", "prefix_encoder/mlp_output/bias"}
    assert trainable_summary(model)["trainable_parameters"] == 2 * 129 + 5 * 128 + 128 * 32 + 32 + 32 * 256 + 256
    x = _inputs(batches)
    with_mlp = np.asarray(model(x))
    folded = fold_prefix(model)
    assert not any("prefix_encoder" in v.path for v in folded.weights)
    assert folded.backbone.prefix_length == 5
    np.testing.assert_allclose(np.asarray(folded(x)), with_mlp, atol=1e-6)
    assert model_for_saving(model).backbone.prefix_length == 5
    save_task_model(model, en_tokenizer, tmp_path / "model", spec)
    restored = load_keras_file(tmp_path / "model" / "model.keras")
    np.testing.assert_allclose(np.asarray(restored(x)), with_mlp, atol=1e-6)


def test_prefix_is_always_attended_and_padding_never(en_tokenizer):
    """The bias gets P zeros in front, where the prefixes are: the same sentence packed to 32 or 48
    tokens (more padding) gives the same logits, and the prefixes do change them."""
    spec, model, _ = _batches_and_model("sst2", en_tokenizer)
    text = tf.constant(["a gripping , funny and moving film ."])
    plain = np.asarray(model(model.preprocessor(text)))
    apply_peft(model, "prefix", prefix=PREFIX)
    model = fold_prefix(model)
    short = np.asarray(model(model.preprocessor(text)))
    long = spec.runner.build_model(model.backbone, en_tokenizer, 48, spec.labels, {})
    long.classifier.set_weights(model.classifier.get_weights())
    np.testing.assert_allclose(np.asarray(long(long.preprocessor(text))), short, atol=1e-5)
    assert np.abs(short - plain).max() > 1e-3


def test_prefix_model_exports_with_parity_and_refuses_hugging_face(en_tokenizer, tmp_path):
    from keras_electra.convert.huggingface import save_huggingface
    from keras_electra.export.saved_model import export_saved_model
    from keras_electra.export.tflite import export_tflite, load_interpreter, run_signature

    spec, model, batches = _batches_and_model("sst2", en_tokenizer)
    apply_peft(model, "prefix", prefix=PREFIX)
    for v in model.prefix_encoder.weights:  # a trained-looking MLP, so the prefixes matter
        v.assign(np.random.default_rng(0).normal(0, 0.3, v.shape).astype("float32"))
    save_task_model(model, en_tokenizer, tmp_path / "model", spec)
    x = {k: np.asarray(v) for k, v in _inputs(batches).items()}
    expected = np.asarray(model(x))
    served = export_saved_model(tmp_path / "model", tmp_path / "serving")
    loaded = tf.saved_model.load(str(served))
    logits = loaded.signatures["token_ids"](**{k: tf.constant(v, tf.int32) for k, v in x.items()})["logits"]
    assert np.abs(logits.numpy() - expected).max() <= 1e-4
    lite = export_tflite(served, tmp_path / "model.tflite")
    logits = run_signature(load_interpreter(lite), x, "token_ids", batch_size=16)["logits"]
    assert np.abs(logits - expected).max() <= 1e-4
    with pytest.raises(ElectraError, match="prefix tuning"):
        save_huggingface(load_keras_file(tmp_path / "model" / "model.keras"), tmp_path / "hf")


def test_slimming_keeps_the_prefixes_of_the_kept_layers(en_tokenizer):
    from keras_electra.export.common import slim_model
    from tests.tasks.conftest import tiny_backbone

    spec = get_task("sst2")
    model = spec.runner.build_model(tiny_backbone(en_tokenizer.vocabulary_size, num_layers=2), en_tokenizer, 32,
                                    spec.labels, {})
    apply_peft(model, "prefix", prefix=PREFIX)
    model = fold_prefix(model)
    slim = slim_model(model, 1)
    assert slim.backbone.num_layers == 1 and slim.backbone.prefix_length == 5
    kept, source = slim.backbone.transformer_layers[0].attention, model.backbone.transformer_layers[0].attention
    np.testing.assert_array_equal(np.asarray(kept.prefix_value), np.asarray(source.prefix_value))
    assert np.abs(np.asarray(kept.prefix_key)).max() > 0


@pytest.mark.parametrize("method", ["adalora", "prefix"])
def test_finetune_cli_trains_saves_and_reports_parameters(method, tmp_path):
    from keras_electra.cli import main
    from tests.conftest import GLUE, VOCAB_UNCASED

    output = tmp_path / method
    rc = main([
        "finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", "random", "--preset", "tiny",
        "--vocab", str(VOCAB_UNCASED), "--max-train-examples", "64", "--max-eval-examples", "32", "--epochs", "1",
        "--seq-length", "32", "--batch-size", "16", "--no-jit", "--output", str(output), "--quiet", "--peft", method,
        "--adalora-init-rank", "4", "--adalora-target-rank", "2", "--prefix-length", "4", "--prefix-hidden", "16",
    ])
    assert rc == 0
    results = json.loads((output / "results.json").read_text())
    run = results["runs"][0]
    assert 0 < run["trainable_parameters"] < 0.05 * run["total_parameters"]
    assert results["config"]["peft"] == method
    restored = load_keras_file(output / "model.keras")
    assert not any("adalora" in v.path or "prefix_encoder" in v.path for v in restored.weights)
    assert restored.backbone.prefix_length == (4 if method == "prefix" else None)
