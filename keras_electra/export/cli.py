"""`keras-electra export`: argument parsing only; the work is in the export modules."""

from __future__ import annotations

import json
import random
from pathlib import Path

from keras_electra.errors import ExportError

# Here rather than in export.common: building the parser must not import Keras or TensorFlow.
FORMATS = ("saved_model", "tflite", "onnx")
QUANTIZATIONS = ("none", "float16", "dynamic", "int8")


def register(subparsers) -> None:
    p = subparsers.add_parser(
        "export", help="SavedModel (TF Serving), TFLite or ONNX from a fine-tuned model",
        description="Export a fine-tuned model directory (model.keras + vocab.txt + tokenizer.json + task.json). "
        "saved_model writes OUTPUT/<version>/ (the TF Serving layout; serve OUTPUT as model NAME); tflite and onnx "
        "write one file. `keras-electra predict --model OUTPUT` runs any of them.",
    )
    p.add_argument("--model", required=True, metavar="DIR", help="fine-tuned model directory (or, for onnx and "
                   "tflite, a SavedModel written by this command)")
    p.add_argument("--format", required=True, choices=FORMATS)
    p.add_argument("--output", required=True, metavar="PATH")
    p.add_argument("--quantize", default="none", choices=QUANTIZATIONS,
                   help="tflite only: float16 weights, dynamic-range int8, or full-integer int8 (calibrated)")
    p.add_argument("--max-seq-len", type=int, metavar="L", help="fixed sequence length (default: the fine-tuning one)")
    p.add_argument("--keep-layers", type=int, metavar="K", help="keep only the bottom K transformer layers")
    p.add_argument("--version", type=int, default=1, metavar="N", help="saved_model: version directory (default 1)")
    pair = p.add_mutually_exclusive_group()
    pair.add_argument("--pair", dest="pair", action="store_true", default=None,
                      help="classifier on sentence pairs (default: from task.json)")
    pair.add_argument("--single", dest="pair", action="store_false", help="classifier on single sentences")
    p.add_argument("--tflite-input", choices=("token_ids", "text"), default="token_ids",
                   help="tflite: token ids (builtin ops) or raw text tokenised on the device (tensorflow-text ops)")
    p.add_argument("--calibration-data", metavar="PATH",
                   help="int8: the task's training data (file or directory) or a text file, one input per line "
                   "(default: the training files recorded beside the model)")
    p.add_argument("--num-calibration", type=int, default=200, metavar="N", help="int8: calibration examples")
    p.add_argument("--opset", type=int, default=17, metavar="N", help="onnx: opset version")
    p.add_argument("--json", action="store_true", help="print a JSON summary")
    p.set_defaults(func=_export)


def _export(args) -> int:
    from keras_electra.utils.io import output_lock

    if args.format != "tflite" and args.quantize != "none":
        raise ExportError(f"--quantize {args.quantize} applies to --format tflite only")
    # One writer per output, and an unwritable or occupied --output is refused before the
    # (slow) conversion starts. saved_model writes OUTPUT/<version>/ inside a directory.
    saved_model = args.format == "saved_model"
    with output_lock(args.output, kind="directory" if saved_model else "file", inside=saved_model):
        path = _write_export(args)
    size = sum(f.stat().st_size for f in Path(path).rglob("*") if f.is_file()) if Path(path).is_dir() \
        else Path(path).stat().st_size
    summary = {"format": args.format, "output": str(path), "bytes": size, "quantize": args.quantize}
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"wrote {path} ({size / 2**20:.2f} MiB)")
    return 0


def _write_export(args) -> Path:
    if args.format == "saved_model":
        from keras_electra.export.saved_model import export_saved_model

        path = export_saved_model(args.model, args.output, args.version, args.pair, args.max_seq_len,
                                  args.keep_layers)
    elif args.format == "onnx":
        from keras_electra.export.onnx import export_onnx

        path = export_onnx(args.model, args.output, args.max_seq_len, args.keep_layers, args.pair, args.opset)
    elif args.tflite_input == "text":
        from keras_electra.export.tflite import export_tflite_text

        path = export_tflite_text(args.model, args.output, args.quantize, args.max_seq_len, args.keep_layers,
                                  args.pair)
    else:
        from keras_electra.export.tflite import export_tflite

        calibration = None
        if args.quantize == "int8":
            calibration = calibration_inputs(args.model, args.calibration_data, args.num_calibration,
                                             args.max_seq_len, args.pair)
        path = export_tflite(args.model, args.output, args.quantize, args.max_seq_len, args.keep_layers,
                             args.pair, calibration_inputs=calibration, num_calibration=args.num_calibration)
    return Path(path)


# --------------------------------------------------------------------- calibration
def training_files(model_dir: str | Path) -> list[Path]:
    """The training files a fine-tuned model was trained on: `task.json` or `results.json` `data_files`."""
    model_dir = Path(model_dir)
    for name in ("task.json", "results.json"):
        file = model_dir / name
        if not file.is_file():
            continue
        from keras_electra.utils.io import read_json

        recorded = read_json(file)
        files = recorded.get("data_files") if isinstance(recorded, dict) else None
        if isinstance(files, dict):
            files = files.get("train")
        if files:
            return [Path(f) for f in files]
    return []


def calibration_inputs(model_path: str | Path, data: str | None, limit: int, max_seq_len: int | None = None,
                       pair: bool | None = None):
    """Model input arrays for int8 calibration: `limit` training examples (a seeded sample).

    model_path: a fine-tuned model directory, or a SavedModel written by `export` (its
    metadata names the model directory it came from, whose training files are used).
    data: the task's training data (file or directory) or a text file with one input per line.
    """
    from keras_electra.data import tfds_data
    from keras_electra.errors import DataError
    from keras_electra.export.common import rebuild_preprocessor
    from keras_electra.export.encoding import encode_examples, encode_texts
    from keras_electra.export.onnx import is_saved_model
    from keras_electra.export.saved_model import prepare_model, read_saved_model_info
    from keras_electra.tasks.registry import TableSource, get_task, read_split

    if is_saved_model(Path(model_path)):
        info, vocabulary = read_saved_model_info(model_path)
        preprocessor = rebuild_preprocessor(info, vocabulary)
        origin = Path(info.source) if info.source else None
    else:
        _, preprocessor, info = prepare_model(model_path, pair, max_seq_len)
        origin = Path(model_path)
    sources = [Path(data)] if data else (training_files(origin) if origin else [])
    # A table model reads its calibration data with its training columns.
    table = TableSource.recorded(origin) if origin else None
    if not sources:
        raise ExportError(f"{model_path}: no training data recorded beside the model (task.json/results.json "
                          "data_files); pass --calibration-data PATH")
    examples: list = []
    for source in sources:
        if tfds_data.is_tfds(str(source)):  # trained with --tfds: read the same TFDS dataset
            name, tfds_dir = tfds_data.parse_source(str(source))
            examples.extend(read_split(get_task(info.task or ""), name, "train", table, tfds_dir)[0])
            continue
        if not source.exists():
            raise ExportError(f"calibration data not found: {source}")
        try:
            examples.extend(read_split(get_task(info.task or ""), source, "train", table)[0])
        except DataError:
            if source.is_dir():
                raise
            lines = [line for line in source.read_text(encoding="utf-8").splitlines() if line.strip()]
            random.Random(0).shuffle(lines)
            return encode_texts(preprocessor, info, lines[:limit])
    random.Random(0).shuffle(examples)
    return encode_examples(preprocessor, info, examples[:limit])
