"""Who is the chief of a multi-worker run, and one-line errors for a cluster given wrong (no processes started).

The two-process runs themselves are in test_multiworker.py (slow)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from keras_electra.errors import ElectraError
from keras_electra.pretraining.trainer import (
    PretrainingOptions,
    WorkerRole,
    jax_cluster,
    tf_worker_role,
    worker_role,
)


def _tf_config(monkeypatch, cluster: dict, kind: str, index: int) -> None:
    monkeypatch.setenv("TF_CONFIG", json.dumps({"cluster": cluster, "task": {"type": kind, "index": index}}))


def test_tf_config_names_the_chief_and_the_scratch_directories(monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    assert tf_worker_role() == WorkerRole(0, 1)
    workers = {"worker": ["127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"]}
    _tf_config(monkeypatch, workers, "worker", 2)
    role = tf_worker_role()
    assert (role, role.chief) == (WorkerRole(2, 3), False)
    assert role.write_dir(Path("out")) == Path("out/workers/worker-2")
    _tf_config(monkeypatch, workers, "worker", 0)  # no chief task: worker 0 is the chief (TensorFlow's rule)
    assert tf_worker_role().chief and tf_worker_role().write_dir(Path("out")) == Path("out")
    with_chief = {"chief": ["127.0.0.1:9"], **workers}
    _tf_config(monkeypatch, with_chief, "chief", 0)
    assert tf_worker_role() == WorkerRole(0, 4)
    _tf_config(monkeypatch, with_chief, "worker", 0)
    assert tf_worker_role() == WorkerRole(1, 4)


def test_a_wrong_tf_config_is_one_line(monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with pytest.raises(ElectraError, match="TF_CONFIG is not a cluster specification"):
        tf_worker_role()
    _tf_config(monkeypatch, {"worker": ["127.0.0.1:1"]}, "worker", 1)
    with pytest.raises(ElectraError, match="task worker 1 is not a chief or worker of its cluster"):
        tf_worker_role()
    _tf_config(monkeypatch, {"worker": ["127.0.0.1:1"], "evaluator": ["127.0.0.1:2"]}, "evaluator", 0)
    with pytest.raises(ElectraError, match="task evaluator 0"):
        tf_worker_role()


def test_jax_cluster_options_and_keras_variables(monkeypatch):
    for name in ("KERAS_DISTRIBUTION_JOB_ADDRESSES", "KERAS_DISTRIBUTION_NUM_PROCESSES",
                 "KERAS_DISTRIBUTION_PROCESS_ID"):
        monkeypatch.delenv(name, raising=False)
    options = PretrainingOptions(strategy="multiworker")
    assert jax_cluster(options) == (None, None, None)  # jax.distributed detects the cluster itself
    given = PretrainingOptions(strategy="multiworker", coordinator="10.0.0.1:1234", num_processes=2, process_id=1)
    assert jax_cluster(given) == ("10.0.0.1:1234", 2, 1)
    monkeypatch.setenv("KERAS_DISTRIBUTION_JOB_ADDRESSES", "10.0.0.1:1234,10.0.0.2:1234")
    monkeypatch.setenv("KERAS_DISTRIBUTION_NUM_PROCESSES", "2")
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "0")
    assert jax_cluster(options) == ("10.0.0.1:1234", 2, 0)  # the first address coordinates
    monkeypatch.setenv("KERAS_DISTRIBUTION_PROCESS_ID", "two")
    with pytest.raises(ElectraError, match="KERAS_DISTRIBUTION_PROCESS_ID='two' is not an integer"):
        jax_cluster(options)
    monkeypatch.delenv("KERAS_DISTRIBUTION_PROCESS_ID")
    with pytest.raises(ElectraError, match="give --coordinator HOST:PORT, --num-processes N and --process-id I"):
        jax_cluster(options)
    with pytest.raises(ElectraError, match="--process-id 2 is not in 0..1"):
        jax_cluster(PretrainingOptions(strategy="multiworker", coordinator="h:1", num_processes=2, process_id=2))


def test_cluster_options_are_refused_where_they_mean_nothing():
    import keras

    options = PretrainingOptions(strategy="mirrored", coordinator="127.0.0.1:1", num_processes=2, process_id=0)
    with pytest.raises(ElectraError, match="--coordinator, --num-processes, --process-id: for --strategy "
                                           "multiworker on JAX only"):
        worker_role(options)
    if keras.backend.backend() == "tensorflow":  # TensorFlow's cluster is TF_CONFIG's
        with pytest.raises(ElectraError, match="TensorFlow reads its cluster from TF_CONFIG"):
            worker_role(PretrainingOptions(strategy="multiworker", process_id=0))
