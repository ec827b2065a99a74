"""One objective on TensorFlow and JAX (issue 16): the same first step, DataParallel = one device,
and a JAX run from ArrayRecord shards with TensorFlow blocked that is killed and resumes exactly.

Each backend runs in its own process (tests/pretraining/backend_runs.py); arrays travel as .npz.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import NOVELS, REPO

SEQ, BATCH = 32, 4


def run_child(*args: str, backend: str, env: dict[str, str] | None = None, expect: int = 0,
              timeout: float = 1200) -> subprocess.CompletedProcess:
    child_env = {**os.environ, "KERAS_BACKEND": backend, "PYTHONPATH": str(REPO), "JAX_PLATFORMS": "cpu",
                 **(env or {})}
    done = subprocess.run([sys.executable, "-m", "tests.pretraining.backend_runs", *args], cwd=REPO,
                          env=child_env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == expect, f"exit {done.returncode}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


def _load(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return dict(data)


@pytest.fixture(scope="module")
def first_steps(tmp_path_factory) -> Path:
    """TensorFlow writes the initial weights and a real batch, takes one step; JAX takes the same step."""
    directory = tmp_path_factory.mktemp("first_step")
    run_child("first_step", str(directory), backend="tensorflow")
    run_child("first_step", str(directory), backend="jax")
    return directory


def test_first_step_gives_the_same_losses_and_weights_on_tensorflow_and_jax(first_steps):
    tf_out, jax_out = _load(first_steps / "tensorflow.npz"), _load(first_steps / "jax.npz")
    initial = _load(first_steps / "initial.npz")
    assert set(tf_out) == set(jax_out)
    for key in ("loss/loss", "loss/gen_loss", "loss/disc_loss"):
        np.testing.assert_allclose(jax_out[key], tf_out[key], rtol=1e-5, atol=1e-5, err_msg=key)
    weights = [k for k in tf_out if k.startswith("weight/")]
    moved = 0
    for key in weights:
        np.testing.assert_allclose(jax_out[key], tf_out[key], rtol=0, atol=1e-5, err_msg=key)
        moved += not np.array_equal(tf_out[key], initial[key.replace("weight/", "init/")])
    assert moved == len(weights)  # every variable took a step (a frozen or skipped one would not)
    # Adam's first moment is 0.1 x the clipped gradient (global norm 0.1); the key biases' true
    # gradient is 0 (softmax ignores a shift), so theirs is float noise: an absolute floor.
    for key in (k for k in tf_out if k.startswith("momentum/")):
        np.testing.assert_allclose(jax_out[key], tf_out[key], rtol=1e-3, atol=1e-7, err_msg=key)


def test_data_parallel_on_two_devices_matches_one_device(first_steps):
    run_child("data_parallel", str(first_steps), backend="jax",
              env={"XLA_FLAGS": "--xla_force_host_platform_device_count=2"})
    out = _load(first_steps / "data_parallel.npz")
    assert out["two/devices"] == 2
    for key in (k[4:] for k in out if k.startswith("one/")):  # losses, updated weights, 0.1 x gradients
        np.testing.assert_allclose(out[f"two/{key}"], out[f"one/{key}"], rtol=1e-5, atol=1e-6, err_msg=key)


@pytest.fixture(scope="module")
def novel_shards(tmp_path_factory, uncased_tokenizer) -> Path:
    """ArrayRecord shards of 48 real packed examples of a novel."""
    from keras_electra.data.pretraining_data import pretraining_dataset
    from keras_electra.data.shards import write_shards

    data = pretraining_dataset([str(NOVELS / "Doyle_Hound_1902.txt")], uncased_tokenizer, seq_length=SEQ,
                               batch_size=1, seed=0, repeat=False, shuffle_buffer=0)
    examples = [{k: v.numpy()[0] for k, v in batch.items()} for batch in data.take(48)]
    directory = tmp_path_factory.mktemp("data") / "shards"
    write_shards(examples, directory, seq_length=SEQ, vocab=uncased_tokenizer.vocabulary, shard_size=16,
                 lower_case=True)
    return directory


def test_jax_run_from_shards_without_tensorflow_is_killed_and_resumes_exactly(novel_shards, tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    done = run_child("pretrain", str(novel_shards), str(straight), "6", backend="jax")
    assert "RESULT 6 6" in done.stdout  # (and the child asserted that no TensorFlow module was imported)
    assert "TEXT REFUSED" in done.stdout
    for part in ("discriminator", "generator"):
        assert (straight / part / "model.keras").is_file() and (straight / part / "vocab.txt").is_file()

    # Killed from inside right after step 5: the checkpoint of step 4 is the last one.
    run_child("pretrain", str(novel_shards), str(killed), "6", "5", backend="jax", expect=3)
    assert sorted(p.name for p in (killed / "checkpoints").iterdir()) == ["ckpt-2.npz", "ckpt-4.npz"]
    assert not (killed / "discriminator").exists()
    done = run_child("pretrain", str(novel_shards), str(killed), "6", backend="jax")
    assert "Resuming from step 4" in done.stdout and "RESULT 6 2" in done.stdout

    # The shard stream continues at the resumed step's batch, so everything lines up: step (the LR
    # schedule's position), weights, Adam moments and the masking/dropout RNG states.
    a, b = _load(straight / "checkpoints" / "ckpt-6.npz"), _load(killed / "checkpoints" / "ckpt-6.npz")
    assert list(a["paths"]) == list(b["paths"])
    paths = [str(p) for p in a["paths"]]
    assert any("seed_generator_state" in p for p in paths) and "iteration" in " ".join(paths)
    for i, path in enumerate(paths):
        np.testing.assert_allclose(b[f"v{i}"], a[f"v{i}"], rtol=1e-6, atol=1e-7, err_msg=path)


def test_tpu_strategy_is_refused_on_jax_in_one_line():
    from keras_electra.errors import ElectraError
    from keras_electra.pretraining.trainer import jax_distribution

    with pytest.raises(ElectraError, match="--strategy tpu is a tf.distribute strategy"):
        jax_distribution("tpu")
    assert jax_distribution("default") is None
    # multiworker is jax.distributed + DataParallel over every process's devices (tests/pretraining/
    # test_multiworker.py); in one process, over its own devices, with the rows handed out by the trainer.
    assert jax_distribution("multiworker").auto_shard_dataset is False


@pytest.mark.slow
def test_jax_mixed_precision_and_frozen_generator_train():
    done = run_child("variants", backend="jax")
    for name in ("mixed_bfloat16", "mixed_float16", "frozen_generator"):
        assert f"VARIANT {name} " in done.stdout, done.stdout[-2000:]
