"""The official optimiser: schedule, decoupled weight decay and its exclusions, bias correction, LLRD."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_electra.config import ElectraConfig
from keras_electra.models.discriminator import ElectraDiscriminator
from keras_electra.optimization import (
    ElectraAdamW,
    WarmupLinearDecay,
    create_optimizer,
    layer_depth,
    layerwise_lr_multipliers,
)


def test_schedule_is_linear_decay_times_linear_warmup():
    schedule = WarmupLinearDecay(1e-3, total_steps=100, warmup_steps=10)
    values = [float(schedule(step)) for step in (0, 5, 10, 50, 100, 150)]
    expected = [0.0, 1e-3 * 0.95 * 0.5, 1e-3 * 0.9, 1e-3 * 0.5, 0.0, 0.0]
    np.testing.assert_allclose(values, expected, rtol=1e-6, atol=1e-12)
    restored = keras.saving.deserialize_keras_object(keras.saving.serialize_keras_object(schedule))
    assert float(restored(37)) == pytest.approx(float(schedule(37)))


def _one_step(optimizer, names=("dense/kernel", "LayerNorm/gamma", "dense/bias")):
    variables = [keras.Variable(np.full((3,), 2.0, "float32"), name=n.split("/")[-1]) for n in names]
    optimizer.build(variables)
    grads = [np.full((3,), 0.5, "float32") for _ in variables]
    optimizer.apply_gradients(zip(grads, variables))
    return [float(v.numpy()[0]) for v in variables]


def test_weight_decay_is_decoupled_and_skips_layernorm_and_bias():
    lr, wd = 0.1, 0.01
    kernel, gamma, bias = _one_step(ElectraAdamW(lr, weight_decay_rate=wd, global_clipnorm=None,
                                                 bias_correction=True))
    adam_update = 1.0  # m_hat / sqrt(v_hat) for a constant gradient, bias-corrected, ≈ 1
    assert gamma == pytest.approx(2.0 - lr * adam_update, abs=1e-5)
    assert bias == pytest.approx(gamma)
    assert kernel == pytest.approx(2.0 - lr * (adam_update + wd * 2.0), abs=1e-5)


def test_without_bias_correction_by_default_like_the_official_optimizer():
    lr = 0.1
    assert create_optimizer(0.1, 100, 0).bias_correction is False
    (kernel,) = _one_step(ElectraAdamW(lr, weight_decay_rate=0.0, global_clipnorm=None), names=("dense/kernel",))
    m, v = 0.1 * 0.5, 0.001 * 0.25  # first-step moments with beta1 0.9, beta2 0.999
    assert kernel == pytest.approx(2.0 - lr * m / (np.sqrt(v) + 1e-6), rel=1e-5)


def test_global_norm_clipping_at_one():
    optimizer = create_optimizer(0.1, 100, 0)
    assert optimizer.global_clipnorm == 1.0 and optimizer.epsilon == 1e-6
    assert optimizer.weight_decay_rate == 0.01


def test_layerwise_decay_fixes_the_official_off_by_one():
    config = ElectraConfig.from_preset("tiny", vocab_size=100, num_layers=3)
    model = ElectraDiscriminator.from_electra_config(config)
    variables = model.trainable_variables
    fixed = layerwise_lr_multipliers(variables, 3, 0.8)
    legacy = layerwise_lr_multipliers(variables, 3, 0.8, legacy_off_by_one=True)
    by_depth = {}
    for var in variables:
        by_depth.setdefault(layer_depth(var.path, 3), set()).add(round(fixed[var.path], 8))
    assert by_depth == {0: {round(0.8**4, 8)}, 1: {round(0.8**3, 8)}, 2: {round(0.8**2, 8)},
                        3: {0.8}, 4: {1.0}}
    head = [v.path for v in variables if layer_depth(v.path, 3) == 4]
    # Official: the head (task_specific/, depth n+2) keeps the full LR; only the encoder shifts by one.
    assert head and all(legacy[p] == 1.0 for p in head)
    assert all(legacy[p] == pytest.approx(fixed[p] * 0.8) for p in fixed if p not in head)


def _official_get_layer_lrs(learning_rate: float, layer_decay: float, n_layers: int) -> dict[str, float]:
    """google-research/electra model/optimization.py `_get_layer_lrs`, verbatim but for the OrderedDict."""
    key_to_depths = {"/embeddings/": 0, "/embeddings_project/": 0, "task_specific/": n_layers + 2}
    for layer in range(n_layers):
        key_to_depths["encoder/layer_" + str(layer) + "/"] = layer + 1
    return {key: learning_rate * (layer_decay ** (n_layers + 2 - depth)) for key, depth in key_to_depths.items()}


@pytest.mark.parametrize("n_layers,decay", [(2, 0.8), (12, 0.8), (24, 0.9)])
def test_legacy_layerwise_decay_is_the_official_formula(n_layers, decay):
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.classifier import ElectraClassifier

    # Narrow layers: only the names and the depth matter.
    config = ElectraConfig.from_preset("tiny", vocab_size=50, num_layers=n_layers, embedding_size=16,
                                       hidden_size=32, num_heads=1, intermediate_size=32)
    model = ElectraClassifier(ElectraBackbone.from_electra_config(config, name="backbone"), num_classes=3)
    ours = layerwise_lr_multipliers(model.trainable_variables, n_layers, decay, legacy_off_by_one=True)
    official = _official_get_layer_lrs(1.0, decay, n_layers)
    # Official variable names: the encoder under electra/, the head under the task_specific/ scope.
    names = {(name if name.startswith("electra/") else f"task_specific/{name}"): var
             for name, var in model.canonical_weights().items()}
    assert len(names) == len(model.trainable_variables)
    checked = set()
    for name, var in names.items():
        keys = [k for k in official if k in name]  # the official optimiser matches `key in var.name`
        assert len(keys) == 1, (name, keys)
        assert ours[var.path] == pytest.approx(official[keys[0]], rel=1e-12), name
        checked.add(keys[0])
    assert checked == set(official) - ({"/embeddings_project/"} if config.embedding_size == config.hidden_size
                                       else set())
    head = names["task_specific/classifier/kernel"]
    assert ours[head.path] == 1.0
    top = names[f"electra/encoder/layer_{n_layers - 1}/output/dense/kernel"]
    assert ours[top.path] == pytest.approx(decay**2)
    assert ours[names["electra/embeddings/word_embeddings"].path] == pytest.approx(decay ** (n_layers + 2))


def test_lr_multipliers_scale_the_update():
    var = keras.Variable(np.full((3,), 2.0, "float32"), name="kernel")
    optimizer = ElectraAdamW(0.1, weight_decay_rate=0.0, global_clipnorm=None, lr_multipliers={var.path: 0.5},
                             bias_correction=True)
    optimizer.build([var])
    optimizer.apply_gradients([(np.full((3,), 0.5, "float32"), var)])
    assert float(var.numpy()[0]) == pytest.approx(2.0 - 0.05, abs=1e-5)
    config = optimizer.get_config()
    assert ElectraAdamW.from_config(config).lr_multipliers == {var.path: 0.5}
