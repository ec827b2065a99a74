"""Inference latency of an ELECTRA-Small classifier in every export format, against HF transformers.

One run times batch 1 and batch 32 at sequence length 128 (real SST-2 dev sentences, packed
by the model's own preprocessor) for:

- Keras (`predict_on_batch`) and the SavedModel `token_ids` signature;
- TFLite float32, float16, dynamic-range int8 and full-integer int8, in the LiteRT
  interpreter (XNNPACK is its default CPU delegate);
- ONNX Runtime (CPU provider);
- Hugging Face `ElectraForSequenceClassification` on PyTorch, same size: the reference.

Prints the median latency of each, its ratio to the reference, the file sizes, and checks
the targets: TFLite int8 ≤ 0.5× the reference, ONNX Runtime ≤ 1×, int8 file ≤ 30% of float32.
The weights are random (latency does not depend on them); int8 is calibrated on SST-2 train.

`--model DIR` times a fine-tuned classifier instead (e.g. the MiniLM SST-2 model), at its own
sequence length, against `ElectraForSequenceClassification` built from the same weights: the
encoder saved in ELECTRA layout (`save_huggingface`) and the head copied (the paper's head, a
dense layer on [CLS], replaces HF's two-layer head when the model has it). The script checks
that both give the same logits before it times anything.

    .venv/bin/python benchmarks/inference_latency.py [--model DIR] [--threads N] [--runs 30] [--json results.json]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_electra.utils.timing import interleaved_median_ms  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KERAS_ELECTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
KEYS = ("token_ids", "segment_ids", "padding_mask")


def torch_runner(model):
    """batch of model inputs -> the PyTorch model's logits, without autograd."""
    import torch

    def run(batch):
        with torch.inference_mode():
            return model(input_ids=torch.from_numpy(batch["token_ids"].astype(np.int64)),
                         token_type_ids=torch.from_numpy(batch["segment_ids"].astype(np.int64)),
                         attention_mask=torch.from_numpy(batch["padding_mask"].astype(np.int64))).logits

    return run


def build_classifier(seq_length: int):
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.classifier import ElectraClassifier

    keras.utils.set_random_seed(0)
    tokenizer = ElectraTokenizer(SHARED / "vocab" / "bert_uncased_vocab.txt")
    config = ElectraConfig.from_preset("small", vocab_size=tokenizer.vocabulary_size)
    backbone = ElectraBackbone.from_electra_config(config, name="backbone")
    model = ElectraClassifier.from_backbone(backbone, tokenizer, seq_length, num_classes=2, label_names=["0", "1"])
    return model, config


def torch_reference(config, threads: int):
    import torch
    from transformers import ElectraConfig as HFConfig
    from transformers import ElectraForSequenceClassification

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    hf = HFConfig(vocab_size=config.vocab_size, embedding_size=config.embedding_size, hidden_size=config.hidden_size,
                  num_hidden_layers=config.num_layers, num_attention_heads=config.num_heads,
                  intermediate_size=config.intermediate_size, hidden_act="gelu", num_labels=2)
    model = ElectraForSequenceClassification(hf).eval()

    return torch_runner(model)


def load_classifier(model_dir: str):
    """A fine-tuned classifier directory → (model, its backbone): the model the other runtimes export."""
    from keras_electra.export.common import load_for_export

    model, info = load_for_export(model_dir)
    if info.task_type != "classification":
        raise SystemExit(f"{model_dir}: a {info.task_type} model; --model takes a sequence classifier")
    return model, model.backbone


def torch_reference_from(model, threads: int, tmp: Path):
    """`ElectraForSequenceClassification` holding `model`'s weights (encoder and head), in eval mode."""
    import torch
    from transformers import ElectraForSequenceClassification

    from keras_electra.convert.huggingface import save_huggingface

    torch.set_num_threads(threads)
    encoder_dir = save_huggingface(model.backbone, tmp / "hf-encoder")
    hf = ElectraForSequenceClassification.from_pretrained(encoder_dir, num_labels=model.num_classes).eval()

    def tensor(variable):
        return torch.from_numpy(np.asarray(variable.numpy(), np.float32).T.copy())

    with torch.no_grad():
        if model.head == "electra":  # the paper's head: one dense layer on [CLS] (dropout off at inference)
            linear = torch.nn.Linear(model.backbone.hidden_size, model.num_classes)
            linear.weight.copy_(tensor(model.classifier.kernel))
            linear.bias.copy_(torch.from_numpy(np.asarray(model.classifier.bias.numpy())))

            class PaperHead(torch.nn.Module):
                def __init__(self) -> None:
                    super().__init__()
                    self.linear = linear

                def forward(self, features):
                    return self.linear(features[:, 0, :])

            hf.classifier = PaperHead()
        else:
            for part in ("dense", "out_proj"):
                layer, ours = getattr(hf.classifier, part), getattr(model.classifier, part)
                layer.weight.copy_(tensor(ours.kernel))
                layer.bias.copy_(torch.from_numpy(np.asarray(ours.bias.numpy())))

    return torch_runner(hf)


def _keywords(runner):
    return lambda batch: runner(**batch)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", metavar="DIR", help="a fine-tuned classifier directory (default: a random "
                        "ELECTRA-Small at --seq-length); the reference then holds its weights")
    parser.add_argument("--seq-length", type=int, default=128, help="random model only (--model: its own)")
    parser.add_argument("--exports", metavar="DIR", help="with --model: time the files scripts/export_table.py "
                        "wrote for it (DIR/saved_model, DIR/model-*.tflite, DIR/model.onnx) instead of exporting")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--runs", type=int, default=30, help="timed runs at batch 1 (batch 32: a third)")
    parser.add_argument("--num-calibration", type=int, default=200)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args(argv)

    import tensorflow as tf

    # The same thread budget for every runtime (TF's pools must be set before its first op).
    tf.config.threading.set_intra_op_parallelism_threads(args.threads)
    tf.config.threading.set_inter_op_parallelism_threads(args.threads)

    from keras_electra.data.readers.glue import read_glue
    from keras_electra.export.common import export_info
    from keras_electra.export.encoding import encode_examples

    if args.model:
        model, config = load_classifier(args.model)
        args.seq_length = model.preprocessor.seq_length
        title = f"{args.model}: {model.backbone.num_layers} layers, hidden {model.backbone.hidden_size}"
    else:
        model, config = build_classifier(args.seq_length)
        title = "ELECTRA-Small classifier (random weights)"
    info = export_info(model)
    dev = read_glue("sst2", SHARED / "glue" / "SST-2", "dev")
    train = read_glue("sst2", SHARED / "glue" / "SST-2", "train")[: args.num_calibration]
    inputs = encode_examples(model.preprocessor, info, dev[: max(args.batches)])
    calibration = encode_examples(model.preprocessor, info, train)
    print(f"{title} ({model.count_params() / 1e6:.1f}M parameters), sequence {args.seq_length}, "
          f"{args.threads} threads, {len(dev)} SST-2 dev sentences available")

    tmp = Path(tempfile.mkdtemp(prefix="electra-bench-"))
    try:
        return _run(args, model, config, inputs, calibration, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run(args, model, config, inputs, calibration, tmp: Path) -> int:
    import tensorflow as tf

    from keras_electra.export.onnx import export_onnx, onnx_session
    from keras_electra.export.saved_model import export_saved_model
    from keras_electra.export.tflite import export_tflite, load_interpreter

    if args.exports:  # the files of scripts/export_table.py for this model (same `keras-electra export`)
        from keras_electra.export.saved_model import resolve_saved_model_dir

        found = Path(args.exports)
        saved = resolve_saved_model_dir(found / "saved_model")
        files = {name: found / file for name, file in (
            ("tflite float32", "model-float32.tflite"), ("tflite float16", "model-float16.tflite"),
            ("tflite dynamic int8", "model-dynamic.tflite"), ("tflite int8", "model-int8.tflite"),
            ("onnx", "model.onnx"))}
    else:
        saved = export_saved_model(model, tmp / "serving" / "small")
        files = {"tflite float32": export_tflite(saved, tmp / "f32.tflite"),
                 "tflite float16": export_tflite(saved, tmp / "f16.tflite", "float16"),
                 "tflite dynamic int8": export_tflite(saved, tmp / "dyn.tflite", "dynamic"),
                 "tflite int8": export_tflite(saved, tmp / "int8.tflite", "int8", calibration_inputs=calibration),
                 "onnx": export_onnx(saved, tmp / "model.onnx")}
    sizes = {name: path.stat().st_size for name, path in files.items()}

    loaded = tf.saved_model.load(str(saved))
    signature = loaded.signatures["token_ids"]
    session = onnx_session(files["onnx"], args.threads)
    interpreters = {name: load_interpreter(path, num_threads=args.threads).get_signature_runner("token_ids")
                    for name, path in files.items() if name.startswith("tflite")}
    if args.model:
        reference = torch_reference_from(model, args.threads, tmp)
        probe = {k: np.ascontiguousarray(v[:8]).astype(np.int32) for k, v in inputs.items()}
        gap = float(np.abs(reference(probe).numpy() - np.asarray(model.predict_on_batch(probe))).max())
        print(f"max |logit - keras| of the PyTorch reference (same weights), 8 dev sentences: {gap:.2e}")
        if gap > 1e-3:
            raise SystemExit("the PyTorch reference does not hold the same model; not timing it")
    else:
        reference = torch_reference(config, args.threads)

    runners = {
        "hf transformers (torch)": lambda b: reference(b),
        "keras": lambda b: model.predict_on_batch(b),
        "saved_model": lambda b: signature(**{k: tf.constant(v) for k, v in b.items()}),
        **{name: _keywords(r) for name, r in interpreters.items()},
        "onnxruntime": lambda b: session.run(["logits"], b),
    }
    results: dict[str, dict] = {"sizes": sizes, "latency_ms": {}, "threads": args.threads,
                                "seq_length": args.seq_length, "model": args.model or "random ELECTRA-Small"}
    keras_out = np.asarray(model.predict_on_batch({k: v[:1] for k, v in inputs.items()}))
    for batch_size in args.batches:
        batch = {k: np.ascontiguousarray(v[:batch_size]).astype(np.int32) for k, v in inputs.items()}
        runs = args.runs if batch_size == 1 else max(args.runs // 3, 5)
        timings = interleaved_median_ms({name: functools.partial(fn, batch) for name, fn in runners.items()}, runs)
        results["latency_ms"][batch_size] = timings
        ref = timings["hf transformers (torch)"]
        print(f"\nbatch {batch_size}: median of {runs} interleaved runs")
        print(f"  {'format':<26}{'ms':>10}{'× reference':>14}")
        for name, ms in timings.items():
            print(f"  {name:<26}{ms:>10.2f}{ms / ref:>14.2f}")
        best = min(v for k, v in timings.items() if k != "hf transformers (torch)")
        print(f"  ratio keras_electra (Keras) / PyTorch at batch {batch_size}: {timings['keras'] / ref:.2f}; "
              f"fastest format / PyTorch: {best / ref:.2f}")
    for name in interpreters:
        out = interpreters[name](**{k: v[:1] for k, v in inputs.items()})["logits"]
        print(f"max |logit - keras| at batch 1: {name}: {np.abs(out - keras_out).max():.2e}")
    out = session.run(["logits"], {k: v[:1] for k, v in inputs.items()})[0]
    print(f"max |logit - keras| at batch 1: onnx: {np.abs(out - keras_out).max():.2e}")

    print("\nfile sizes")
    for name, size in sizes.items():
        print(f"  {name:<26}{size / 2**20:>10.2f} MiB{size / sizes['tflite float32']:>8.0%} of float32")
    checks = {}
    for batch_size, timings in results["latency_ms"].items():
        ref = timings["hf transformers (torch)"]
        best_int8 = min(timings["tflite int8"], timings["tflite dynamic int8"])
        checks[f"tflite int8 <= 0.5x reference (batch {batch_size})"] = best_int8 <= 0.5 * ref
        checks[f"onnxruntime <= 1x reference (batch {batch_size})"] = timings["onnxruntime"] <= ref
    checks["int8 size <= 30% of float32"] = sizes["tflite int8"] <= 0.3 * sizes["tflite float32"]
    results["targets"] = checks
    print("\ntargets")
    for name, ok in checks.items():
        print(f"  {'met   ' if ok else 'MISSED'} {name}")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
