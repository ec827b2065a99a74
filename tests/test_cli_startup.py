"""`keras-electra --help` and argument errors stay fast: they must not import TensorFlow or Keras (issue 14, bug 12)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from tests.conftest import REPO

HEAVY = ("tensorflow", "keras", "tensorflow_datasets", "tensorflow_text")

PROBE = """
import contextlib, io, json, sys, time
start = time.perf_counter()
from keras_electra.cli import main
out, err = io.StringIO(), io.StringIO()
with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
    try:
        code = main(sys.argv[1:])
    except SystemExit as exit:
        code = exit.code
print(json.dumps({"seconds": time.perf_counter() - start, "code": code, "out": out.getvalue(), "err": err.getvalue(),
                  "heavy": sorted({m.split(".")[0] for m in sys.modules} & set(HEAVY_NAMES))}))
""".replace("HEAVY_NAMES", repr(HEAVY))


def _run(*argv: str) -> dict:
    done = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


@pytest.mark.parametrize("argv", [
    ("--help",), ("finetune", "--help"), ("export", "--help"), ("pretrain", "--help"), ("predict", "--help"),
    ("finetune", "--task", "sst2"),  # an argument error: missing --data, --init, --output
    ("export", "--model", "m", "--format", "jpeg", "--output", "o"),
])
def test_help_and_argument_errors_import_no_tensorflow(argv):
    result = _run(*argv)
    assert result["heavy"] == [], f"{' '.join(argv)} imported {result['heavy']}"
    assert result["code"] in (0, 2)
    # The target is < 1 s (measured ~0.2 s); the bound is generous for a loaded shared machine.
    assert result["seconds"] < 3.0, result["seconds"]


def test_finetune_help_prints_a_single_percent_sign():
    text = " ".join(_run("finetune", "--help")["out"].split())
    assert "10% warm-up" in text and "%%" not in text


def test_a_closed_pipe_ends_a_listing_quietly():
    """`keras-electra models | head -0` must end quietly, not with a BrokenPipeError traceback."""
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line is written
    try:
        done = subprocess.run([sys.executable, "-m", "keras_electra.cli", "models"], stdout=write_end,
                              stderr=subprocess.PIPE, cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"},
                              timeout=60)
    finally:
        os.close(write_end)
    assert done.returncode == 141 and b"Traceback" not in done.stderr, done.stderr.decode()
