"""Latency measurement shared by `benchmarks/inference_latency.py` and `scripts/export_table.py`."""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable


def interleaved_median_ms(fns: dict[str, Callable[[], object]], runs: int, warmup: int = 3) -> dict[str, float]:
    """Median latency of each function in milliseconds, timed round-robin so that load changes on a
    shared machine hit every contender alike."""
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(runs):
        for name, fn in fns.items():
            start = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) * 1000 for name, t in times.items()}
