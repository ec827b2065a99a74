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

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"


def keras_step_rate(args, batches) -> float:
    import keras
    import tensorflow as tf

    from keras_electra.config import ElectraConfig
    from keras_electra.pretraining.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    keras.utils.set_random_seed(0)
    config = ElectraConfig.from_preset(args.preset, vocab_size=30522)
    special = {"cls": 101, "sep": 102, "pad": 0, "mask": 103}
    pretrainer = ElectraPretrainer(config, special, seq_length=args.seq_length, seed=0,
                                   dtype=args.mixed_precision)
    pretrainer.build()
    pretrainer.compile(optimizer=create_optimizer(5e-4, 10_000, 100), jit_compile=not args.no_jit)
    data = tf.data.Dataset.from_tensor_slices(
        {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    ).batch(args.batch_size, drop_remainder=True).repeat()
    pretrainer.fit(data, steps_per_epoch=args.warmup, epochs=1, verbose=0)  # compile + warm up
    start = time.perf_counter()
    pretrainer.fit(data, steps_per_epoch=args.steps, epochs=1, verbose=0)
    seconds = time.perf_counter() - start
    return args.steps * args.batch_size * args.seq_length / seconds


def torch_step_rate(args, batches) -> float:
    """The same recipe in HF transformers: tied embeddings, 85/15 masking, Gumbel sampling, 50x disc loss."""
    import torch
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    torch.manual_seed(0)
    from keras_electra.config import ElectraConfig as OurConfig

    ours = OurConfig.from_preset(args.preset, vocab_size=30522)
    gen_cfg = ours.generator_config()

    def hf_config(c):
        return ElectraConfig(
            vocab_size=c.vocab_size, embedding_size=c.embedding_size, hidden_size=c.hidden_size,
            num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads,
            intermediate_size=c.intermediate_size, max_position_embeddings=c.max_position_embeddings,
        )

    disc = ElectraForPreTraining(hf_config(ours))
    gen = ElectraForMaskedLM(hf_config(gen_cfg))
    gen.electra.embeddings = disc.electra.embeddings  # tie word/position/type embeddings + LayerNorm
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    params = list({id(p): p for p in [*disc.parameters(), *gen.parameters()]}.values())
    optimizer = torch.optim.AdamW(params, lr=5e-4, eps=1e-6, weight_decay=0.01)
    disc.train()
    gen.train()
    max_pred = int((0.15 + 0.005) * args.seq_length)

    def step(batch):
        ids = torch.from_numpy(batch["token_ids"]).long()
        attn = torch.from_numpy(batch["padding_mask"]).long()
        types = torch.from_numpy(batch["segment_ids"]).long()
        candidates = (attn == 1) & (ids != 101) & (ids != 102)
        scores = torch.where(candidates, torch.rand(ids.shape), torch.full(ids.shape, -1.0))
        positions = scores.topk(max_pred, dim=1).indices
        count = (attn.sum(1).float() * 0.15).round().clamp(1, max_pred).long()
        used = torch.arange(max_pred)[None, :] < count[:, None]
        masked_flag = torch.zeros_like(ids, dtype=torch.bool).scatter(1, positions, used)
        to_mask = masked_flag & (torch.rand(ids.shape) < 0.85)
        gen_ids = torch.where(to_mask, torch.full_like(ids, 103), ids)
        labels = torch.where(masked_flag, ids, torch.full_like(ids, -100))
        out = gen(input_ids=gen_ids, attention_mask=attn, token_type_ids=types, labels=labels)
        with torch.no_grad():
            logits = out.logits.float()
            gumbel = -torch.log(-torch.log(torch.rand(logits.shape) + 1e-9) + 1e-9)
            sampled = (logits + gumbel).argmax(-1)
        fake = torch.where(masked_flag, sampled, ids)
        replaced = (fake != ids).float()
        disc_out = disc(input_ids=fake, attention_mask=attn, token_type_ids=types)
        weights = attn.float()
        disc_loss = (torch.nn.functional.binary_cross_entropy_with_logits(
            disc_out.logits, replaced, reduction="none") * weights).sum() / weights.sum()
        loss = out.loss + 50.0 * disc_loss
        optimizer.zero_grad()
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()

    for batch in batches[: args.warmup]:
        step(batch)
    start = time.perf_counter()
    for i in range(args.steps):
        step(batches[i % len(batches)])
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
    parser.add_argument("--no-jit", action="store_true")
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
    print(f"  keras_electra (XLA={'off' if args.no_jit else 'on'}, "
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
