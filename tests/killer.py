"""Run the CLI and SIGKILL it at a known point of an atomic writer: deterministic, not timing-based.

    python -m tests.killer NAME WHEN -- keras-electra arguments...

NAME: the base name of the output being published (`discriminator`, `1`, `model.tflite`), or
`checkpoint` for TensorFlow's checkpoint merge (the step that turns `ckpt-N_temp/` into `ckpt-N`),
or `step` to kill pretraining at the end of optimizer step WHEN (after that step's checkpoint, if any).
WHEN: "publish" (just before the rename or swap that makes the new state visible) or
"after_publish" (just after it, before the old state is cleaned up); a step number for `step`.
"""

from __future__ import annotations

import os
import signal
import sys


def _die() -> None:
    sys.stdout.flush()
    os.kill(os.getpid(), signal.SIGKILL)


def install(name: str, when: str) -> None:
    if name == "step":
        _kill_at_step(int(when))
        return
    import keras_electra.utils.io as io

    real_replace, real_exchange = os.replace, io._exchange

    def replace(src, dst, *args, **kwargs):
        hit = os.path.basename(os.fspath(dst)) == name and os.path.basename(os.fspath(src)).startswith(".")
        if hit and when == "publish":
            _die()
        real_replace(src, dst, *args, **kwargs)
        if hit and when == "after_publish":
            _die()

    def exchange(a, b):
        hit = os.path.basename(os.fspath(b)) == name
        if hit and when == "publish":
            _die()
        done = real_exchange(a, b)
        if hit and when == "after_publish":
            _die()
        return done

    os.replace = replace
    io._exchange = exchange
    if name == "checkpoint":
        from tensorflow.python.ops import gen_io_ops

        gen_io_ops.merge_v2_checkpoints = lambda *args, **kwargs: _die()


def _kill_at_step(step: int) -> None:
    """Die right after optimizer step `step`: the callback that checkpoints runs first, so what is on
    disk is exactly what a kill at that moment leaves."""
    from keras_electra.pretraining.trainer import StepCheckpoint

    real_end = StepCheckpoint.on_train_batch_end

    def on_train_batch_end(self, batch, logs=None):
        real_end(self, batch, logs)
        if self._step() == step:
            _die()

    StepCheckpoint.on_train_batch_end = on_train_batch_end


if __name__ == "__main__":
    install(sys.argv[1], sys.argv[2])
    from keras_electra.cli import main

    sys.exit(main(sys.argv[4:]))


def kill_run(name: str, when: str, argv: list[str], timeout: float = 600) -> None:
    """Run `keras-electra ARGV` in a subprocess that kills itself at `name`/`when`; check it died there."""
    import subprocess
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    env = {**os.environ, "PYTHONPATH": str(repo), "TF_CPP_MIN_LOG_LEVEL": "3"}
    process = subprocess.run([sys.executable, "-m", "tests.killer", name, when, "--", *argv], env=env, cwd=repo,
                             capture_output=True, text=True, timeout=timeout)
    assert process.returncode == -signal.SIGKILL, (process.returncode, process.stderr[-2000:])
