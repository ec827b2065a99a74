"""Pretraining through tf.distribute: MirroredStrategy over two logical CPU devices."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import NOVELS, REPO, VOCAB_UNCASED

ENV = {"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3", "PATH": "/usr/bin:/bin"}


def test_two_replicas_take_the_same_step_as_one_and_the_cli_trains_on_two(tmp_path):
    """Loss and applied gradient (SGD, learning rate 1) of one train step on one global batch of 8: on one
    replica, and split 4 + 4 over two. A replica that forgot to divide its loss by the number of replicas,
    or a missing all-reduce, changes the step by a factor of about 2; float32 summation order, by ~1e-6.
    Then `keras-electra pretrain --strategy mirrored` in the same process (one TensorFlow start for both)."""
    out, output = tmp_path / "step.npz", tmp_path / "run"
    args = ["pretrain", "--preset", "tiny", "--corpus", str(NOVELS / "Doyle_Hound_1902.txt"),
            "--vocab", str(VOCAB_UNCASED), "--steps", "4", "--batch-size", "8", "--seq-length", "64",
            "--eval-batches", "1", "--strategy", "mirrored", "--output", str(output)]
    result = subprocess.run([sys.executable, "-m", "tests.pretraining.distributed_step", str(out), "--", *args],
                            capture_output=True, text=True, timeout=900, cwd=REPO, env=ENV)
    assert result.returncode == 0, result.stderr[-3000:]
    step = np.load(out)
    assert (int(step["one_replicas"]), int(step["two_replicas"])) == (1, 2)
    for key in ("loss", "gen_loss", "disc_loss"):
        assert abs(float(step[f"one_{key}"]) - float(step[f"two_{key}"])) <= 1e-5 * abs(float(step[f"one_{key}"]))
    deltas = sorted(k[len("one_delta_"):] for k in step.files if k.startswith("one_delta_"))
    moved = 0
    for i in deltas:
        one, two = step[f"one_delta_{i}"], step[f"two_delta_{i}"]
        scale = float(np.abs(one).max())
        assert float(np.abs(one - two).max()) <= 1e-4 * scale + 1e-7, (i, scale, float(np.abs(one - two).max()))
        moved += scale > 1e-6
    assert moved > 0.8 * len(deltas)  # nearly every variable received a gradient (attention key biases: 0)
    draws = step["replica_draws"]  # the real RNG: the two replicas must not mask and sample alike
    assert draws.shape == (2, 64) and not np.allclose(draws[0], draws[1])

    metrics = json.loads((output / "metrics.json").read_text())
    assert (metrics["replicas"], metrics["steps"], metrics["trained_steps_this_run"]) == (2, 4, 4)
    assert metrics["jit_compile"] is False  # XLA stays off under MirroredStrategy
    # The discriminator learned something in 4 steps: its held-out loss fell from the untrained model's.
    assert metrics["after"]["disc_loss"] < metrics["before"]["disc_loss"]
    assert (output / "discriminator" / "model.keras").is_file()
