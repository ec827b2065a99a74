"""Pretraining throughput: keras_electra's full ELECTRA step vs the same step in HF transformers (PyTorch).

Prints tokens/s for ELECTRA-Small (batch 32, length 128 by default) for both, their ratio, and
the tf.data pipeline's rate beside the rate at which the step consumes sequences.

    .venv/bin/python benchmarks/pretrain_throughput.py [--preset small] [--steps 20] [--corpus DIR]
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402

from keras_electra.utils.devices import JIT_CHOICES, resolve_jit_compile  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def keras_step_rate(args, batches) -> float:
    import keras
    import tensorflow as tf

    from keras_electra.config import ElectraConfig
    from keras_electra.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    keras.utils.set_random_seed(0)
    config = ElectraConfig.from_preset(args.preset, vocab_size=30522)
    special = {"cls": 101, "sep": 102, "pad": 0, "mask": 103}
    pretrainer = ElectraPretrainer(config, special, seq_length=args.seq_length, seed=0,
                                   dtype=args.mixed_precision)
    pretrainer.build()
    pretrainer.compile(optimizer=create_optimizer(5e-4, 10_000, 100), jit_compile=resolve_jit_compile(args.jit))
    data = tf.data.Dataset.from_tensor_slices(
        {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    ).batch(args.batch_size, drop_remainder=True).repeat()
    pretrainer.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)  # compile + warm up
    start = time.perf_counter()
    pretrainer.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return args.steps * args.batch_size * args.seq_length / seconds


def torch_step_rate(args, batches) -> float:
    """The same recipe in HF transformers (`hf_reference.TorchElectra`)."""
    from hf_reference import TorchElectra

    total = args.warmup + args.steps
    reference = TorchElectra(args.preset, 5e-4, total_steps=10 * total, warmup_steps=0, seq_length=args.seq_length)
    for batch in batches[: args.warmup]:
        reference.step(batch)
    start = time.perf_counter()
    for i in range(args.steps):
        reference.step(batches[i % len(batches)])
    seconds = time.perf_counter() - start
    return args.steps * args.batch_size * args.seq_length / seconds


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--seq-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--corpus", default=str(SHARED / "english_novels"))
    parser.add_argument("--mixed-precision", choices=["mixed_bfloat16", "mixed_float16"])
    parser.add_argument("--jit", choices=JIT_CHOICES, default="auto",
                        help="XLA for the train step (auto: on GPU/TPU only, as `keras-electra pretrain`)")
    parser.add_argument("--no-jit", dest="jit", action="store_const", const="off", help="same as --jit off")
    parser.add_argument("--skip-torch", action="store_true")
    args = parser.parse_args()

    from keras_electra.data.pretraining_data import pretraining_dataset
    from keras_electra.data.tokenizer import ElectraTokenizer

    tokenizer = ElectraTokenizer(SHARED / "vocab" / "bert_uncased_vocab.txt")
    ds = pretraining_dataset([args.corpus], tokenizer, seq_length=args.seq_length,
                             batch_size=args.batch_size, seed=0)
    batches = [{k: v.numpy() for k, v in b.items()} for b in ds.take(8)]

    print(f"ELECTRA-{args.preset} full pretraining step, batch {args.batch_size}, length {args.seq_length}, "
          f"{os.cpu_count()} CPU cores")
    ours = keras_step_rate(args, batches)
    print(f"  keras_electra (XLA={'on' if resolve_jit_compile(args.jit) else 'off'}, "
          f"{args.mixed_precision or 'float32'}): {ours:10.0f} tokens/s")
    if not args.skip_torch:
        ref = torch_step_rate(args, batches)
        print(f"  HF transformers on PyTorch CPU:         {ref:10.0f} tokens/s")
        print(f"  ratio keras_electra / PyTorch:          {ours / ref:10.2f}x")
    consumed = ours / args.seq_length
    produced = pipeline_rate(args, tokenizer)
    print(f"  tf.data pipeline:                       {produced:10.0f} sequences/s")
    print(f"  train step consumes:                    {consumed:10.1f} sequences/s")
    print(f"  pipeline / consumption:                 {produced / consumed:10.1f}x")


if __name__ == "__main__":
    main()
