"""Output safety (issue 18): one run per output, stale temporaries, permissions, one-line output errors."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from pathlib import Path

import pytest

from keras_electra.errors import DataError, OutputError
from keras_electra.utils.io import (
    atomic_directory,
    check_output,
    lock_file_path,
    output_lock,
    read_json,
    remove_stale_temporaries,
)
from tests.conftest import REPO

HOLD = """
import sys, time
from keras_electra.utils.io import output_lock
with output_lock(sys.argv[1], inside=sys.argv[2] == "inside"):
    print("locked", flush=True)
    time.sleep(120)
"""


def _hold(target: Path, inside: bool = True) -> subprocess.Popen:
    """A second real process that holds the lock on `target` until killed."""
    process = subprocess.Popen([sys.executable, "-c", HOLD, str(target), "inside" if inside else "beside"],
                               env={**os.environ, "PYTHONPATH": str(REPO)}, stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "locked"
    return process


def test_a_second_process_on_one_output_stops_at_once_naming_the_holder(tmp_path):
    target = tmp_path / "run"
    holder = _hold(target)
    try:
        contender = subprocess.run(
            [sys.executable, "-c", "import sys\nfrom keras_electra.utils.io import output_lock\n"
             "from keras_electra.errors import ElectraError\n"
             "try:\n    output_lock(sys.argv[1], inside=True).__enter__()\n"
             "except ElectraError as err:\n    print(err)\n    sys.exit(2)\n", str(target)],
            env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=30)
        assert contender.returncode == 2, contender.stdout + contender.stderr
        line = contender.stdout.strip()
        assert len(line.splitlines()) == 1
        assert f"pid {holder.pid} on {socket.gethostname()}" in line and "time.sleep" not in line
        assert "in use by" in line and "started 20" in line and str(target) in line
    finally:
        holder.send_signal(signal.SIGKILL)  # the kernel drops a dead process's lock: nothing stale remains
        holder.wait()
    with output_lock(target, inside=True):
        assert lock_file_path(target, inside=True).is_file()
    assert not lock_file_path(target, inside=True).exists()
    target.rmdir()
    with output_lock(target, inside=True):
        pass
    assert not target.exists()  # a run that wrote nothing leaves no empty directory


def test_lock_beside_a_replaced_output_and_released_for_the_next_run(tmp_path):
    target = tmp_path / "model.tflite"
    with output_lock(target, kind="file"):
        assert (tmp_path / ".model.tflite.lock").is_file()
        with pytest.raises(OutputError, match=f"pid {os.getpid()}"):
            output_lock(tmp_path / "." / "model.tflite", kind="file").__enter__()  # another spelling, one lock
    assert not (tmp_path / ".model.tflite.lock").exists()
    with output_lock(target, kind="file"):
        pass


def test_stale_temporaries_are_removed_and_an_interrupted_replace_is_undone(tmp_path):
    run = tmp_path / "run"
    (run / "checkpoints" / "ckpt-7_temp").mkdir(parents=True)
    (run / "checkpoints" / "ckpt-7_temp" / "part-00000-of-00001.data-00000-of-00001").write_bytes(b"x")
    (run / ".generator.tmp-abc123").mkdir()
    (run / ".generator.tmp-abc123" / "model.keras").write_bytes(b"")
    (run / ".run_config.json.tmp-xyz").write_text("{")
    (run / "discriminator").mkdir()
    (run / "discriminator" / "model.keras").write_bytes(b"new")
    (run / ".discriminator.old-123").mkdir()  # superseded: the replace finished
    # A kill between the two renames of atomic_directory: only the old copy of `generator/` is left.
    (run / ".generator.old-456").mkdir()
    (run / ".generator.old-456" / "model.keras").write_bytes(b"previous good")
    (tmp_path / ".run.tmp-qq").mkdir()
    keep = run / "checkpoints" / "ckpt-5.index"
    keep.write_bytes(b"i")
    with output_lock(run, inside=True):
        pass
    assert sorted(p.name for p in run.iterdir()) == ["checkpoints", "discriminator", "generator"]
    assert (run / "generator" / "model.keras").read_bytes() == b"previous good"
    assert [p.name for p in (run / "checkpoints").iterdir()] == ["ckpt-5.index"]
    assert not (tmp_path / ".run.tmp-qq").exists()
    assert remove_stale_temporaries(run) == []


def test_atomic_directories_respect_the_umask(tmp_path):
    old = os.umask(0o022)
    try:
        with atomic_directory(tmp_path / "exports" / "1") as tmp:
            (tmp / "saved_model.pb").write_bytes(b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "exports" / "1").stat().st_mode) == 0o755


def _as_unprivileged_user(function) -> str:
    """Call `function()` as an ordinary user and return its error message ("" when it passes): in a forked child
    that drops root's privileges (root writes anywhere, and CI often runs as root), or directly otherwise."""
    if os.geteuid() != 0:
        try:
            function()
        except OutputError as err:
            return str(err)
        return ""
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: the modules are loaded already, so it needs no access to the interpreter's files
        message = b""
        try:
            os.setgroups([])
            os.setgid(65534)
            os.setuid(65534)  # nobody
            function()
        except OutputError as err:
            message = str(err).encode()
        except BaseException as err:  # noqa: BLE001 - reported to the parent, which fails the test
            message = f"UNEXPECTED {type(err).__name__}: {err}".encode()
        os.write(write, message or b"-")
        os._exit(0)
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        message = pipe.read().decode()
    os.waitpid(pid, 0)
    return "" if message == "-" else message


def test_unwritable_output_is_one_line_before_any_work():
    import tempfile

    base = Path(tempfile.mkdtemp(prefix="keras-electra-perm-"))  # not under pytest's tmp_path: nobody can enter it
    try:
        base.chmod(0o755)
        locked, open_ = base / "ro", base / "rw"
        locked.mkdir()
        open_.mkdir()
        locked.chmod(0o555)
        open_.chmod(0o777)
        message = _as_unprivileged_user(lambda: check_output(locked / "out"))
        assert message == f"output {locked / 'out'}: {locked} is not writable (permission denied)"
        # The same check passes where that user may write, so the refusal above is about permissions.
        assert _as_unprivileged_user(lambda: check_output(open_ / "out")) == ""
    finally:
        locked.chmod(0o755)
        shutil.rmtree(base)


def test_occupied_outputs_are_one_line(tmp_path):
    a_file = tmp_path / "file"
    a_file.write_text("x")
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_output(a_file)
    with pytest.raises(OutputError, match="is a file, not a directory"):
        check_output(a_file / "sub" / "out")
    with pytest.raises(OutputError, match="is a directory; give a file name"):
        check_output(tmp_path, kind="file")


def test_truncated_json_names_the_file(tmp_path):
    path = tmp_path / "run_config.json"
    path.write_text('{"preset": "ti')
    with pytest.raises(DataError, match="run_config.json is not valid JSON"):
        read_json(path)


def test_lock_is_taken_fast(tmp_path):
    started = time.perf_counter()
    for i in range(20):
        with output_lock(tmp_path / f"o{i}"):
            pass
    assert time.perf_counter() - started < 2


def _cli(args: list[str], capsys) -> tuple[int, str]:
    import keras  # noqa: F401 - imported before the clock starts: the limit is for the work, not for imports
    import tensorflow  # noqa: F401

    from keras_electra.cli import main

    started = time.perf_counter()
    code = main(args)
    err = capsys.readouterr().err.strip()
    assert time.perf_counter() - started < 20, "the output must be checked before the work starts"
    return code, err


@pytest.mark.parametrize("command", ["pretrain", "finetune", "convert", "export-onnx", "export-tflite",
                                     "export-saved_model"])
def test_every_writer_refuses_a_held_output_in_one_line(command, tmp_path, capsys):
    from tests.conftest import NOVELS, VOCAB_UNCASED

    output = tmp_path / ("out.onnx" if command == "export-onnx" else "out.tflite" if command == "export-tflite"
                         else "out")
    args = {
        "pretrain": ["pretrain", "--corpus", str(NOVELS), "--vocab", str(VOCAB_UNCASED), "--output", str(output)],
        "finetune": ["finetune", "--task", "sst2", "--data", str(tmp_path), "--init", "random",
                     "--output", str(output)],
        "convert": ["convert", str(tmp_path), "--output", str(output)],  # a path: checked after the output
    }.get(command) or ["export", "--model", str(tmp_path / "missing_model"), "--format", command.split("-")[1],
                       "--output", str(output)]
    holder = _hold(output, inside=command in ("pretrain", "export-saved_model"))
    try:
        code, err = _cli(args, capsys)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert code == 2 and len(err.splitlines()) == 1, err
    assert f"in use by pid {holder.pid}" in err


def test_occupied_or_unwritable_outputs_are_one_line_before_the_work(tmp_path, capsys):
    from tests.conftest import NOVELS, VOCAB_UNCASED

    a_file = tmp_path / "occupied"
    a_file.write_text("x")
    code, err = _cli(["pretrain", "--corpus", str(NOVELS), "--vocab", str(VOCAB_UNCASED), "--output", str(a_file)],
                     capsys)
    assert code == 2 and "is a file, not a directory" in err and len(err.splitlines()) == 1
    # tflite into a directory: refused before the (seconds-long) conversion, not after it.
    code, err = _cli(["export", "--model", str(tmp_path / "m"), "--format", "tflite", "--output", str(tmp_path)],
                     capsys)
    assert code == 2 and "is a directory; give a file name" in err and len(err.splitlines()) == 1
    code, err = _cli(["convert", str(tmp_path), "--output", str(a_file / "sub")], capsys)
    assert code == 2 and "is a file, not a directory" in err and len(err.splitlines()) == 1


WRITE_NEW = """
import sys
from pathlib import Path
from tests.killer import install
target, kind, when = Path(sys.argv[1]), sys.argv[2], sys.argv[3]
install(target.name, when)
from keras_electra.utils.io import atomic_directory, atomic_file, output_lock
with output_lock(target, kind="directory" if kind == "dir" else "file"):
    if kind == "dir":
        with atomic_directory(target) as tmp:
            (tmp / "model.keras").write_text("new")
            (tmp / "config.json").write_text("new")
    else:
        with atomic_file(target) as tmp:
            tmp.write_text("new")
"""


@pytest.mark.parametrize("kind", ["dir", "file"])
@pytest.mark.parametrize("when", ["publish", "after_publish"])
def test_a_writer_killed_while_publishing_leaves_a_whole_state(kind, when, tmp_path):
    """The mechanism under every final save, export and convert, killed (SIGKILL) at a known point."""
    target = tmp_path / ("discriminator" if kind == "dir" else "model.tflite")
    if kind == "dir":
        with atomic_directory(target) as tmp:
            (tmp / "model.keras").write_text("old")
            (tmp / "config.json").write_text("old")
    else:
        target.write_text("old")
    process = subprocess.run([sys.executable, "-c", WRITE_NEW, str(target), kind, when],
                             env={**os.environ, "PYTHONPATH": str(REPO)}, cwd=REPO, capture_output=True, text=True,
                             timeout=60)
    assert process.returncode == -signal.SIGKILL, process.stderr
    expected = "old" if when == "publish" else "new"
    if kind == "dir":
        assert {p.name: p.read_text() for p in target.iterdir()} == {"model.keras": expected, "config.json": expected}
    else:
        assert target.read_text() == expected
    with output_lock(target, kind="directory" if kind == "dir" else "file"):  # the next run
        pass
    assert sorted(p.name for p in tmp_path.iterdir()) == [target.name]
