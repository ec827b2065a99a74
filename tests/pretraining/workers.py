"""Start processes of one multi-worker run on loopback, bounded in time, and always clean them up.

Each process runs in its own session (process group); `Cluster.close()` (used as a context manager)
kills every group that is still alive, so a test that fails or times out leaves no process behind.
Logs go to files beside the run and are attached to every failure message.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.conftest import REPO

KILLED = -signal.SIGKILL


def free_ports(count: int) -> list[int]:
    """Ports the kernel hands out now on 127.0.0.1 (held together, so they differ)."""
    sockets = [socket.socket(socket.AF_INET, socket.SOCK_STREAM) for _ in range(count)]
    try:
        for item in sockets:
            item.bind(("127.0.0.1", 0))
        return [item.getsockname()[1] for item in sockets]
    finally:
        for item in sockets:
            item.close()


def base_env(backend: str = "tensorflow") -> dict[str, str]:
    env = {key: value for key, value in os.environ.items()
           if not key.startswith(("TF_CONFIG", "KERAS_DISTRIBUTION_", "XLA_FLAGS"))}
    env.update(PYTHONPATH=str(REPO), TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND=backend, PYTHONUNBUFFERED="1")
    return env


class Cluster:
    """Processes started together; `wait` bounds them by one deadline, `close` kills what is left."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = Path(log_dir)
        self.processes: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> None:
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = self.log_dir / f"{name}.log"
        with open(log, "a", encoding="utf-8") as handle:  # a restart appends: both runs stay readable
            handle.write(f"===== start: {' '.join(argv[-20:])}\n")
            handle.flush()
            process = subprocess.Popen([sys.executable, *argv], cwd=REPO, env=env, stdout=handle,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        self.processes.append((name, process, log))

    def wait(self, timeout: float) -> dict[str, int]:
        """Every process's exit code; past `timeout` seconds, kill them all and fail with their logs."""
        deadline = time.monotonic() + timeout
        codes = {}
        for name, process, _ in self.processes:
            try:
                codes[name] = process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                self.close()
                raise AssertionError(f"{name} still ran after {timeout:.0f} s\n{self.logs()}") from None
        self.processes = []
        return codes

    def close(self) -> None:
        for _, process, _ in self.processes:
            if process.poll() is None:
                with contextlib.suppress(ProcessLookupError):  # it ended meanwhile
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)
        self.processes = []

    def logs(self, tail: int = 4000) -> str:
        parts = []
        for log in sorted(self.log_dir.glob("*.log")):
            parts.append(f"----- {log.name} (last {tail} characters)\n{log.read_text(errors='replace')[-tail:]}")
        return "\n".join(parts)

    def log(self, name: str) -> str:
        return (self.log_dir / f"{name}.log").read_text(errors="replace")

    def __enter__(self) -> Cluster:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def cli(*args: str, kill_at_step: int | None = None) -> list[str]:
    """`python ARGV` for `keras-electra ARGS`, killed by SIGKILL right after step `kill_at_step` (and its
    checkpoint) when given (tests/killer.py)."""
    if kill_at_step is None:
        return ["-m", "keras_electra", *args]
    return ["-m", "tests.killer", "step", str(kill_at_step), "--", *args]


def logical_devices_cli(count: int, *args: str, kill_at_step: int | None = None) -> list[str]:
    """`keras-electra ARGS` in one process with `count` logical CPU devices (tests/pretraining/logical_devices_cli)."""
    argv = ["-m", "tests.pretraining.logical_devices_cli", str(count), *args]
    if kill_at_step is None:
        return argv
    code = ("import sys; from tests.pretraining import logical_devices_cli as m; m.setup(int(sys.argv[2])); "
            "from tests import killer; killer.install('step', sys.argv[1]); "
            "from keras_electra import cli; sys.exit(cli.main(sys.argv[3:]))")
    return ["-c", code, str(kill_at_step), str(count), *args]
