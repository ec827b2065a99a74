"""ELECTRA on the lent GPU machine (one H200, JAX and PyTorch, no TensorFlow): pack here, run there.

    # here (TensorFlow packs the novels; pip fetches the wheels):
    python benchmarks/accelerator/accelerator.py pack
    # there, through the device tool (carry: benchmarks/accelerator/carry):
    bash benchmarks/accelerator/run.sh --budget-s 300
    # here, with what came back:
    python benchmarks/accelerator/accelerator.py unpack --from DIR --output runs/h200
    # here, the whole chain on JAX CPU, tiny model, 30 s budget, TensorFlow blocked in the run:
    python benchmarks/accelerator/accelerator.py dry-run

`run` does, on JAX with bf16 mixed precision and XLA (jit):
1. throughput of the full ELECTRA pretraining step (masking, generator, sampling, discriminator,
   both losses, AdamW) at batch 128 × length 128 for ELECTRA-Small: tokens/s and model FLOPs
   utilisation against the H200's bf16 dense peak (`train_flops_per_step` gives the formula);
2. pretraining from the carried ArrayRecord shards for a wall-clock budget, exporting the
   discriminator and generator weights (float32, canonical TF1 names, safetensors files of at most
   15 MiB) and metrics.json into $OUT at every checkpoint, so a run cut short still returns weights.
See README.md beside this file.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
if str(REPO) not in sys.path:  # `python benchmarks/accelerator/accelerator.py` from anywhere
    sys.path.insert(1, str(REPO))

MiB = 2**20
CARRY_LIMIT = 64 * MiB  # the working tree + carried paths that travel to the machine
CARRY_MARGIN = 3 * MiB  # for files the tree gains before the call
OUT_FILE_LIMIT = 16 * MiB  # each file back from $OUT
OUT_FILES = 8
OUT_TOTAL = 64 * MiB
WEIGHT_FILE_BYTES = 15 * MiB  # a weights file, with room for its safetensors header
# NVIDIA H200 SXM datasheet: 1,979 TFLOP/s BF16 Tensor Core "with sparsity", i.e. 989.5 dense.
H200_BF16_DENSE_PEAK = 989.5e12
# A plain 8192³ bf16 matmul measured on these machines (.library/device/KINDS.md): the practical ceiling.
H200_BF16_MATMUL_MEASURED = 788e12
# Wheels the machine lacks (its image has jax, numpy, absl, rich, h5py, ml-dtypes, etils, cloudpickle,
# protobuf, safetensors ...; KINDS.md). Versions: the ones installed here, so both sides run the same code.
WHEELS = ("keras", "namex", "optree", "grain", "array_record", "portpicker")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
DEVICE_PYTHON = "3.12"
# ArrayRecord file bytes per packed example of 128 (uint16 ids, zstd per record), measured on the novels.
BYTES_PER_EXAMPLE_128 = 330  # 323 measured
NOVELS = REPO.parent / "shared" / "data" / "english_novels"
VOCAB = REPO.parent / "shared" / "data" / "vocab" / "bert_uncased_vocab.txt"


# ------------------------------------------------------------------------------------------ sizes
def tree_bytes(repo: Path = REPO) -> int:
    """Bytes of the files that travel anyway: tracked, and untracked but not ignored."""
    try:
        listing = subprocess.run(["git", "-C", str(repo), "ls-files", "-z", "--cached", "--others",
                                  "--exclude-standard"], capture_output=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return 0
    total = 0
    for name in set(listing.decode().split("\0")) - {""}:
        path = repo / name
        if path.is_file() and not path.is_symlink():
            total += path.stat().st_size
    return total


def dir_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


# ------------------------------------------------------------------------------------------- FLOPs
def encoder_forward_flops(hidden: int, ffn: int, layers: int, seq: int, embedding: int) -> int:
    """Forward FLOPs of one sequence through the embedding projection and the transformer layers.

    Per token and layer: Q, K, V, output projections 2·4h², FFN 2·2hf, attention scores QKᵀ and
    the weighted sum of values 2·2·s·h. Softmax, LayerNorm, GELU and embedding gathers are left out.
    """
    per_token = layers * (2 * (4 * hidden * hidden + 2 * hidden * ffn) + 4 * seq * hidden)
    if embedding != hidden:
        per_token += 2 * embedding * hidden
    return seq * per_token


def train_flops_per_step(config, batch: int, seq: int, max_predictions: int) -> dict[str, int]:
    """Model FLOPs of one ELECTRA pretraining step: 3 × forward (the backward pass costs two forwards).

    Discriminator: encoder + RTD head (2h² + 2h per token). Generator: its encoder + the MLM head on
    the `max_predictions` gathered positions only (2·h_g·E + 2·E·V per position), as the step computes.
    """
    gen = config.generator_config()
    disc_forward = encoder_forward_flops(config.hidden_size, config.intermediate_size, config.num_layers, seq,
                                         config.embedding_size) + seq * (2 * config.hidden_size ** 2
                                                                         + 2 * config.hidden_size)
    gen_forward = encoder_forward_flops(gen.hidden_size, gen.intermediate_size, gen.num_layers, seq,
                                        gen.embedding_size) + max_predictions * (
        2 * gen.hidden_size * gen.embedding_size + 2 * gen.embedding_size * gen.vocab_size)
    return {"discriminator_forward_per_sequence": disc_forward, "generator_forward_per_sequence": gen_forward,
            "train_step": 3 * batch * (disc_forward + gen_forward)}


# ------------------------------------------------------------------------------------------ weights
def export_weights(pretrainer, directory: Path, extra: dict[str, Any] | None = None) -> list[str]:
    """The discriminator and generator as float32 tensors under canonical (official TF1) names, in
    safetensors files of at most `WEIGHT_FILE_BYTES`; the shared embeddings once. Atomic: the
    directory is replaced whole. Returns the file names."""
    import numpy as np
    from safetensors.numpy import save_file

    from keras_electra.utils.io import atomic_directory

    tensors: dict[str, np.ndarray] = {}
    for model in (pretrainer.discriminator, pretrainer.generator):
        for name, variable in model.canonical_weights().items():
            tensors.setdefault(name, np.asarray(variable.numpy() if hasattr(variable, "numpy") else variable,
                                                dtype=np.float32))
    groups: list[dict[str, np.ndarray]] = [{}]
    sizes = [0]
    for name in sorted(tensors, key=lambda n: -tensors[n].nbytes):  # largest first: fewer files
        size = tensors[name].nbytes
        if size > WEIGHT_FILE_BYTES:
            raise ValueError(f"{name} has {size} bytes, over the {WEIGHT_FILE_BYTES} a returned file may hold")
        for i, used in enumerate(sizes):
            if used + size <= WEIGHT_FILE_BYTES:
                groups[i][name] = tensors[name]
                sizes[i] += size
                break
        else:
            groups.append({name: tensors[name]})
            sizes.append(size)
    names = [f"weights-{i:02d}-of-{len(groups):02d}.safetensors" for i in range(len(groups))]
    metadata = {k: json.dumps(v) for k, v in (extra or {}).items()}
    with atomic_directory(directory) as tmp:
        for name, group in zip(names, groups):
            save_file(group, str(tmp / name), metadata={"format": "keras_electra.canonical", **metadata})
    return names


def read_weights(directory: Path) -> dict[str, Any]:
    from safetensors.numpy import load_file

    files = sorted(directory.glob("weights-*.safetensors"))
    if not files:
        raise SystemExit(f"no weights-*.safetensors in {directory}")
    expected = int(files[0].stem.split("-of-")[1])
    if len(files) != expected:
        raise SystemExit(f"{directory} holds {len(files)} weights files of {expected}")
    tensors: dict[str, Any] = {}
    for file in files:
        tensors.update(load_file(str(file)))
    return tensors


# --------------------------------------------------------------------------------------------- pack
def pack(args: argparse.Namespace) -> dict[str, Any]:
    """Build the carry folder: wheels, keras_electra's source, ArrayRecord shards, manifest.json."""
    from importlib import metadata as importlib_metadata

    from keras_electra.utils.io import atomic_directory, write_json

    output = Path(args.output)
    tree = tree_bytes()
    with atomic_directory(output) as tmp:
        wheels: dict[str, int] = {}
        if not args.no_wheels:
            pins = [f"{name}=={importlib_metadata.version(name)}" for name in WHEELS]
            command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:",
                       "--python-version", DEVICE_PYTHON, "--implementation", "cp", "-d", str(tmp / "wheels"),
                       *[f"--platform={p}" for p in PLATFORMS], *pins]
            subprocess.run(command, check=True)
            wheels = {p.name: p.stat().st_size for p in sorted((tmp / "wheels").glob("*.whl"))}
        shutil.copytree(REPO / "keras_electra", tmp / "src" / "keras_electra",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        fixed = tree + dir_bytes(tmp) + CARRY_MARGIN
        shard_budget = CARRY_LIMIT - fixed
        if shard_budget <= 0:
            raise SystemExit(f"no room for shards: the working tree ({tree / MiB:.1f} MiB) and the wheels and "
                             f"source ({dir_bytes(tmp) / MiB:.1f} MiB) already fill the {CARRY_LIMIT // MiB} MiB")
        max_examples = args.max_examples
        if max_examples is None:
            max_examples = int(shard_budget / (BYTES_PER_EXAMPLE_128 * args.seq_length / 128))
        from keras_electra.data.pretraining_data import write_arrayrecords
        from keras_electra.data.tokenizer import ElectraTokenizer

        tokenizer = ElectraTokenizer(args.vocab, lower_case=not args.cased)
        started = time.perf_counter()
        shard_meta = write_arrayrecords(args.corpus, tokenizer, tmp / "shards", seq_length=args.seq_length,
                                        shard_size=args.shard_size, seed=args.seed, max_examples=max_examples)
        shards_bytes = dir_bytes(tmp / "shards")
        carry = dir_bytes(tmp)
        total = tree + carry
        manifest = {
            "wheels": wheels, "device_python": DEVICE_PYTHON,
            "shards": {k: shard_meta[k] for k in ("count", "tokens", "seq_length", "num_shards", "vocab_size",
                                                  "vocab_sha256", "lower_case", "seed")},
            "max_examples": max_examples, "pack_seconds": round(time.perf_counter() - started, 1),
            "bytes": {"wheels": sum(wheels.values()), "shards": shards_bytes,
                      "src": dir_bytes(tmp / "src"), "carry": carry, "working_tree": tree, "total": total},
            "limit": CARRY_LIMIT,
        }
        write_json(tmp / "manifest.json", manifest)
        if total > CARRY_LIMIT:
            raise SystemExit(f"carry too large: working tree {tree / MiB:.1f} MiB + carry {carry / MiB:.1f} MiB "
                             f"> {CARRY_LIMIT // MiB} MiB; pass a smaller --max-examples")
    print(f"packed {shard_meta['count']} examples ({shards_bytes / MiB:.1f} MiB of shards), "
          f"{len(wheels)} wheels ({sum(wheels.values()) / MiB:.1f} MiB) and keras_electra into {output}: "
          f"with the working tree {total / MiB:.1f} MiB of {CARRY_LIMIT // MiB} MiB")
    return manifest


# ---------------------------------------------------------------------------------------------- run
def _device_summary() -> dict[str, Any]:
    import jax

    devices = jax.devices()
    return {"platform": devices[0].platform, "device_kind": devices[0].device_kind, "count": len(devices),
            "jax": jax.__version__, "python": platform.python_version()}


def _make_pretrainer(config, vocab: list[str], seq_length: int, seed: int, learning_rate: float,
                     total_steps: int, warmup_steps: int, dtype: str):
    import keras

    from keras_electra.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    keras.utils.set_random_seed(seed)
    special = {"cls": vocab.index("[CLS]"), "sep": vocab.index("[SEP]"), "pad": vocab.index("[PAD]"),
               "mask": vocab.index("[MASK]")}
    pretrainer = ElectraPretrainer(config, special, seq_length=seq_length, seed=seed, dtype=dtype)
    pretrainer.build()
    pretrainer.compile(optimizer=create_optimizer(learning_rate, total_steps, warmup_steps), jit_compile=True)
    return pretrainer


class _EpochClock:
    """Timestamps at epoch ends, where Keras has turned the logs into Python numbers (the device has synced)."""

    def __new__(cls, *args, **kwargs):
        import keras

        class EpochClock(keras.callbacks.Callback):
            def __init__(self) -> None:
                super().__init__()
                self.times: list[float] = []
                self.logs: list[dict[str, float]] = []

            def on_epoch_end(self, epoch, logs=None):
                self.times.append(time.perf_counter())
                self.logs.append({k: float(v) for k, v in (logs or {}).items()})

        return EpochClock()


def measure_throughput(config, vocab, batches: list[dict], args, flops: dict[str, int]) -> dict[str, Any]:
    """Steady-state step time of the compiled step on `batches` (cycled, already in memory)."""
    from keras_electra.data.shards import cycled

    pretrainer = _make_pretrainer(config, vocab, args.seq_length, args.seed, 5e-4, 1_000_000, 10_000, args.dtype)

    clock = _EpochClock()
    started = time.perf_counter()
    pretrainer.fit(cycled(batches), steps_per_epoch=args.throughput_steps, epochs=1 + args.throughput_repeats,
                   callbacks=[clock], verbose=0, shuffle=False)
    first_epoch = clock.times[0] - started  # compilation + the first epoch's steps
    spans = [b - a for a, b in zip(clock.times, clock.times[1:])]
    step_seconds = sorted(spans)[len(spans) // 2] / args.throughput_steps  # the median epoch
    tokens = args.batch_size * args.seq_length
    real = float(sum(b["padding_mask"].sum() for b in batches) / len(batches))
    result = {
        "batch_size": args.batch_size, "seq_length": args.seq_length, "steps_per_repeat": args.throughput_steps,
        "repeats": args.throughput_repeats, "epoch_seconds": [round(s, 4) for s in spans],
        "compile_and_first_epoch_seconds": round(first_epoch, 2),
        "step_seconds": step_seconds, "steps_per_second": 1 / step_seconds,
        "tokens_per_second": tokens / step_seconds,
        "non_padding_tokens_per_second": real / step_seconds,
        "model_flops_per_step": flops["train_step"],
        "model_tflops_per_second": flops["train_step"] / step_seconds / 1e12,
        "mfu_vs_bf16_dense_peak": flops["train_step"] / step_seconds / H200_BF16_DENSE_PEAK,
        "mfu_vs_measured_bf16_matmul": flops["train_step"] / step_seconds / H200_BF16_MATMUL_MEASURED,
        "last_logs": clock.logs[-1] if clock.logs else {},
    }
    del pretrainer
    return result


def loader_rate(shards: Path, batch_size: int, seconds: float = 3.0) -> float:
    """Batches per second that `shard_batches` yields on its own (the input pipeline's ceiling)."""
    from keras_electra.data.shards import batches_per_second

    return batches_per_second(shards, batch_size, seconds)


def pretrain_for_budget(config, vocab, shards: Path, out: Path, args, throughput: dict, report) -> dict[str, Any]:
    """Pretrain from the shards until the budget is spent; export weights + metrics every checkpoint."""
    import keras

    from keras_electra.data.shards import shard_batches

    steps_per_second = throughput["steps_per_second"] * 0.95  # the loader and logging cost a little
    total_steps = args.total_steps or max(10, int(args.budget_s * steps_per_second))
    warmup_steps = args.warmup_steps if args.warmup_steps is not None else min(10_000, total_steps // 10)
    pretrainer = _make_pretrainer(config, vocab, args.seq_length, args.seed, args.learning_rate, total_steps,
                                  warmup_steps, args.dtype)
    state: dict[str, Any] = {"curve": [], "exports": 0, "last_export": time.perf_counter(), "steps": 0}
    plan = {"total_steps": total_steps, "warmup_steps": warmup_steps, "learning_rate": args.learning_rate,
            "budget_seconds": args.budget_s, "checkpoint_every_seconds": args.checkpoint_every_s,
            "log_every_steps": args.log_every}

    def export(final: bool) -> None:
        names = export_weights(pretrainer, out / "weights", {"step": state["steps"]})
        state["exports"] += 1
        state["last_export"] = time.perf_counter()
        report({"pretraining": {**plan, "steps": state["steps"], "final": final, "weights": names,
                                "curve": state["curve"], "exports": state["exports"]}})

    lock = threading.Lock()

    class Budget(keras.callbacks.Callback):
        """Counts steps and stops at the budget, which starts once the first step has compiled."""

        async_safe = True  # reads the clock only: Keras need not wait for each step to finish

        def __init__(self) -> None:
            super().__init__()
            self.deadline: float | None = None

        def on_train_batch_end(self, batch, logs=None):
            now = time.perf_counter()
            with lock:
                state["steps"] += 1
                if self.deadline is None:  # tracing and XLA compilation happen in the first call
                    state["compile_seconds"] = round(now - started, 2)
                    state["budget_started"] = now
                    self.deadline = now + args.budget_s
            if now >= self.deadline or state["steps"] >= total_steps:
                self.model.stop_training = True

        def on_epoch_end(self, epoch, logs=None):  # logs are Python numbers here: the device has synced
            now = time.perf_counter()
            row = {"step": state["steps"], "seconds": round(now - started, 2),
                   **{k: round(float(v), 5) for k, v in (logs or {}).items()}}
            state["curve"].append(row)
            print(json.dumps(row), flush=True)
            if now - state["last_export"] >= args.checkpoint_every_s:
                export(final=False)

    def batches():
        for batch in shard_batches(shards, args.batch_size, seed=args.seed):
            yield ({k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")},)

    started = time.perf_counter()
    pretrainer.fit(batches(), steps_per_epoch=args.log_every, epochs=max(1, -(-total_steps // args.log_every)),
                   callbacks=[Budget()], verbose=0, shuffle=False)
    ended = time.perf_counter()
    export(final=True)
    examples = state["steps"] * args.batch_size
    trained = ended - state.get("budget_started", started)  # after the first (compiling) step
    return {**plan, "steps": state["steps"], "seconds": round(ended - started, 1),
            "compile_seconds": state.get("compile_seconds"), "seconds_after_compile": round(trained, 1),
            "tokens_per_second_end_to_end": (state["steps"] - 1) * args.batch_size * args.seq_length / trained,
            "examples_seen": examples, "epochs_over_shards": examples / throughput["shard_count"]}


def run(args: argparse.Namespace) -> dict[str, Any]:
    """The device part: no TensorFlow; KERAS_BACKEND must be jax."""
    os.environ.setdefault("KERAS_BACKEND", "jax")
    import keras

    if keras.backend.backend() != "jax":
        raise SystemExit(f"run needs KERAS_BACKEND=jax, not {keras.backend.backend()}")
    from keras_electra.config import ElectraConfig, max_predictions_for
    from keras_electra.data.shards import read_shard_metadata, shard_batches
    from keras_electra.utils.io import write_json

    carry, out = Path(args.carry), Path(args.out)
    shards = carry / "shards"
    out.mkdir(parents=True, exist_ok=True)
    metadata = read_shard_metadata(shards)
    if int(metadata["seq_length"]) != args.seq_length:
        raise SystemExit(f"the shards have seq_length {metadata['seq_length']}, not {args.seq_length}")
    vocab = (shards / "vocab.txt").read_text(encoding="utf-8").splitlines()
    config = ElectraConfig.from_preset(args.preset, vocab_size=len(vocab))
    max_predictions = max_predictions_for(args.seq_length, 0.15)
    flops = train_flops_per_step(config, args.batch_size, args.seq_length, max_predictions)
    metrics: dict[str, Any] = {
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "dry_run": args.dry_run,
        "device": _device_summary(), "keras": keras.__version__, "backend": keras.backend.backend(),
        "tensorflow_imported": "tensorflow" in sys.modules, "dtype_policy": args.dtype, "jit_compile": True,
        "preset": args.preset, "config": config.to_dict(), "max_predictions": max_predictions,
        "shards": {k: metadata[k] for k in ("count", "tokens", "seq_length", "num_shards", "vocab_sha256")},
        "peak": {"bf16_dense_flops": H200_BF16_DENSE_PEAK, "bf16_matmul_measured_flops": H200_BF16_MATMUL_MEASURED,
                 "source": "NVIDIA H200 SXM datasheet (1,979 TFLOP/s with sparsity = 989.5 dense); "
                           "788 TFLOP/s measured 8192^3 bf16 matmul (.library/device/KINDS.md)"},
        "flops_formula": "3 x forward; forward = encoder(s * L * (2(4h^2 + 2hf) + 4sh) + s * 2Eh if E != h) for "
                         "the discriminator and the generator, + RTD head s(2h^2 + 2h) + MLM head "
                         "P(2 h_g E + 2 E V) at the P gathered positions",
        "flops": flops,
    }

    def report(update: dict[str, Any]) -> None:
        metrics.update(update)
        write_json(out / "metrics.json", metrics)

    report({})
    print(f"device: {metrics['device']}; shards: {metadata['count']} examples", flush=True)
    iterator = shard_batches(shards, args.batch_size, seed=args.seed + 1)
    sample = [next(iterator) for _ in range(8)]
    sample = [{k: b[k] for k in ("token_ids", "segment_ids", "padding_mask")} for b in sample]
    report({"loader_batches_per_second": loader_rate(shards, args.batch_size, 1.0 if args.dry_run else 3.0)})
    throughput = {**measure_throughput(config, vocab, sample, args, flops), "shard_count": metadata["count"]}
    report({"throughput": throughput})
    print(f"throughput: {throughput['tokens_per_second']:,.0f} tokens/s, "
          f"{throughput['model_tflops_per_second']:.1f} TFLOP/s, MFU {throughput['mfu_vs_bf16_dense_peak']:.1%} "
          f"of the bf16 dense peak", flush=True)
    pretraining = pretrain_for_budget(config, vocab, shards, out, args, throughput, report)
    report({"pretraining": {**metrics.get("pretraining", {}), **pretraining},
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    check_out(out)
    print(f"pretrained {pretraining['steps']} steps in {pretraining['seconds']} s; weights and metrics.json in "
          f"{out}", flush=True)
    return metrics


def check_out(out: Path) -> None:
    """What comes back from $OUT: at most 8 files of 16 MiB, 64 MiB in all, two folders deep."""
    files = [p for p in out.rglob("*") if p.is_file()]
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in files}
    problems = [f"{name}: {size} bytes" for name, size in sizes.items() if size > OUT_FILE_LIMIT]
    if len(files) > OUT_FILES:
        problems.append(f"{len(files)} files (at most {OUT_FILES})")
    if sum(sizes.values()) > OUT_TOTAL:
        problems.append(f"{sum(sizes.values())} bytes in all")
    if problems:
        raise SystemExit(f"$OUT would not come back whole: {'; '.join(problems)}")


# ------------------------------------------------------------------------------------------- unpack
def unpack(args: argparse.Namespace) -> None:
    """Returned weights → two Hugging Face directories (discriminator, generator) that every
    keras-electra command reads (`finetune --init`, `convert`, `evaluate`)."""
    from types import SimpleNamespace

    from keras_electra.config import ElectraConfig
    from keras_electra.convert.huggingface import save_huggingface
    from keras_electra.models.discriminator import ElectraDiscriminator
    from keras_electra.models.generator import ElectraGenerator
    from keras_electra.utils.io import read_json

    source = Path(args.source)
    metrics = read_json(source / "metrics.json")
    tensors = read_weights(source / "weights" if (source / "weights").is_dir() else source)
    config = ElectraConfig.from_dict(metrics["config"])
    discriminator = ElectraDiscriminator.from_electra_config(config)
    generator = ElectraGenerator.from_electra_config(config, embeddings=discriminator.backbone.embeddings)
    for model in (discriminator, generator):
        for name, variable in model.canonical_weights().items():
            if name not in tensors:
                raise SystemExit(f"{name} is missing from the returned weights")
            variable.assign(tensors[name])
    vocab = Path(args.vocab).read_text(encoding="utf-8").splitlines()
    lower_case = not args.cased
    tokenizer = SimpleNamespace(vocabulary=vocab, lower_case=lower_case, strip_accents=lower_case,
                                pad_id=vocab.index("[PAD]"))
    output = Path(args.output)
    save_huggingface(discriminator, output / "discriminator", tokenizer=tokenizer)
    save_huggingface(generator, output / "generator", tokenizer=tokenizer)
    shutil.copy2(source / "metrics.json", output / "metrics.json")
    print(f"wrote {output / 'discriminator'} and {output / 'generator'} (Hugging Face ELECTRA)")


# ------------------------------------------------------------------------------------------ dry run
def dry_run(args: argparse.Namespace) -> Path:
    """pack (one novel, no wheels) → run (tiny, JAX CPU, TensorFlow blocked) → unpack, in a temporary folder."""
    from tests.tf_blocked import prelude

    work = Path(args.work or tempfile.mkdtemp(prefix="accelerator-dry-run-"))
    carry, out = work / "carry", work / "out"
    pack(argparse.Namespace(output=carry, no_wheels=True, corpus=[str(args.corpus)], vocab=str(VOCAB), cased=False,
                            seq_length=args.seq_length, shard_size=1000, seed=0, max_examples=args.max_examples))
    env = {**os.environ, "KERAS_BACKEND": "jax", "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1",
           "PYTHONPATH": f"{carry / 'src'}{os.pathsep}{REPO}"}
    run_args = ["run", "--dry-run", "--carry", str(carry), "--out", str(out), "--preset", "tiny",
                "--batch-size", str(args.batch_size), "--seq-length", str(args.seq_length),
                "--budget-s", str(args.budget_s), "--throughput-steps", "3", "--throughput-repeats", "2",
                "--log-every", "5", "--checkpoint-every-s", "10"]
    # The run goes through run.sh, as on the machine, with TensorFlow blocked in its Python.
    program = prelude() + f"\nimport runpy, sys\nsys.argv = [{str(HERE / 'accelerator.py')!r}, *sys.argv[1:]]\n" \
        f"runpy.run_path({str(HERE / 'accelerator.py')!r}, run_name='__main__')\n"
    (work / "blocked_python.py").write_text(program)
    command = ["bash", str(HERE / "run.sh"), *run_args[1:]]
    env.update({"ACCELERATOR_PYTHON_SCRIPT": str(work / "blocked_python.py"), "CARRY": str(carry), "OUT": str(out)})
    subprocess.run(command, check=True, env=env, cwd=REPO)
    unpack(argparse.Namespace(source=str(out), vocab=str(carry / "shards" / "vocab.txt"), cased=False,
                              output=str(work / "unpacked")))
    print(f"dry run done: {work}")
    return work


# ------------------------------------------------------------------------------------------- CLI
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("pack", help="build the carry folder (needs TensorFlow for packing, pip for wheels)")
    p.add_argument("--output", default=str(HERE / "carry"))
    p.add_argument("--corpus", nargs="+", default=[str(NOVELS)])
    p.add_argument("--vocab", default=str(VOCAB))
    p.add_argument("--cased", action="store_true")
    p.add_argument("--seq-length", type=int, default=128)
    p.add_argument("--shard-size", type=int, default=16_384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--max-examples", type=int, help="default: as many as fit in the 64 MiB with the tree")
    p.add_argument("--no-wheels", action="store_true", help="skip the wheels (a machine that has them)")

    r = sub.add_parser("run", help="on the machine: throughput, then pretraining for --budget-s (JAX, bf16, XLA)")
    r.add_argument("--carry", default=os.environ.get("CARRY", str(HERE / "carry")))
    r.add_argument("--out", default=os.environ.get("OUT", str(REPO / "runs" / "accelerator_out")))
    r.add_argument("--preset", default="small")
    r.add_argument("--batch-size", type=int, default=128)
    r.add_argument("--seq-length", type=int, default=128)
    r.add_argument("--dtype", default="mixed_bfloat16", help="Keras dtype policy (default mixed_bfloat16)")
    r.add_argument("--budget-s", type=float, default=300.0, help="pretraining wall-clock seconds (default 300)")
    r.add_argument("--throughput-steps", type=int, default=50, help="steps per timed repeat (default 50)")
    r.add_argument("--throughput-repeats", type=int, default=3)
    r.add_argument("--learning-rate", type=float, default=5e-4, help="ELECTRA-Small's 5e-4")
    r.add_argument("--total-steps", type=int, help="LR schedule length (default: the budget × measured steps/s)")
    r.add_argument("--warmup-steps", type=int, help="default: min(10,000, total/10)")
    r.add_argument("--log-every", type=int, default=200, help="steps per logged (synced) chunk")
    r.add_argument("--checkpoint-every-s", type=float, default=120.0, help="export weights every N seconds")
    r.add_argument("--seed", type=int, default=0)
    r.add_argument("--dry-run", action="store_true", help="mark metrics.json as a dry run")

    u = sub.add_parser("unpack", help="returned weights → Hugging Face discriminator/ and generator/ directories")
    u.add_argument("--from", dest="source", required=True, help="the returned $OUT folder")
    u.add_argument("--vocab", default=str(VOCAB))
    u.add_argument("--cased", action="store_true")
    u.add_argument("--output", required=True)

    d = sub.add_parser("dry-run", help="pack → run (tiny, JAX CPU, TensorFlow blocked, 30 s) → unpack, here")
    d.add_argument("--work", help="folder for carry/, out/, unpacked/ (default: a new temporary one)")
    d.add_argument("--corpus", default=str(NOVELS / "Doyle_Hound_1902.txt"))
    d.add_argument("--budget-s", type=float, default=30.0)
    d.add_argument("--batch-size", type=int, default=8)
    d.add_argument("--seq-length", type=int, default=128)
    d.add_argument("--max-examples", type=int, default=2000)

    args = parser.parse_args(argv)
    {"pack": pack, "run": run, "unpack": unpack, "dry-run": dry_run}[args.command](args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
