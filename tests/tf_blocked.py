"""Run Python code in a subprocess where TensorFlow cannot be imported (issue 16).

An uninstalled package is not enough to prove the point: the venv has TensorFlow, and a stray
`import tensorflow` would pass here and fail on a machine without it (the GPU machine). So a
`sys.meta_path` finder, installed before anything else runs, refuses every module of the blocked
packages with the ModuleNotFoundError a missing package gives, and KERAS_BACKEND is jax.

    from tests.tf_blocked import run_without_tensorflow
    done = run_without_tensorflow("import keras_electra.models")
    assert done.returncode == 0, done.stderr
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from collections.abc import Sequence

from tests.conftest import REPO

BLOCKED = ("tensorflow", "tensorflow_text", "tensorflow_datasets", "tf_keras", "tensorboard", "tf2onnx")

# Kept self-contained: it runs as the first statements of the child.
_PRELUDE = """
import importlib.abc, sys

class _BlockTensorFlow(importlib.abc.MetaPathFinder):
    blocked = {blocked!r}
    attempts = []

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in self.blocked:
            self.attempts.append(name)
            raise ModuleNotFoundError(f"No module named {{name!r}} (blocked by tests/tf_blocked.py)", name=name)
        return None

sys.meta_path.insert(0, _BlockTensorFlow())
for _name in list(sys.modules):
    if _name.split(".")[0] in _BlockTensorFlow.blocked:
        del sys.modules[_name]
"""


def prelude(blocked: Sequence[str] = BLOCKED) -> str:
    """The Python statements that block `blocked` for the rest of a process."""
    return _PRELUDE.format(blocked=tuple(blocked))


def run_without_tensorflow(
    code: str, *, args: Sequence[str] = (), env: dict[str, str] | None = None, timeout: float = 300,
    blocked: Sequence[str] = BLOCKED, cwd: str | os.PathLike | None = None,
) -> subprocess.CompletedProcess:
    """Run `code` (a Python snippet) in a fresh interpreter with `blocked` unimportable, KERAS_BACKEND=jax.

    `args` become sys.argv[1:]; `env` is added to a minimal environment (PATH, HOME, PYTHONPATH=the repo).
    Returns the CompletedProcess (text stdout/stderr); the caller asserts on it.
    """
    child_env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "HOME": os.environ.get("HOME", "/tmp"),
        "PYTHONPATH": str(REPO),
        "KERAS_BACKEND": "jax",
        "JAX_PLATFORMS": "cpu",
        "PYTHONUNBUFFERED": "1",
    }
    for name in ("KERAS_ELECTRA_SHARED_DATA", "KERAS_ELECTRA_CACHE", "TMPDIR"):
        if name in os.environ:
            child_env[name] = os.environ[name]
    child_env.update(env or {})
    program = prelude(blocked) + "\n" + textwrap.dedent(code)
    return subprocess.run(
        [sys.executable, "-c", program, *args], capture_output=True, text=True, cwd=cwd or REPO, env=child_env,
        timeout=timeout,
    )
