"""Every export format of one fine-tuned model, scored on a full dev (or test) set: the README's export table.

For a model directory written by `keras-electra finetune`, this runs `keras-electra export` once per
format (SavedModel, TFLite float32 / float16 / dynamic-range int8 / full-integer int8, ONNX), then
scores every file on the whole split with the code behind `keras-electra evaluate --model FILE`
(the task's own runner and metric), and prints one markdown row per format:

- the task metric and its difference from the Keras model, in points;
- agreement with the Keras model: the share of examples (classification) or words (NER) with
  the same predicted label;
- file size, and the median latency of one batch of 1 and of 32 dev examples (one thread by
  default, all formats timed round-robin so that load on the machine hits each alike).

    python scripts/export_table.py --model runs/sst2 --data ../shared/data/glue/SST-2 \\
        --output runs/sst2-exports --json runs/sst2-exports/table.json

Exports already in --output are reused (delete them to re-export). `--formats` picks a subset.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

from keras_electra.utils.timing import interleaved_median_ms

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

# name → (file or directory name, `keras-electra export` arguments)
FORMATS: dict[str, tuple[str, list[str]]] = {
    "keras": ("", []),
    "saved_model": ("saved_model", ["--format", "saved_model"]),
    "tflite float32": ("model-float32.tflite", ["--format", "tflite"]),
    "tflite float16": ("model-float16.tflite", ["--format", "tflite", "--quantize", "float16"]),
    "tflite dynamic int8": ("model-dynamic.tflite", ["--format", "tflite", "--quantize", "dynamic"]),
    "tflite int8": ("model-int8.tflite", ["--format", "tflite", "--quantize", "int8"]),
    "onnx": ("model.onnx", ["--format", "onnx"]),
}


def size_bytes(path: Path) -> int:
    if (path / "model.keras").is_file():  # a model directory: the weights file, not its other outputs
        return (path / "model.keras").stat().st_size
    if path.is_dir():
        return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())
    return path.stat().st_size


def export_all(model_dir: Path, output: Path, names: list[str], num_calibration: int) -> dict[str, Path]:
    """`keras-electra export` for each format not yet in `output`; returns name → path."""
    from keras_electra.cli import main as cli

    paths = {"keras": model_dir}
    for name in names:
        if name == "keras":
            continue
        file, arguments = FORMATS[name]
        path = output / file
        if not path.exists():
            extra = ["--num-calibration", str(num_calibration)] if "int8" in arguments else []
            start = time.perf_counter()
            if cli(["export", "--model", str(model_dir), "--output", str(path), *arguments, *extra]) != 0:
                raise SystemExit(f"export of {name} failed")
            print(f"exported {name} in {time.perf_counter() - start:.0f} s")
        paths[name] = path
    return paths


def predicted_labels(runner, examples, predictions, model) -> list:
    """One predicted label per example (classification) or per word (NER), to compare formats."""
    if hasattr(runner, "predicted_tags"):
        return [tag for tags in runner.predicted_tags(examples, predictions, model) for tag in tags]
    return list(predictions["scores"].argmax(-1))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a model directory written by `finetune`")
    parser.add_argument("--data", required=True, help="the task's data directory (as for `evaluate`)")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--output", required=True, type=Path, help="where the exports go (reused if present)")
    parser.add_argument("--formats", nargs="+", default=list(FORMATS), choices=list(FORMATS))
    parser.add_argument("--num-calibration", type=int, default=200, help="int8 calibration examples")
    parser.add_argument("--threads", type=int, default=1, help="threads of every runtime in the latency columns")
    parser.add_argument("--runs", type=int, default=20, help="timed runs at batch 1 (batch 32: a quarter)")
    parser.add_argument("--batch-size", type=int, default=32, help="scoring batch size")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)

    import numpy as np
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from keras_electra.export.common import MODEL_KEYS
    from keras_electra.export.predictor import Predictor, _ModelView
    from keras_electra.tasks.outputs import load_finetuned
    from keras_electra.tasks.registry import get_task, read_split

    names = ["keras"] + [n for n in args.formats if n != "keras"]
    args.output.mkdir(parents=True, exist_ok=True)
    paths = export_all(args.model, args.output, names, args.num_calibration)

    keras_model, info = load_finetuned(args.model)
    spec = get_task(info["task"])
    runner = spec.runner
    examples = read_split(spec, args.data, args.split)[0]
    print(f"{spec.name} {args.split}: {len(examples)} examples, metric {spec.metric}")

    rows: list[dict] = []
    reference_labels = None
    views, backends = {}, {}
    for name in names:
        if name == "keras":
            view = keras_model
        else:
            predictor = Predictor.load(paths[name], num_threads=args.threads)
            view = _ModelView(predictor)
            backends[name] = predictor
        start = time.perf_counter()
        predictions = runner.predict(view, examples, args.batch_size)
        seconds = time.perf_counter() - start
        scores = runner.score(spec.name, examples, predictions, view)
        labels = predicted_labels(runner, examples, predictions, view)
        if reference_labels is None:
            reference_labels = labels
        agreement = float(np.mean([a == b for a, b in zip(labels, reference_labels)]))
        rows.append({"format": name, "path": str(paths[name]), "bytes": size_bytes(paths[name]),
                     "metric": spec.metric, "score": float(scores[spec.metric]), "agreement": agreement,
                     "scoring_seconds": seconds, "num_examples": len(examples)})
        views[name] = view
        print(f"{name:<22} {spec.metric} {scores[spec.metric]:.4f}  agreement {agreement:.4f}  ({seconds:.0f} s)")

    # Latency: the same dev inputs for every format, batch 1 and 32.
    from keras_electra.export.common import export_info
    from keras_electra.export.encoding import encode_examples

    inputs = encode_examples(keras_model.preprocessor, export_info(keras_model), examples[:32])
    latency: dict[int, dict[str, float]] = {}
    for batch in (1, 32):
        x = {k: np.ascontiguousarray(inputs[k][:batch]).astype(np.int32) for k in MODEL_KEYS}
        fns = {"keras": (lambda x=x: keras_model.predict_on_batch(x))}
        fns.update({n: (lambda x=x, p=p, b=batch: p.backend.logits(x, b)) for n, p in backends.items()})
        latency[batch] = interleaved_median_ms(fns, args.runs if batch == 1 else max(args.runs // 4, 3), warmup=2)
    for row in rows:
        row["latency_ms_batch1"] = latency[1][row["format"]]
        row["latency_ms_batch32"] = latency[32][row["format"]]

    reference = rows[0]["score"]
    print(f"\n| format | size (MiB) | {spec.metric} | Δ vs Keras (points) | agreement with Keras "
          f"| batch 1 (ms) | batch 32 (ms) |")
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        delta = 100 * (row["score"] - reference)
        print(f"| {row['format']} | {row['bytes'] / 2**20:.1f} | {100 * row['score']:.2f} | {delta:+.2f} "
              f"| {100 * row['agreement']:.2f}% | {row.get('latency_ms_batch1', float('nan')):.1f} "
              f"| {row.get('latency_ms_batch32', float('nan')):.0f} |")
    if args.json:
        args.json.write_text(json.dumps({"task": spec.name, "split": args.split, "threads": args.threads,
                                         "model": str(args.model), "rows": rows}, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
