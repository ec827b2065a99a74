"""Pretraining throughput: keras_electra's full ELECTRA step on TensorFlow and JAX vs HF transformers (PyTorch).

Prints tokens/s of the full pretraining step (masking, generator, Gumbel sampling, discriminator,
both losses, AdamW with clipping) for each backend and preset, each measured in its own
subprocess (KERAS_BACKEND is fixed per process), beside the same step written with Hugging Face
transformers on PyTorch (`hf_reference.TorchElectra`), plus the input pipelines' rates.

    .venv/bin/python benchmarks/pretrain_throughput.py                        # tiny and small, all backends
    .venv/bin/python benchmarks/pretrain_throughput.py --backend jax --preset tiny --steps 10
    .venv/bin/python benchmarks/pretrain_throughput.py --skip-torch --json out.json

The batches come from the tf.data pipeline over the novels (packed once, in this process) and are
handed to every worker as arrays, so all backends train on the same data.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
KERAS_BACKENDS = ("tensorflow", "jax")
BACKENDS = (*KERAS_BACKENDS, "torch")
FEATURES = ("token_ids", "segment_ids", "padding_mask")


# ------------------------------------------------------------------------------------------ workers
def keras_step_rate(args, batches: list[dict[str, np.ndarray]]) -> dict:
    """tokens/s of ElectraPretrainer.fit on the backend this process was started with."""
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer
    from keras_electra.utils.devices import resolve_jit_compile

    backend = keras.backend.backend()
    keras.utils.set_random_seed(0)
    config = ElectraConfig.from_preset(args.preset, vocab_size=30522)
    special = {"cls": 101, "sep": 102, "pad": 0, "mask": 103}
    pretrainer = ElectraPretrainer(config, special, seq_length=args.seq_length, seed=0, dtype=args.mixed_precision)
    pretrainer.build()
    jit = resolve_jit_compile(args.jit)
    pretrainer.compile(optimizer=create_optimizer(5e-4, 10_000, 100), jit_compile=jit)
    if backend == "tensorflow":
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices(
            {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
        ).batch(args.batch_size, drop_remainder=True).repeat()
    else:
        from keras_electra.data.shards import cycled

        data = cycled(batches)
    started = time.perf_counter()
    pretrainer.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)  # compile + warm up
    warmup = time.perf_counter() - started
    start = time.perf_counter()
    history = pretrainer.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return {"tokens_per_second": args.steps * args.batch_size * args.seq_length / seconds,
            "step_seconds": seconds / args.steps, "warmup_seconds": warmup, "jit_compile": jit,
            "loss": float(history.history["loss"][-1]), "tensorflow_imported": "tensorflow" in sys.modules}


def torch_step_rate(args, batches: list[dict[str, np.ndarray]]) -> dict:
    """The same recipe in HF transformers (`hf_reference.TorchElectra`)."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch
    from hf_reference import TorchElectra

    total = args.warmup + args.steps
    reference = TorchElectra(args.preset, 5e-4, total_steps=10 * total, warmup_steps=0, seq_length=args.seq_length)
    started = time.perf_counter()
    for batch in batches[: args.warmup]:
        reference.step(batch)
    warmup = time.perf_counter() - started
    start = time.perf_counter()
    for i in range(args.steps):
        reference.step(batches[i % len(batches)])
    seconds = time.perf_counter() - start
    return {"tokens_per_second": args.steps * args.batch_size * args.seq_length / seconds,
            "step_seconds": seconds / args.steps, "warmup_seconds": warmup, "threads": torch.get_num_threads()}


def worker(args) -> None:
    """One (backend, preset) measurement; prints one JSON line."""
    data = np.load(args.batches)
    count = len(data["token_ids"]) // args.batch_size
    batches = [{k: data[k][i * args.batch_size:(i + 1) * args.batch_size] for k in FEATURES} for i in range(count)]
    result = torch_step_rate(args, batches) if args.worker == "torch" else keras_step_rate(args, batches)
    print("RESULT " + json.dumps({"backend": args.worker, "preset": args.preset, **result}), flush=True)


# ---------------------------------------------------------------------------------------- the parent
def pipeline_rate(args, tokenizer) -> float:
    """Packed sequences per second produced by the tf.data pipeline from raw text."""
    from keras_electra.data.pretraining_data import pretraining_dataset

    ds = pretraining_dataset([args.corpus], tokenizer, seq_length=args.seq_length,
                             batch_size=args.batch_size, seed=1)
    iterator = iter(ds)
    for _ in range(5):
        next(iterator)
    n = 100
    start = time.perf_counter()
    for _ in range(n):
        next(iterator)
    return n * args.batch_size / (time.perf_counter() - start)


def shard_rate(directory: str, batch_size: int, seconds: float = 3.0) -> float:
    """Sequences per second from ArrayRecord shards through grain (`keras_electra.data.shards`)."""
    from keras_electra.data.shards import batches_per_second

    return batches_per_second(directory, batch_size, seconds) * batch_size


def run_worker(args, backend: str, preset: str, batches_file: str) -> dict:
    command = [sys.executable, __file__, "--worker", backend, "--preset", preset, "--batches", batches_file,
               "--batch-size", str(args.batch_size), "--seq-length", str(args.seq_length),
               "--steps", str(args.steps), "--warmup", str(args.warmup), "--jit", args.jit]
    if args.mixed_precision:
        command += ["--mixed-precision", args.mixed_precision]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    if backend in KERAS_BACKENDS:
        env["KERAS_BACKEND"] = backend
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=REPO)
    lines = [line for line in done.stdout.splitlines() if line.startswith("RESULT ")]
    if done.returncode != 0 or not lines:
        tail = [line for line in (done.stderr or done.stdout).strip().splitlines() if "Traceback" in line
                or "Error" in line][-2:]
        return {"backend": backend, "preset": preset, "error": f"exit {done.returncode}: " + " | ".join(tail)}
    return json.loads(lines[-1][len("RESULT "):])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=BACKENDS,
                        help="repeat for several (default: tensorflow, jax and the torch reference)")
    parser.add_argument("--preset", action="append", help="repeat for several (default: tiny and small)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--corpus", default=str(SHARED / "english_novels"))
    parser.add_argument("--shards", help="also time `build-data --format arrayrecord` shards read by grain")
    parser.add_argument("--mixed-precision", choices=["mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--jit", default="auto", choices=["auto", "on", "off"],
                        help="XLA for the Keras step (auto: GPU/TPU on TensorFlow, always on JAX; "
                        "as `keras-electra pretrain`)")
    parser.add_argument("--no-jit", dest="jit", action="store_const", const="off", help="same as --jit off")
    parser.add_argument("--skip-torch", action="store_true", help="leave out the PyTorch reference")
    parser.add_argument("--json", help="also write the results to this JSON file")
    parser.add_argument("--worker", choices=BACKENDS, help=argparse.SUPPRESS)
    parser.add_argument("--batches", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        args.preset = args.preset[0]
        worker(args)
        return

    backends = args.backend or list(BACKENDS)
    if args.skip_torch:
        backends = [b for b in backends if b != "torch"]
    presets = args.preset or ["tiny", "small"]

    from keras_electra.data.pretraining_data import pretraining_dataset
    from keras_electra.data.tokenizer import ElectraTokenizer

    tokenizer = ElectraTokenizer(SHARED / "vocab" / "bert_uncased_vocab.txt")
    ds = pretraining_dataset([args.corpus], tokenizer, seq_length=args.seq_length,
                             batch_size=args.batch_size, seed=0)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds.take(8)]
    print(f"full ELECTRA pretraining step, batch {args.batch_size}, length {args.seq_length}, "
          f"{os.cpu_count()} CPU cores, {args.mixed_precision or 'float32'}, one process per row", flush=True)
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        batches_file = str(Path(tmp) / "batches.npz")
        np.savez(batches_file, **{k: np.concatenate([b[k] for b in batches]) for k in FEATURES})
        for preset in presets:
            for backend in backends:
                result = run_worker(args, backend, preset, batches_file)
                results.append(result)
                if "error" in result:
                    print(f"  {preset:6s} {backend:10s} failed: {result['error']}", flush=True)
                    continue
                jit = "" if backend == "torch" else f", XLA {'on' if result['jit_compile'] else 'off'}"
                print(f"  {preset:6s} {backend:10s} {result['tokens_per_second']:10.0f} tokens/s "
                      f"({result['step_seconds']:.3f} s/step{jit})", flush=True)
    rates = {(r["preset"], r["backend"]): r["tokens_per_second"] for r in results if "error" not in r}
    for preset in presets:
        ref = rates.get((preset, "torch"))
        for backend in KERAS_BACKENDS:
            if ref and (preset, backend) in rates:
                print(f"  {preset:6s} {backend} / PyTorch: {rates[(preset, backend)] / ref:.2f}x")
        if (preset, "tensorflow") in rates and (preset, "jax") in rates:
            print(f"  {preset:6s} jax / tensorflow: {rates[(preset, 'jax')] / rates[(preset, 'tensorflow')]:.2f}x")
    consumed = max(rates.values(), default=0) / args.seq_length
    produced = pipeline_rate(args, tokenizer)
    summary = {"tf_data_sequences_per_second": produced, "fastest_step_sequences_per_second": consumed}
    print(f"  tf.data pipeline:   {produced:10.0f} sequences/s (fastest step consumes {consumed:.1f})")
    if args.shards:
        summary["grain_shards_sequences_per_second"] = shard_rate(args.shards, args.batch_size)
        print(f"  grain shards:       {summary['grain_shards_sequences_per_second']:10.0f} sequences/s")
    if args.json:
        from keras_electra.utils.io import write_json

        write_json(args.json, {"args": vars(args), "results": results, **summary})


if __name__ == "__main__":
    main()
