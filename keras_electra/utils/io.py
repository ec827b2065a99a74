"""Atomic writes: an output exists whole or not at all, never half-written."""

from __future__ import annotations

import contextlib
import datetime
import errno
import fcntl
import json
import os
import shlex
import shutil
import socket
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from keras_electra.errors import DataError, ElectraError, OutputError


def _umask_mode(mode: int) -> int:
    """`mode` as a plain open()/mkdir() would create it under the current umask."""
    umask = os.umask(0)
    os.umask(umask)
    return mode & ~umask


def _exchange(a: Path, b: Path) -> bool:
    """Swap two paths atomically (Linux renameat2 RENAME_EXCHANGE); False where unsupported."""
    try:
        import ctypes

        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    return renameat2(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0


@contextlib.contextmanager
def atomic_directory(target: str | Path, overwrite: bool = True) -> Iterator[Path]:
    """Yield a temporary directory beside `target`; rename it onto `target` on success.

    On any exception the temporary directory is removed and `target` is untouched.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.tmp-", dir=target.parent))
    tmp.chmod(_umask_mode(0o777))  # mkdtemp makes 0700; TF Serving often runs as another user
    try:
        yield tmp
        if target.exists() and overwrite and _exchange(tmp, target):
            # One atomic swap: a reader (or a kill) sees the old or the new directory, never neither.
            shutil.rmtree(tmp, ignore_errors=True)  # now holds the old content
        elif target.exists():
            if not overwrite:
                raise FileExistsError(f"{target} already exists")
            old = target.with_name(f".{target.name}.old-{os.getpid()}")
            os.replace(target, old)
            os.replace(tmp, target)
            shutil.rmtree(old, ignore_errors=True) if old.is_dir() else old.unlink(missing_ok=True)
        else:
            os.replace(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@contextlib.contextmanager
def atomic_file(target: str | Path) -> Iterator[Path]:
    """Yield a temporary file path beside `target`; move it onto `target` on success."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(prefix=f".{target.name}.tmp-", dir=target.parent)
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        # mkstemp creates 0600; give the file the mode a plain open() would have.
        tmp.chmod(_umask_mode(0o666))
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_json(path: str | Path, value: Any) -> None:
    with atomic_file(path) as tmp:
        tmp.write_text(json.dumps(value, indent=2, sort_keys=True, default=str) + "\n")


def read_json(path: str | Path, error: type[ElectraError] = DataError, require_object: bool = False) -> Any:
    """A JSON file's value: the one JSON reader. A truncated or malformed file, or one that cannot be
    read, is one line naming it, raised as `error` (DataError; the converters pass CheckpointError);
    `require_object=True` also refuses anything but a JSON object."""
    path = Path(path)
    try:
        values = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise error(f"{path} is not valid JSON ({str(err).splitlines()[0]}); it may be truncated") from None
    except OSError as err:
        raise error(f"cannot read {path}: {err.strerror or err}") from None
    if require_object and not isinstance(values, dict):
        raise error(f"{path}: expected a JSON object, found {type(values).__name__}")
    return values


# ------------------------------------------------------------------ output locks
LOCK_FILE = ".keras-electra.lock"


def lock_file_path(target: str | Path, inside: bool = False) -> Path:
    """Where the lock of `target` lives: `LOCK_FILE` inside a directory that is written in place
    (pretraining), else `.NAME.lock` beside it, so that outputs that are replaced whole, or refused
    when not empty, are not changed by their own lock."""
    target = Path(os.path.realpath(target))  # two spellings of one path share one lock
    return target / LOCK_FILE if inside else target.parent / f".{target.name}.lock"


def check_output(target: str | Path, kind: str = "directory", inside: bool = False) -> Path:
    """Refuse, in one line and before any work, an output that cannot be written.

    kind: "directory" or "file". inside: the directory is written in place; otherwise `target`
    is replaced by a rename in its parent, which must then be writable.
    """
    target = Path(target)
    if kind == "directory" and target.exists() and not target.is_dir():
        raise OutputError(f"output {target} is a file, not a directory")
    if kind == "file" and target.is_dir():
        raise OutputError(f"output {target} is a directory; give a file name")
    existing = target if target.is_dir() else target.parent
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise OutputError(f"output {target}: {existing} is a file, not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise OutputError(f"output {target}: {existing} is not writable (permission denied)")
    if target.exists() and not inside and not os.access(target.parent, os.W_OK | os.X_OK):
        # Atomic writers replace `target` by a rename in its parent.
        raise OutputError(f"output {target}: its parent {target.parent} is not writable (permission denied)")
    return target


def _holder(path: Path) -> str:
    try:
        info = json.loads(path.read_text(encoding="utf-8") or "{}")
    except (OSError, ValueError):
        info = {}
    if not info:
        return "another run (starting now)"
    return (f"pid {info.get('pid')} on {info.get('host')}, started {info.get('started')}: "
            f"{info.get('command')}")


def remove_stale_temporaries(target: str | Path) -> list[Path]:
    """Delete what a killed writer of `target` left behind; call it while holding `output_lock(target)`.

    Atomic-writer temporaries (`.NAME.tmp-*`) beside and directly inside `target`, TensorFlow's
    `checkpoints/ckpt-N_temp/` directories, and `.NAME.old-*` copies (nothing deeper, so an output
    inside a shared directory never touches other programs' files). An `.old-*` copy whose target is missing (a
    kill between the two renames of `atomic_directory`) is the previous good state: it is put back.
    """
    target = Path(target)
    removed: list[Path] = []

    def sweep(directory: Path, pattern: str) -> None:
        for stale in sorted(directory.glob(pattern)):
            if ".old-" in stale.name:
                original = directory / stale.name[1:stale.name.rindex(".old-")]
                if not original.exists():
                    os.replace(stale, original)
                    continue
            shutil.rmtree(stale, ignore_errors=True) if stale.is_dir() else stale.unlink(missing_ok=True)
            removed.append(stale)

    if target.parent.is_dir():
        sweep(target.parent, f".{target.name}.old-*")
        sweep(target.parent, f".{target.name}.tmp-*")
    if target.is_dir():
        sweep(target, ".*.old-*")
        sweep(target, ".*.tmp-*")
        if (target / "checkpoints").is_dir():  # a pretraining run's checkpoints
            sweep(target / "checkpoints", ".*.tmp-*")
            sweep(target / "checkpoints", "ckpt-*_temp")  # tf.train.Checkpoint's sharded-save staging directory
    return removed


@contextlib.contextmanager
def output_lock(target: str | Path, kind: str = "directory", inside: bool = False,
                what: str = "--output") -> Iterator[Path]:
    """Hold an exclusive lock on the output `target` for the duration of the block.

    A second run on the same output stops at once with one line naming the holder (pid, host,
    command, start time). The lock is `fcntl.flock` on `.NAME.lock` beside `target`: the kernel
    drops it when the process dies, so a killed run never leaves a stale lock. Stale temporaries
    of killed writers are removed once the lock is held.
    """
    target = Path(target)
    check_output(target, kind, inside)
    path = lock_file_path(target, inside)
    created = not path.parent.exists()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as err:
        raise OutputError(f"{what} {target}: cannot create {path.parent} ({err.strerror})") from None
    while True:
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise OutputError(f"{what} {target}: cannot create the lock file {path} ({err.strerror})") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as err:
            os.close(fd)
            if err.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise OutputError(f"{what} {target}: cannot lock {path} ({err.strerror})") from None
            raise OutputError(f"{what} {target} is in use by {_holder(path)}; wait for it to finish "
                              "or choose another output") from None
        # The previous holder unlinks the file on release: if it did so between our open()
        # and flock(), we locked an orphan and must try again on the new file.
        try:
            same = os.fstat(fd).st_ino == os.stat(path).st_ino
        except FileNotFoundError:
            same = False
        if same:
            break
        os.close(fd)
    try:
        info = {"pid": os.getpid(), "host": socket.gethostname(), "command": shlex.join(sys.argv),
                "started": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")}
        os.ftruncate(fd, 0)
        os.write(fd, (json.dumps(info) + "\n").encode())
        remove_stale_temporaries(target)
        yield target
    finally:
        path.unlink(missing_ok=True)  # still locked here, so no other run can be using this file
        os.close(fd)
        if inside and created:  # a run that failed before writing anything leaves no empty directory
            with contextlib.suppress(OSError):
                path.parent.rmdir()
