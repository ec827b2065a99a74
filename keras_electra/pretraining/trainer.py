"""Run a pretraining job: strategy, data, model, resumable checkpoints, final export.

`run_pretraining` is what `keras-electra pretrain` calls. Everything it needs to resume
lives in the output directory, so running the same command again continues the run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_electra.config import PRESETS, ElectraConfig
from keras_electra.convert.resolve import resolve_optional
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import CheckpointError, ElectraError, TrainingError
from keras_electra.optimization import create_optimizer
from keras_electra.pretraining.pretrainer import ElectraPretrainer
from keras_electra.utils.devices import resolve_jit_compile
from keras_electra.utils.io import atomic_directory, output_lock, read_json, write_json

CHECKPOINT_DIR = "checkpoints"
RUN_CONFIG_FILE = "run_config.json"
METRICS_FILE = "metrics.json"


@dataclasses.dataclass
class PretrainingOptions:
    """Everything that defines a pretraining run (saved to `run_config.json`)."""

    preset: str = "tiny"
    sources: Sequence[str] = ()
    vocab: str | None = None
    lower_case: bool = True
    steps: int | None = None
    batch_size: int | None = None
    seq_length: int | None = None
    learning_rate: float | None = None
    warmup_steps: int | None = None
    mask_rate: float | None = None
    mixed_precision: str | None = None  # None, "mixed_bfloat16", "mixed_float16"
    jit_compile: bool | str = "auto"  # "auto": XLA on GPU/TPU only
    objective: str = "electra"
    sentence_objective: str | None = None
    generator_fraction: float | None = None
    disallow_correct: bool = False
    temperature: float = 1.0
    corpus_format: str = "auto"
    seed: int = 0
    log_every: int = 50
    checkpoint_every: int = 500
    eval_batches: int = 10
    strategy: str = "auto"
    init: str | None = None  # a released/converted checkpoint to continue pretraining from
    init_generator: str | None = None  # its generator, when it lives apart (Hugging Face)
    # The paper's two-stage training (section 3.2): a masked LM of the discriminator's size
    # (an `objective="mlm"` run) becomes the frozen generator and the discriminator's start.
    two_stage_from: str | None = None
    model_overrides: dict[str, Any] = dataclasses.field(default_factory=dict)
    tfds_data_dir: str | None = None  # TensorFlow Datasets directory for `tfds:NAME` sources
    # Held-out text for the evaluation (AUC and collapse signals): files training never reads.
    # Unset: the evaluation batches come from the training corpus under another seed.
    eval_sources: Sequence[str] = ()
    eval_every: int | None = None  # held-out evaluation every N steps (None: before and after only)
    # Deviations from the official code, off by default: Adam's bias correction (the official
    # optimiser has none) and masked positions drawn without replacement (official: with).
    adam_bias_correction: bool = False
    mask_sampling: str = "without_replacement"

    def resolved(self) -> PretrainingOptions:
        """Fill unset values from the preset's pretraining recipe."""
        if self.preset not in PRESETS:
            raise ElectraError(f"unknown preset {self.preset!r}; choose from {', '.join(PRESETS)}")
        recipe = PRESETS[self.preset]["pretraining"]
        values = dataclasses.asdict(self)
        for key in ("steps", "batch_size", "seq_length", "learning_rate", "warmup_steps", "mask_rate"):
            if values[key] is None:
                values[key] = recipe["train_steps" if key == "steps" else key]
        values["warmup_steps"] = min(values["warmup_steps"], values["steps"])
        if values["seq_length"] < 8:
            raise ElectraError(f"--seq-length must be at least 8, got {values['seq_length']}")
        if values["steps"] <= 0 or values["batch_size"] <= 0:
            raise ElectraError("--steps and --batch-size must be positive")
        if values["eval_every"] is not None and values["eval_every"] <= 0:
            raise ElectraError(f"--eval-every must be positive, got {values['eval_every']}")
        values["eval_sources"] = list(values["eval_sources"] or [])
        return PretrainingOptions(**values)


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: TPU if one is attached, Mirrored over several GPUs, else the default strategy."""
    if name in ("tpu", "auto"):
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver()
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
            return tf.distribute.TPUStrategy(resolver)
        except (ValueError, tf.errors.NotFoundError, RuntimeError):
            if name == "tpu":
                raise ElectraError("--strategy tpu: no TPU found") from None
    if name == "multiworker":
        return tf.distribute.MultiWorkerMirroredStrategy()
    gpus = tf.config.list_logical_devices("GPU")
    if name == "mirrored" or (name == "auto" and len(gpus) > 1):
        # Without GPUs, mirror over the logical CPU devices (how the tests exercise this path).
        devices = [d.name for d in gpus or tf.config.list_logical_devices("CPU")]
        return tf.distribute.MirroredStrategy(devices)
    if name in ("auto", "default", "one_device"):
        return tf.distribute.get_strategy()
    raise ElectraError(f"unknown strategy {name!r}; choose auto, default, mirrored, multiworker or tpu")


def two_stage_generator_dir(path: str | Path) -> Path:
    """The masked LM of a `--objective mlm` run: its `generator/` folder, or that folder itself."""
    path = Path(path)
    directory = path / "generator" if (path / "generator" / "config.json").is_file() else path
    if not (directory / "config.json").is_file() or not (directory / "model.keras").is_file():
        raise ElectraError(f"--two-stage-from {path}: no masked LM there (expected generator/model.keras "
                           "and generator/config.json from `keras-electra pretrain --objective mlm`)")
    if (directory.parent / "discriminator").is_dir():
        # An ELECTRA run's generator is a fraction of its discriminator and was trained with it.
        raise ElectraError(f"--two-stage-from {path}: that is an ELECTRA run; two-stage training starts from "
                           "a masked LM of the discriminator's size (`keras-electra pretrain --objective mlm`)")
    return directory


def two_stage_config(path: str | Path) -> ElectraConfig:
    """The discriminator's config for stage 2: the masked LM's own network (generator of equal size)."""
    return ElectraConfig.from_json(two_stage_generator_dir(path) / "config.json").replace(generator_fraction=1.0)


def init_two_stage(pretrainer: ElectraPretrainer, path: str | Path) -> None:
    """Copy the masked LM into the (frozen) generator and into the discriminator's backbone."""
    from keras_electra.saving import load_model

    masked_lm = load_model(two_stage_generator_dir(path))
    _copy_weights(masked_lm.canonical_weights(), pretrainer.generator.canonical_weights(), path)
    _copy_weights(masked_lm.backbone.canonical_weights(), pretrainer.discriminator.backbone.canonical_weights(), path)


def _copy_weights(source: dict, target: dict, path: str | Path) -> None:
    if set(source) != set(target):
        odd = sorted(set(source) ^ set(target))
        raise CheckpointError(f"--two-stage-from {path}: weights do not line up ({', '.join(odd[:3])})")
    for name, variable in target.items():
        if tuple(variable.shape) != tuple(source[name].shape):
            raise CheckpointError(f"--two-stage-from {path}: {name} has shape {tuple(source[name].shape)}, "
                                  f"expected {tuple(variable.shape)}")
        variable.assign(source[name])


def model_config(options: PretrainingOptions, tokenizer: ElectraTokenizer) -> ElectraConfig:
    """The preset's network, or the network of the checkpoint that `--init` continues from."""
    if options.two_stage_from:
        if options.init or options.generator_fraction is not None or options.model_overrides:
            raise ElectraError("--two-stage-from takes the network from the masked LM; drop --init, "
                               "--generator-fraction and --config")
        if options.objective != "electra":
            raise ElectraError("--two-stage-from is stage 2 of ELECTRA training; it needs --objective electra")
        config = two_stage_config(options.two_stage_from)
        if config.vocab_size != tokenizer.vocabulary_size:
            raise CheckpointError(
                f"{options.two_stage_from} has a vocabulary of {config.vocab_size} but the tokenizer has "
                f"{tokenizer.vocabulary_size} tokens; pass its vocab.txt as --vocab"
            )
        return config
    if options.init:
        from keras_electra.convert import pretraining_config

        config = pretraining_config(options.init, options.init_generator)
        if config.vocab_size != tokenizer.vocabulary_size:
            raise CheckpointError(
                f"{options.init} has a vocabulary of {config.vocab_size} but the tokenizer has "
                f"{tokenizer.vocabulary_size} tokens; pass the checkpoint's vocab.txt as --vocab"
            )
        # The checkpoint brings its network; only the init of the layers that start fresh may change.
        overrides = dict(options.model_overrides)
        initializer = overrides.pop("default_initializer", None)
        if overrides:
            raise ElectraError(f"--config {', '.join(overrides)}: changes the network of a run from scratch "
                               f"only; {options.init} brings its own")
        return config.replace(default_initializer=initializer) if initializer else config
    overrides = dict(options.model_overrides)
    overrides["vocab_size"] = tokenizer.vocabulary_size
    if options.generator_fraction is not None:
        overrides["generator_fraction"] = options.generator_fraction
    return ElectraConfig.from_preset(options.preset, **overrides)


def build_pretrainer(options: PretrainingOptions, tokenizer: ElectraTokenizer) -> ElectraPretrainer:
    config = model_config(options, tokenizer)
    pretrainer = ElectraPretrainer(
        config,
        tokenizer.special_token_ids,
        seq_length=options.seq_length,
        mask_rate=options.mask_rate,
        temperature=options.temperature,
        disallow_correct=options.disallow_correct,
        objective=options.objective,
        sentence_objective=options.sentence_objective,
        untied_generator_embeddings=bool(options.two_stage_from),
        train_generator=not options.two_stage_from,
        seed=options.seed,
        mask_sampling=options.mask_sampling,
        dtype=options.mixed_precision,
    )
    pretrainer.build()
    return pretrainer


class NonFiniteLossGuard(keras.callbacks.Callback):
    """Stop with a clear error (instead of training on garbage) when the loss is NaN/inf."""

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            self.model.stop_training = True
            step = int(self.model.optimizer.iterations.numpy())
            raise TrainingError(
                f"the loss became {float(loss)} at step {step}; lower --learning-rate or check the data "
                "(the last good checkpoint is kept)"
            )


class StepCheckpoint(keras.callbacks.Callback):
    """Save a resumable checkpoint every `every` optimizer steps and at the end."""

    def __init__(self, manager: tf.train.CheckpointManager, every: int) -> None:
        super().__init__()
        self.manager = manager
        self.every = every

    def _step(self) -> int:
        return int(self.model.optimizer.iterations.numpy())

    def on_train_batch_end(self, batch, logs=None):
        step = self._step()
        if step % self.every == 0:
            self.manager.save(checkpoint_number=step)

    def on_train_end(self, logs=None):
        step = self._step()
        if self.manager.latest_checkpoint is None or not self.manager.latest_checkpoint.endswith(f"-{step}"):
            self.manager.save(checkpoint_number=step)


def evaluate_pretrainer(pretrainer: ElectraPretrainer, dataset: tf.data.Dataset, steps: int) -> dict[str, Any]:
    """Evaluate with a fixed masking seed, so 'before' and 'after' see the same masks.

    Besides the pretrainer's metrics (discriminator AUC, generator MLM accuracy, ...) this measures
    the collapse signals of `diagnostics.collapse_signals` on the same, unmasked batches.
    """
    from keras_electra.pretraining.diagnostics import collapse_signals

    state = pretrainer.seed_generator.state
    saved = state.numpy()
    state.assign(np.array([12345, 0], dtype=saved.dtype))
    try:
        results = pretrainer.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    finally:
        state.assign(saved)
    metrics: dict[str, Any] = {k: float(v) for k, v in results.items()}
    batches = (_unpack_batch(b) for b in dataset.take(steps))
    metrics.update(collapse_signals(pretrainer.encoder, batches))
    return metrics


def _unpack_batch(batch):
    return batch[0] if isinstance(batch, tuple) else batch


def held_out_split(sources: list[str], eval_sources: list[str]) -> tuple[list[str], list[str]]:
    """Training files with every held-out file removed, and the held-out files (text corpora only).

    A directory given to both (`--corpus novels/ --eval-corpus novels/Doyle_Hound_1902.txt`) trains on
    the rest of it, so the held-out evaluation never sees text that training reads.
    """
    from keras_electra.data.corpus import resolve_corpus_files
    from keras_electra.data.pretraining_data import resolve_sources

    kind, eval_files = resolve_sources(eval_sources)
    if kind != "text":
        raise ElectraError("--eval-corpus takes text files or directories")
    kind, train_files = resolve_sources(sources)
    if kind != "text":
        raise ElectraError("--eval-corpus needs a text --corpus (TFRecord shards cannot be split by document)")
    held = {p.resolve() for p in resolve_corpus_files(eval_files)}
    kept = [str(p) for p in train_files if p.resolve() not in held]
    if not kept:
        raise ElectraError("--eval-corpus holds out every training file; nothing is left to train on")
    return kept, [str(p) for p in eval_files]


class HeldOutEvaluation(keras.callbacks.Callback):
    """Every `every` steps: held-out AUC, MLM accuracy and collapse signals, to TensorBoard and a curve."""

    def __init__(self, dataset: tf.data.Dataset, batches: int, every: int, log_dir: Path,
                 curve: list[dict[str, Any]]) -> None:
        super().__init__()
        self.dataset, self.batches, self.every, self.curve = dataset, batches, every, curve
        self.writer = tf.summary.create_file_writer(str(log_dir))

    def record(self, step: int, metrics: dict[str, Any]) -> None:
        self.curve.append({"step": step, **metrics})
        with self.writer.as_default(step=step):
            for key, value in metrics.items():
                if isinstance(value, list):
                    for layer, item in enumerate(value):
                        tf.summary.scalar(f"{key}/layer_{layer}", item)
                else:
                    tf.summary.scalar(key, value)
        self.writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        step = int(self.model.optimizer.iterations.numpy())
        if step % self.every == 0:
            self.record(step, evaluate_pretrainer(self.model, self.dataset, self.batches))
            # evaluate() left its own state in the metrics that training shares: start them afresh,
            # so the training logs after this point average training batches only.
            self.model.reset_metrics()


def has_checkpoint(output_dir: Path) -> bool:
    """Whether `output_dir` holds a real run (a checkpoint or final models), not just files that a
    run which failed early might have left."""
    return tf.train.latest_checkpoint(str(output_dir / CHECKPOINT_DIR)) is not None or any(
        (output_dir / part / "model.keras").is_file() for part in ("discriminator", "generator"))


def _load_tokenizer(options: PretrainingOptions, output_dir: Path) -> ElectraTokenizer:
    saved = output_dir / "vocab.txt"
    if saved.is_file() and has_checkpoint(output_dir):  # a resumed run keeps the vocabulary it started with
        tokenizer = ElectraTokenizer.from_directory(output_dir)
        if options.vocab is not None:
            from keras_electra.data.tokenizer import load_vocabulary

            if load_vocabulary(options.vocab) != tokenizer.vocabulary:
                raise CheckpointError(f"--vocab {options.vocab} differs from {saved}, the vocabulary of the run "
                                      f"in {output_dir}; drop --vocab to resume, or use a new --output")
        if (options.vocab is not None or not options.lower_case) and options.lower_case != tokenizer.lower_case:
            raise CheckpointError(f"the run in {output_dir} is {'un' if tokenizer.lower_case else ''}cased "
                                  f"({output_dir / 'tokenizer.json'}); "
                                  f"{'drop' if not options.lower_case else 'add'} --cased, or use a new --output")
        return tokenizer
    if options.vocab is None and options.two_stage_from:
        return ElectraTokenizer.from_directory(two_stage_generator_dir(options.two_stage_from))
    if options.vocab is None and options.init:
        from keras_electra.convert import read_checkpoint, tokenizer_from_checkpoint

        tokenizer = tokenizer_from_checkpoint(read_checkpoint(options.init))
        if tokenizer is not None:
            return tokenizer
    if options.vocab is None:
        raise ElectraError("--vocab is required (build one with `keras-electra build-vocab`)")
    return ElectraTokenizer(options.vocab, lower_case=options.lower_case)


def _check_resume_compatible(output_dir: Path, options: PretrainingOptions) -> None:
    path = output_dir / RUN_CONFIG_FILE
    if not path.is_file():
        return
    previous = read_json(path)
    if not isinstance(previous, dict):
        raise CheckpointError(f"{path} is not a run configuration (a JSON object)")
    keys = ("preset", "seq_length", "batch_size", "objective", "sentence_objective", "model_overrides",
            "generator_fraction", "mixed_precision", "two_stage_from")
    changed = [k for k in keys if previous.get(k) != json.loads(json.dumps(getattr(options, k)))]
    if changed:
        raise CheckpointError(
            f"{output_dir} holds a run with different {', '.join(changed)}; use a new --output to start over"
        )


def save_pretrained_models(pretrainer: ElectraPretrainer, tokenizer: ElectraTokenizer, output_dir: Path) -> None:
    """Write `discriminator/` and `generator/` (model.keras, config.json, vocab), each atomically."""
    parts = {"generator": pretrainer.generator}
    if pretrainer.discriminator is not None:
        parts["discriminator"] = pretrainer.discriminator
    for name, model in parts.items():
        config = pretrainer.config if name == "discriminator" else pretrainer.config.generator_config()
        if pretrainer.objective == "mlm":
            config = pretrainer.config.replace(generator_fraction=1.0)
        with atomic_directory(output_dir / name) as tmp:
            model.save(tmp / "model.keras")
            config.to_json(tmp / "config.json")
            tokenizer.save_to_directory(tmp)


def run_pretraining(options: PretrainingOptions, output_dir: str | Path, verbose: int = 1) -> dict[str, Any]:
    """Pretrain (or resume) into `output_dir`; return the final metrics."""

    options = options.resolved()
    output_dir = Path(output_dir)
    # One run per output directory; a second stops at once naming the holder, before any download.
    with output_lock(output_dir, inside=True):
        options = dataclasses.replace(options, init=resolve_optional(options.init),  # names -> local paths
                                      init_generator=resolve_optional(options.init_generator))
        return _run_pretraining(options, output_dir, verbose)


def restore_latest_intact(checkpoint: tf.train.Checkpoint, manager: tf.train.CheckpointManager,
                          verbose: int = 1) -> str | None:
    """Restore the newest checkpoint that reads whole; say which ones were skipped and why.

    A kill (or a full disk) can leave a truncated `.data` file; the previous checkpoint is then
    the last good state.
    """
    failures = []
    for path in reversed(manager.checkpoints):
        try:
            checkpoint.restore(path).assert_existing_objects_matched()
        except (AssertionError, ValueError, IndexError, tf.errors.OpError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            failures.append(f"{path} ({reason})")
            if verbose:
                print(f"warning: checkpoint {path} is unreadable ({reason}); trying an older one")
            continue
        if failures and verbose:
            print(f"Resuming from {path}, the newest intact checkpoint")
        return path
    if failures:
        raise CheckpointError(f"cannot resume: no readable checkpoint in {Path(failures[0]).parent}; "
                              f"{failures[0]} is damaged (delete it, or use a new --output)")
    return None


def _run_pretraining(options: PretrainingOptions, output_dir: Path, verbose: int) -> dict[str, Any]:
    from keras_electra.data import tfds_data
    from keras_electra.data.pretraining_data import pretraining_dataset

    _check_resume_compatible(output_dir, options)
    if not options.sources:
        raise ElectraError("no corpus given (--corpus FILES_OR_DIR or TFRecord shards)")
    sources, corpus_format = list(options.sources), options.corpus_format
    if any(tfds_data.is_tfds(s) for s in sources):
        # TFDS text datasets become corpus files in the official layout (a blank line ends a document).
        sources = tfds_data.resolve_corpus_sources(sources, output_dir / "tfds_corpus", options.tfds_data_dir)
        corpus_format = "sentences" if corpus_format == "auto" else corpus_format
    eval_sources: list[str] = []
    if options.eval_sources:  # after TFDS: held-out files are split off real files
        sources, eval_sources = held_out_split(sources, list(options.eval_sources))
    if options.mixed_precision not in (None, "mixed_bfloat16", "mixed_float16"):
        raise ElectraError(f"unknown --mixed-precision {options.mixed_precision!r}")
    keras.utils.set_random_seed(options.seed)
    tokenizer = _load_tokenizer(options, output_dir)

    strategy = get_strategy(options.strategy)
    replicas = strategy.num_replicas_in_sync
    if options.batch_size % replicas:
        raise ElectraError(f"--batch-size {options.batch_size} is not divisible by {replicas} replicas")
    # Like Keras' own "auto", XLA stays off under Mirrored/MultiWorker strategies, where it
    # cannot place per-replica state; TPUStrategy compiles with XLA regardless.
    jit_compile = resolve_jit_compile(options.jit_compile) and replicas == 1
    with strategy.scope():
        pretrainer = build_pretrainer(options, tokenizer)
        optimizer = create_optimizer(options.learning_rate, options.steps, options.warmup_steps,
                                     bias_correction=options.adam_bias_correction)
        pretrainer.compile(optimizer=optimizer, jit_compile=jit_compile)
        optimizer.build(pretrainer.trainable_variables)

    checkpoint = tf.train.Checkpoint(model=pretrainer, optimizer=optimizer)
    manager = tf.train.CheckpointManager(checkpoint, output_dir / CHECKPOINT_DIR, max_to_keep=2)
    restored = restore_latest_intact(checkpoint, manager, verbose)
    start_step = int(optimizer.iterations.numpy())
    if verbose and start_step:
        print(f"Resuming from step {start_step} ({restored})")
    elif options.init:
        from keras_electra.convert import init_pretrainer

        report = init_pretrainer(pretrainer, options.init, options.init_generator)
        if verbose:
            print(f"Initialised from {options.init}: {report.summary()}")
    elif options.two_stage_from:
        init_two_stage(pretrainer, options.two_stage_from)
        if verbose:
            print(f"Two-stage training: generator (frozen) and discriminator start from {options.two_stage_from}")

    def make_dataset(seed: int, repeat: bool = True, files: list[str] | None = None) -> tf.data.Dataset:
        return pretraining_dataset(
            files or sources, tokenizer, seq_length=options.seq_length, batch_size=options.batch_size,
            seed=seed, corpus_format=corpus_format, sentence_objective=options.sentence_objective,
            repeat=repeat,
        )

    # The data stream restarts with a seed derived from the step, so a resumed run does
    # not replay the batches it has already seen.
    train_data = make_dataset(options.seed + start_step)
    eval_data = make_dataset(options.seed + 1_000_003, files=eval_sources or None)
    eval_data = eval_data.take(options.eval_batches).cache()
    curve_path = output_dir / "heldout_curve.json"
    curve: list[dict[str, Any]] = read_json(curve_path) if start_step and curve_path.is_file() else []
    held_out = HeldOutEvaluation(eval_data, options.eval_batches, options.eval_every or options.steps,
                                 output_dir / "logs" / "heldout", curve)
    before = evaluate_pretrainer(pretrainer, eval_data, options.eval_batches)
    # Only now, with the options, model and data validated, does the run pin its files.
    if not (output_dir / "vocab.txt").is_file() or not has_checkpoint(output_dir):
        tokenizer.save_to_directory(output_dir)
    write_json(output_dir / RUN_CONFIG_FILE, dataclasses.asdict(options))
    if not curve:
        held_out.record(start_step, before)

    remaining = options.steps - start_step
    elapsed = 0.0
    if remaining > 0:
        callbacks = [
            NonFiniteLossGuard(),
            StepCheckpoint(manager, options.checkpoint_every),
            keras.callbacks.TensorBoard(output_dir / "logs", update_freq=options.log_every),
        ]
        if options.eval_every:
            callbacks.append(held_out)
        started = time.perf_counter()
        pretrainer.fit(
            train_data, steps_per_epoch=remaining, epochs=1, callbacks=callbacks, verbose=verbose,
        )
        elapsed = time.perf_counter() - started
    after = evaluate_pretrainer(pretrainer, eval_data, options.eval_batches)
    save_pretrained_models(pretrainer, tokenizer, output_dir)
    result = {
        "steps": int(optimizer.iterations.numpy()),
        "replicas": replicas,
        "jit_compile": jit_compile,
        "trained_steps_this_run": remaining if remaining > 0 else 0,
        "seconds_this_run": round(elapsed, 2),
        "tokens_per_second": round(max(remaining, 0) * options.batch_size * options.seq_length / elapsed, 1)
        if elapsed else None,
        "eval_corpus": eval_sources or "training corpus, another seed",
        "adam_bias_correction": options.adam_bias_correction,
        "mask_sampling": options.mask_sampling,
        "default_initializer": pretrainer.config.default_initializer,
        "before": before,
        "after": after,
    }
    if not curve or curve[-1]["step"] != result["steps"]:
        held_out.record(result["steps"], after)
    result["heldout_curve"] = curve
    write_json(curve_path, curve)
    write_json(output_dir / METRICS_FILE, result)
    return result
