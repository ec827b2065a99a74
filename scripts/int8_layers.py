"""Which layers lose accuracy in full-integer int8: TFLite's QuantizationDebugger on a fine-tuned model.

Builds the same calibrated int8 model as `keras-electra export --format tflite --quantize int8`
(same calibration sample, same float islands), runs float and int8 side by side on `--debug`
training examples, and prints the tensors with the largest error relative to their int8 step
(RMSE / scale: 0.29 is the pure rounding error of a uniform quantiser; well above 1 means the
int8 range is too coarse for that tensor), then the error summed per op type and per layer.

    python scripts/int8_layers.py --model runs/minilm-sst2 [--debug 32] [--top 25] [--csv out.csv]
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import re
import tempfile
from collections import defaultdict
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def layer_errors(model_dir: str, num_calibration: int, num_debug: int) -> list[dict]:
    import numpy as np
    import tensorflow as tf

    from keras_electra.export.cli import calibration_inputs
    from keras_electra.export.common import IDS_SIGNATURE, MODEL_KEYS
    from keras_electra.export.saved_model import export_token_ids_saved_model, prepare_model
    from keras_electra.export.tflite import _converter, _representative, int8_float_nodes

    calibration = calibration_inputs(model_dir, None, num_calibration)
    model, _, info = prepare_model(model_dir, None, None, None)
    with tempfile.TemporaryDirectory(prefix="electra-int8-debug-") as tmp:
        saved = export_token_ids_saved_model(model, info, Path(tmp) / "saved")
        converter = _converter(saved, IDS_SIGNATURE)
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
        converter.representative_dataset = _representative(calibration, num_calibration)
        order: list[str] = []  # the interpreter's input order, known once the calibrated model exists

        def debug():  # the debugger feeds lists in input order (the converter's dataset is by name)
            for i in range(1, num_debug + 1):
                yield [np.asarray(calibration[k][-i:][:1], np.int32) for k in order]

        def rmse(diffs):
            return float(np.sqrt(np.mean(np.square(diffs))))

        options = tf.lite.experimental.QuantizationDebugOptions(layer_debug_metrics={"rmse": rmse})
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug,
                                                             debug_options=options)
        options.denylisted_nodes = int8_float_nodes(debugger.calibrated_model)
        inputs = tf.lite.Interpreter(model_content=debugger.calibrated_model).get_input_details()
        order.extend(next(k for k in MODEL_KEYS if k in d["name"]) for d in inputs)
        debugger = tf.lite.experimental.QuantizationDebugger(converter=converter, debug_dataset=debug,
                                                             debug_options=options)
        debugger.run()
        buffer = io.StringIO()
        debugger.layer_statistics_dump(buffer)
    rows = list(csv.DictReader(io.StringIO(buffer.getvalue())))
    for row in rows:
        scale = float(row["scale"]) or 1.0
        row["rmse/scale"] = float(row["rmse"]) / scale
    return sorted(rows, key=lambda r: -r["rmse/scale"])


def layer_of(name: str) -> str:
    match = re.search(r"(?:layer|transformer_layer)_(\d+)", name)
    if match:
        return f"layer {match.group(1)}"
    return "embeddings" if "embedding" in name else "head/other"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, help="a fine-tuned model directory")
    parser.add_argument("--num-calibration", type=int, default=200)
    parser.add_argument("--debug", type=int, default=32, help="training examples run through both models")
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--csv", type=Path, help="write every tensor's statistics here")
    args = parser.parse_args(argv)
    rows = layer_errors(args.model, args.num_calibration, args.debug)
    print(f"{len(rows)} int8 tensors; worst {args.top} by RMSE / scale:")
    for row in rows[: args.top]:
        print(f"  {row['rmse/scale']:8.2f}  {row['op_name']:<18} {row['tensor_name'][:110]}")
    for key, title in ((lambda r: r["op_name"], "op type"), (lambda r: layer_of(r["tensor_name"]), "layer")):
        totals: dict[str, list[float]] = defaultdict(list)
        for row in rows:
            totals[key(row)].append(row["rmse/scale"])
        print(f"\nby {title}: count, mean and max RMSE / scale")
        for name, values in sorted(totals.items(), key=lambda kv: -max(kv[1])):
            print(f"  {name:<22}{len(values):>5}{sum(values) / len(values):>9.2f}{max(values):>9.2f}")
    if args.csv:
        with args.csv.open("w", newline="") as f:
            writer = csv.DictWriter(f, list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
