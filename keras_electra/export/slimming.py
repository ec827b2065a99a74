"""Slimming for devices: drop the top transformer layers (keep k of N), quantise, and measure.

`slimming_table` exports one TFLite model per (kept layers, quantisation) and reports its
file size, LiteRT latency (batch 1, XNNPACK) and dev score. The layers are dropped from the
fine-tuned model as is: no re-training, so the score shows what the dropped layers carried.

    python -m keras_electra.export.slimming --model runs/sst2 --data ../shared/data/glue/SST-2 \\
        --keep 12 6 3 --quantize none dynamic int8
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from keras_electra.export.common import MODEL_KEYS


def _latency_ms(path: Path, inputs: dict[str, np.ndarray], repeats: int, num_threads: int | None) -> float:
    """Median LiteRT latency of one example (batch 1), after a warm-up run."""
    from keras_electra.export.tflite import load_interpreter

    runner = load_interpreter(path, num_threads=num_threads).get_signature_runner("token_ids")
    one = {k: inputs[k][:1] for k in MODEL_KEYS}
    runner(**one)
    times = []
    for i in range(repeats):
        row = {k: inputs[k][i % len(inputs[k]):][:1] for k in MODEL_KEYS}
        start = time.perf_counter()
        runner(**row)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)


def dev_score(predictor, task: str, examples: Sequence) -> dict[str, float]:
    """The task's dev metrics for a `Predictor` (any format), computed by the task runner."""
    from keras_electra.export.predictor import _ModelView
    from keras_electra.tasks.registry import get_task

    runner = get_task(task).runner
    view = _ModelView(predictor)
    predictions = runner.predict(view, list(examples), 64)
    return runner.score(task, list(examples), predictions, view)


def slimming_table(
    model_dir: str | Path,
    data: str | Path,
    keep_layers: Sequence[int] | None = None,
    quantize: Sequence[str] = ("none", "dynamic", "int8"),
    max_examples: int | None = None,
    output_dir: str | Path | None = None,
    num_calibration: int = 200,
    repeats: int = 50,
    num_threads: int | None = None,
    split: str = "dev",
) -> list[dict[str, Any]]:
    """One row per variant: keep_layers, quantize, bytes, latency_ms (batch 1), and the dev metric."""
    from keras_electra.export.cli import calibration_inputs
    from keras_electra.export.common import load_for_export
    from keras_electra.export.encoding import encode_examples
    from keras_electra.export.predictor import Predictor
    from keras_electra.export.tflite import export_tflite
    from keras_electra.tasks.registry import get_task, read_split

    model, info = load_for_export(model_dir)
    spec = get_task(info.task or "")
    examples = read_split(spec, data, split)[0]
    if max_examples:
        examples = random.Random(0).sample(examples, min(max_examples, len(examples)))
    inputs = encode_examples(model.preprocessor, info, examples[: max(repeats, 1)])
    keep_layers = list(keep_layers or [model.backbone.num_layers])
    calibration = calibration_inputs(model_dir, None, num_calibration) if "int8" in quantize else None
    rows = []
    with tempfile.TemporaryDirectory(prefix="electra-slim-") as tmp:
        out = Path(output_dir or tmp)
        for k in keep_layers:
            for q in quantize:
                path = export_tflite(model_dir, out / f"keep{k}-{q}.tflite", q, keep_layers=k,
                                     calibration_inputs=calibration if q == "int8" else None)
                scores = dev_score(Predictor.load(path), spec.name, examples)
                rows.append({"keep_layers": k, "quantize": q, "bytes": path.stat().st_size,
                             "latency_ms": _latency_ms(path, inputs, repeats, num_threads),
                             "metric": spec.metric, "score": float(scores[spec.metric]),
                             "num_examples": len(examples)})
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| layers kept | quantisation | size (MiB) | latency batch 1 (ms) | dev metric |",
             "|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['keep_layers']} | {r['quantize']} | {r['bytes'] / 2**20:.2f} | {r['latency_ms']:.2f} "
                     f"| {r['metric']} {r['score']:.4f} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_electra.export.slimming", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="fine-tuned model directory")
    parser.add_argument("--data", required=True, help="the task's data (directory or dev file)")
    parser.add_argument("--keep", type=int, nargs="+", help="layers to keep (default: all)")
    parser.add_argument("--quantize", nargs="+", default=["none", "dynamic", "int8"])
    parser.add_argument("--max-examples", type=int)
    parser.add_argument("--repeats", type=int, default=50)
    parser.add_argument("--threads", type=int)
    parser.add_argument("--output-dir", help="keep the .tflite files here")
    args = parser.parse_args(argv)
    rows = slimming_table(args.model, args.data, args.keep, args.quantize, args.max_examples, args.output_dir,
                          repeats=args.repeats, num_threads=args.threads)
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
