"""`keras-electra ARGS` in a process that first splits its CPU into N logical devices.

    python -m tests.pretraining.logical_devices_cli N ARGS...

The one-process reference of the multi-worker tests (`test_multiworker.py`): `--strategy mirrored` over N
logical CPU devices has the replica layout of N workers with one device each (replica ids 0..N-1, one
shard of every global batch each). TensorFlow: logical devices, set before its runtime starts. JAX: N host
platform devices (XLA_FLAGS, set before JAX starts).
"""

from __future__ import annotations

import os
import sys


def main(count: int, args: list[str]) -> int:
    setup(count)
    from keras_electra import cli

    return cli.main(args)


def setup(count: int) -> None:
    """Split the CPU into `count` devices; first thing in the process."""
    if os.environ.get("KERAS_BACKEND", "tensorflow") == "jax":
        flags = os.environ.get("XLA_FLAGS", "")
        os.environ["XLA_FLAGS"] = f"{flags} --xla_force_host_platform_device_count={count}".strip()
    else:
        import tensorflow as tf

        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * count)


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]), sys.argv[2:]))
