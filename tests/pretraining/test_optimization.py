"""The official optimiser: schedule, decoupled weight decay and its exclusions, bias correction, LLRD."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_electra.config import ElectraConfig
from keras_electra.models.discriminator import ElectraDiscriminator
from keras_electra.pretraining.optimization import (
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
    kernel, gamma, bias = _one_step(ElectraAdamW(lr, weight_decay_rate=wd, global_clipnorm=None))
    adam_update = 1.0  # m_hat / sqrt(v_hat) for a constant gradient, bias-corrected, ≈ 1
    assert gamma == pytest.approx(2.0 - lr * adam_update, abs=1e-5)
    assert bias == pytest.approx(gamma)
    assert kernel == pytest.approx(2.0 - lr * (adam_update + wd * 2.0), abs=1e-5)


def test_without_bias_correction_like_the_official_optimizer():
    lr = 0.1
    (kernel,) = _one_step(ElectraAdamW(lr, weight_decay_rate=0.0, bias_correction=False, global_clipnorm=None),
                          names=("dense/kernel",))
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
    assert head and all(legacy[p] == pytest.approx(0.8) for p in head)  # official: even the head decays
    assert all(legacy[p] == pytest.approx(fixed[p] * 0.8) for p in fixed)


def test_lr_multipliers_scale_the_update():
    var = keras.Variable(np.full((3,), 2.0, "float32"), name="kernel")
    optimizer = ElectraAdamW(0.1, weight_decay_rate=0.0, global_clipnorm=None, lr_multipliers={var.path: 0.5})
    optimizer.build([var])
    optimizer.apply_gradients([(np.full((3,), 0.5, "float32"), var)])
    assert float(var.numpy()[0]) == pytest.approx(2.0 - 0.05, abs=1e-5)
    config = optimizer.get_config()
    assert ElectraAdamW.from_config(config).lr_multipliers == {var.path: 0.5}
