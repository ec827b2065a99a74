"""Pretraining through tf.distribute: MirroredStrategy over two logical CPU devices."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np

from tests.conftest import NOVELS, REPO, VOCAB_UNCASED

SCRIPT = """
import sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
from keras_electra.cli import main
sys.exit(main(sys.argv[1:]))
"""


def test_mirrored_strategy_over_two_replicas(tmp_path):
    output = tmp_path / "run"
    args = ["pretrain", "--preset", "tiny", "--corpus", str(NOVELS / "Doyle_Hound_1902.txt"),
            "--vocab", str(VOCAB_UNCASED), "--steps", "4", "--batch-size", "8", "--seq-length", "64",
            "--eval-batches", "1", "--strategy", "mirrored", "--output", str(output)]
    result = subprocess.run([sys.executable, "-c", SCRIPT, *args], capture_output=True, text=True, timeout=600,
                            cwd=REPO, env={"PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3",
                                           "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0, result.stderr[-3000:]
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["replicas"] == 2 and metrics["steps"] == 4
    assert all(np.isfinite(np.asarray(v, dtype=float)).all() for v in metrics["after"].values())  # per-layer lists too
    assert (output / "discriminator" / "model.keras").is_file()
