"""`pretrain --strategy multiworker` for real: two worker processes on loopback, on each backend.

The reference is one process with the same replica layout: `--strategy mirrored` over two logical CPU
devices (tests/pretraining/logical_devices_cli.py). Why that and not one replica:
- Masking, generator sampling and dropout draw per replica. On TensorFlow each replica folds its replica id
  into the mirrored generator state (`layers/random.py`), and two workers with one device each have replica
  ids 0 and 1, exactly as two local devices do; one replica alone would draw other masks. On JAX the draws
  are made once for the global batch, whatever the layout.
- Worker i trains on the i-th half of every global batch, as device i does: on TensorFlow through the DATA
  auto-shard policy that `--strategy multiworker` sets (each worker packs the whole stream and keeps its
  part), on JAX through the trainer's per-process rows.

So the two runs compute the same numbers up to float32 summation order. Measured: losses agree to ~1e-7
relative and every checkpointed variable (weights, Adam moments) to ~2e-7 absolute on TensorFlow. On JAX
they agree bit for bit. The assertions allow
1e-5. A negative control shows how far either failure moves them. With worker 1 given `--seed 1`, its half
of every global batch differs. After two steps, 127 of the 246 checkpointed variables then differ from the
reference by more than 1e-5 (by up to 5e-3), and the final evaluation loss is 31.99 against 31.78.
Without the all-reduce, each worker would apply the gradient of its own half batch. That is a different
gradient in the same way, so the assertions would catch it too.

Resume: both workers are killed by SIGKILL right after step 2 (and the chief's checkpoint of it;
tests/killer.py). The non-chief's scratch directory is deleted, and both are started again with the same
command. Each must report that it resumed at step 2 from the chief's `--output/checkpoints`, finish at step
4 and end where the reference (killed and resumed the same way) ends. That covers the weights, the Adam
moments and the step counter. Worker 1 evaluates its half of the evaluation batches on its own resumed
weights, so the evaluation losses would also show a non-chief that resumed to another state.

Each test takes minutes (2 shared cores: TensorFlow 158-211 s, JAX 448-574 s, mostly process start-up and
XLA compilation in four phases of three processes), hence `slow`.
"""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import NOVELS, VOCAB_UNCASED
from tests.pretraining.workers import KILLED, Cluster, base_env, cli, free_ports, logical_devices_cli

pytestmark = pytest.mark.slow
CORPUS = NOVELS / "Doyle_Hound_1902.txt"
KILL_AT, STEPS, TIMEOUT = 2, 4, 600  # TIMEOUT: seconds per phase (all processes of it)
TOLERANCE = 1e-5


def _args(output: Path) -> list[str]:
    return ["pretrain", "--preset", "tiny", "--corpus", str(CORPUS), "--vocab", str(VOCAB_UNCASED),
            "--steps", str(STEPS), "--warmup-steps", "2", "--batch-size", "8", "--seq-length", "32",
            "--eval-batches", "2", "--log-every", "1", "--checkpoint-every", "1", "--output", str(output)]


def _tf_worker_env(ports: list[int], index: int) -> dict[str, str]:
    cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
    return {**base_env("tensorflow"), "TF_CONFIG": json.dumps({"cluster": cluster,
                                                               "task": {"type": "worker", "index": index}})}


def _run_twice(cluster: Cluster, runs: dict[Path, object], read) -> list[dict[str, np.ndarray]]:
    """For each output, `start(kill_at_step)` launches the processes of its run; all runs go at once, first
    killed after step KILL_AT, then resumed. Returns each chief's checkpoint of step KILL_AT (read by `read`)
    as the kill left it."""
    for start in runs.values():
        start(KILL_AT)
    codes = cluster.wait(TIMEOUT)
    assert all(code == KILLED for code in codes.values()), f"{codes}\n{cluster.logs()}"
    suffix = ".npz" if read is _npz_values else ""
    killed = [read(output / "checkpoints" / f"ckpt-{KILL_AT}{suffix}") for output in runs]
    for output, start in runs.items():
        shutil.rmtree(output / "workers", ignore_errors=True)  # only the chief's files remain
        start(None)
    codes = cluster.wait(TIMEOUT)
    assert all(code == 0 for code in codes.values()), f"{codes}\n{cluster.logs()}"
    return killed


def _checkpoint_values(path: Path) -> dict[str, np.ndarray]:
    import tensorflow as tf

    reader = tf.train.load_checkpoint(str(path))
    return {key: reader.get_tensor(key) for key in reader.get_variable_to_shape_map()
            if key != "_CHECKPOINTABLE_OBJECT_GRAPH"}


def _assert_same_state(reference: dict[str, np.ndarray], workers: dict[str, np.ndarray], what: str) -> None:
    assert set(reference) == set(workers), what
    moved = 0
    for key, value in reference.items():
        other = workers[key]
        if value.dtype.kind in "iub":
            assert np.array_equal(value, other), (what, key)
            continue
        gap = float(np.abs(value.astype(np.float64) - other).max(initial=0.0))
        assert gap <= TOLERANCE, (what, key, gap)
        moved += 1
    assert moved > 50, what  # weights and Adam moments were compared, not only counters


def _assert_same_metrics(reference: dict, workers: dict) -> None:
    for phase in ("before", "after"):
        for key in ("loss", "gen_loss", "disc_loss", "disc_auc", "gen_accuracy"):
            one, two = float(reference[phase][key]), float(workers[phase][key])
            assert abs(one - two) <= TOLERANCE * max(abs(one), 1.0), (phase, key, one, two)
    # Training moved the evaluation loss far more than the tolerance: the comparison is not vacuous.
    assert abs(reference["after"]["loss"] - reference["before"]["loss"]) > 1e3 * TOLERANCE


def _run_against_reference(tmp_path: Path, backend: str, start_workers, values) -> tuple[list, dict[str, str]]:
    """Both runs twice (killed at KILL_AT, then resumed): the workers, and the reference, one process with two
    devices under `--strategy mirrored` in `tmp_path/reference`. (state at the kill, each process's log)."""
    reference, run = tmp_path / "reference", tmp_path / "run"
    with Cluster(tmp_path / "logs") as cluster:
        def start_reference(kill):
            cluster.start("reference", logical_devices_cli(2, *_args(reference), "--strategy", "mirrored",
                                                           kill_at_step=kill), base_env(backend))

        killed = _run_twice(cluster, {reference: start_reference, run: lambda kill: start_workers(cluster, kill)},
                            values)
        return killed, {name: cluster.log(name) for name in ("worker0", "worker1", "reference")}


@pytest.mark.tensorflow_only
def test_two_tensorflow_workers_train_and_resume_like_one_process_with_two_replicas(tmp_path):
    started = time.perf_counter()
    reference, run = tmp_path / "reference", tmp_path / "run"

    def start_workers(cluster, kill):
        ports = free_ports(2)  # chosen now, for each start
        for index in (0, 1):
            cluster.start(f"worker{index}", cli(*_args(run), "--strategy", "multiworker", kill_at_step=kill),
                          _tf_worker_env(ports, index))

    killed, logs = _run_against_reference(tmp_path, "tensorflow", start_workers, _checkpoint_values)

    for name, text in logs.items():
        assert f"Resuming from step {KILL_AT} (" in text, (name, text[-3000:])
    assert f"Resuming from step {KILL_AT} ({run / 'checkpoints' / f'ckpt-{KILL_AT}'})" in logs["worker1"]
    assert not (run / "workers").exists()  # the non-chief's scratch is gone, its checkpoints were copies
    metrics = json.loads((run / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert (metrics["workers"], metrics["replicas"], expected["replicas"]) == (2, 2, 2)
    assert (metrics["steps"], metrics["trained_steps_this_run"]) == (STEPS, STEPS - KILL_AT)
    _assert_same_metrics(expected, metrics)
    _assert_same_state(*killed, f"step {KILL_AT}, before the kill")
    _assert_same_state(_checkpoint_values(reference / "checkpoints" / f"ckpt-{KILL_AT + 1}"),
                       _checkpoint_values(run / "checkpoints" / f"ckpt-{KILL_AT + 1}"), f"step {KILL_AT + 1}")
    _assert_same_state(_checkpoint_values(reference / "checkpoints" / f"ckpt-{STEPS}"),
                       _checkpoint_values(run / "checkpoints" / f"ckpt-{STEPS}"), "step 4")
    print(f"two TensorFlow workers, killed and resumed, and the reference: {time.perf_counter() - started:.0f} s")


def _npz_values(path: Path) -> dict[str, np.ndarray]:
    with np.load(path) as data:
        return {str(name): data[f"v{i}"] for i, name in enumerate(data["paths"])}


def test_two_jax_processes_train_and_resume_like_one_process_with_two_devices(tmp_path):
    """The same on KERAS_BACKEND=jax: `jax.distributed` on loopback (gloo collectives on CPU) and DataParallel
    over both processes' devices, against DataParallel over two host devices in one process."""
    started = time.perf_counter()
    reference, run = tmp_path / "reference", tmp_path / "run"

    def start_workers(cluster, kill):
        (port,) = free_ports(1)  # chosen now, for each start
        for index in (0, 1):
            cluster.start(f"worker{index}", cli(*_args(run), "--strategy", "multiworker", "--coordinator",
                                                f"127.0.0.1:{port}", "--num-processes", "2",
                                                "--process-id", str(index), kill_at_step=kill),
                          base_env("jax"))

    killed, logs = _run_against_reference(tmp_path, "jax", start_workers, _npz_values)

    for name, text in logs.items():
        assert f"Resuming from step {KILL_AT} (" in text, (name, text[-3000:])
    assert f"Resuming from step {KILL_AT} ({run / 'checkpoints' / f'ckpt-{KILL_AT}.npz'})" in logs["worker1"]
    assert not (run / "workers").exists()
    metrics = json.loads((run / "metrics.json").read_text())
    expected = json.loads((reference / "metrics.json").read_text())
    assert (metrics["backend"], metrics["workers"], metrics["replicas"], expected["replicas"]) == ("jax", 2, 2, 2)
    assert (metrics["steps"], metrics["trained_steps_this_run"]) == (STEPS, STEPS - KILL_AT)
    _assert_same_metrics(expected, metrics)
    _assert_same_state(*killed, f"step {KILL_AT}, before the kill")
    for step in (KILL_AT + 1, STEPS):
        _assert_same_state(_npz_values(reference / "checkpoints" / f"ckpt-{step}.npz"),
                           _npz_values(run / "checkpoints" / f"ckpt-{step}.npz"), f"step {step}")
    print(f"two JAX processes, killed and resumed, and the reference: {time.perf_counter() - started:.0f} s")
