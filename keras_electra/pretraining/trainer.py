"""Run a pretraining job: strategy, data, model, resumable checkpoints, final export.

`run_pretraining` is what `keras-electra pretrain` calls. Everything it needs to resume
lives in the output directory, so running the same command again continues the run.

Backends: on TensorFlow the run uses `tf.distribute` strategies, tf.data and TensorBoard logs;
on JAX it uses `keras.distribution.DataParallel`, `checkpoints.KerasCheckpoints` and JSON-lines
logs, and from ArrayRecord shards (`keras_electra.data.shards`) it never imports TensorFlow
(text corpora and TFRecord shards still go through tf.data, which needs it).
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import json
import math
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import keras
import numpy as np

from keras_electra.config import PRESETS, ElectraConfig
from keras_electra.convert.resolve import resolve_optional
from keras_electra.errors import CheckpointError, ElectraError, TrainingError
from keras_electra.optimization import create_optimizer
from keras_electra.pretraining import checkpoints
from keras_electra.pretraining.checkpoints import CHECKPOINT_DIR
from keras_electra.pretraining.pretrainer import ElectraPretrainer
from keras_electra.utils.devices import resolve_jit_compile
from keras_electra.utils.io import atomic_directory, output_lock, read_json, write_json

if TYPE_CHECKING:
    import tensorflow as tf

    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.data.vocabulary import Vocabulary

__all__ = ["CHECKPOINT_DIR", "PretrainingOptions", "run_pretraining"]
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
    wandb: str | None = None  # also log to this W&B project (keras_electra.utils.tracking)

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


STRATEGIES = ("auto", "default", "mirrored", "multiworker", "tpu")


def get_strategy(name: str = "auto") -> tf.distribute.Strategy:
    """auto: TPU if one is attached, Mirrored over several GPUs, else the default strategy."""
    import tensorflow as tf

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


def jax_distribution(name: str = "auto") -> keras.distribution.DataParallel | None:
    """JAX: DataParallel over every device for `mirrored` (and for `auto` with several GPUs/TPUs),
    else None (one device). `multiworker` and `tpu` are tf.distribute strategies: TensorFlow only."""
    if name in ("multiworker", "tpu"):
        raise ElectraError(f"--strategy {name} is a tf.distribute strategy and needs KERAS_BACKEND=tensorflow; "
                           "on JAX use --strategy mirrored (keras.distribution.DataParallel over all devices)")
    if name not in STRATEGIES:
        raise ElectraError(f"unknown strategy {name!r}; choose auto, default, mirrored, multiworker or tpu")
    devices = keras.distribution.list_devices()
    accelerators = [d for d in devices if not d.lower().startswith("cpu")]
    if (name == "mirrored" and len(devices) > 1) or (name == "auto" and len(accelerators) > 1):
        return keras.distribution.DataParallel(devices=accelerators if name == "auto" else devices)
    return None


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


def model_config(options: PretrainingOptions, tokenizer: ElectraTokenizer | Vocabulary) -> ElectraConfig:
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


def build_pretrainer(options: PretrainingOptions, tokenizer: ElectraTokenizer | Vocabulary) -> ElectraPretrainer:
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
            step = _step(self.model)
            raise TrainingError(
                f"the loss became {float(loss)} at step {step}; lower --learning-rate or check the data "
                "(the last good checkpoint is kept)"
            )


def _step(model: keras.Model) -> int:
    return int(keras.ops.convert_to_numpy(model.optimizer.iterations.value))


class StepCounter(keras.callbacks.Callback):
    """Counts the steps itself after reading the start: on JAX, touching `self.model` in a batch hook
    copies every variable back into the model (Keras' `jax_state_sync`), so hooks do it only to work."""

    def on_train_begin(self, logs=None):
        self.step = _step(self.model)

    def _advance(self) -> int:
        self.step += 1
        return self.step

    def _step(self) -> int:
        return self.step


class StepCheckpoint(StepCounter):
    """Save a resumable checkpoint every `every` optimizer steps and at the end."""

    def __init__(self, saver: checkpoints.TensorFlowCheckpoints | checkpoints.KerasCheckpoints, every: int) -> None:
        super().__init__()
        self.saver = saver
        self.every = every

    def on_train_batch_end(self, batch, logs=None):
        if self._advance() % self.every == 0:
            self.saver.save(_step(self.model))

    def on_train_end(self, logs=None):
        step = _step(self.model)
        if self.saver.latest_step() != step:
            self.saver.save(step)


class JsonLinesLogger(StepCounter):
    """The training logs every `every` steps as one JSON object a line (backends without TensorBoard)."""

    def __init__(self, path: Path, every: int) -> None:
        super().__init__()
        self.path, self.every = Path(path), every

    def on_train_batch_end(self, batch, logs=None):
        step = self._advance()
        if step % self.every == 0:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with open(self.path, "a", encoding="utf-8") as handle:
                handle.write(json.dumps({"step": step, **{k: float(v) for k, v in (logs or {}).items()}}) + "\n")


EvalData = Any  # a tf.data.Dataset of batches, or a list of numpy batches (dicts)


def evaluate_pretrainer(pretrainer: ElectraPretrainer, dataset: EvalData, steps: int) -> dict[str, Any]:
    """Evaluate with a fixed masking seed, so 'before' and 'after' see the same masks.

    Besides the pretrainer's metrics (discriminator AUC, generator MLM accuracy, ...) this measures
    the collapse signals of `diagnostics.collapse_signals` on the same, unmasked batches.
    """
    from keras_electra.pretraining.diagnostics import collapse_signals

    state = pretrainer.seed_generator.state
    saved = keras.ops.convert_to_numpy(state.value)
    state.assign(np.array([12345, 0], dtype=saved.dtype))
    try:
        if isinstance(dataset, list):  # numpy batches: one array per feature, sliced back into the batches
            batches = dataset[:steps]
            arrays = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
            results = pretrainer.evaluate(x=arrays, batch_size=len(batches[0]["token_ids"]), verbose=0,
                                          return_dict=True)
        else:
            results = pretrainer.evaluate(dataset, steps=steps, verbose=0, return_dict=True)
    finally:
        state.assign(saved)
    metrics: dict[str, Any] = {k: float(v) for k, v in results.items()}
    batches = dataset[:steps] if isinstance(dataset, list) else (_unpack_batch(b) for b in dataset.take(steps))
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


class HeldOutEvaluation(StepCounter):
    """Every `every` steps: held-out AUC, MLM accuracy and collapse signals, to TensorBoard and a curve."""

    def __init__(self, dataset: EvalData, batches: int, every: int, log_dir: Path,
                 curve: list[dict[str, Any]], curve_path: Path | None = None) -> None:
        super().__init__()
        self.dataset, self.batches, self.every, self.curve = dataset, batches, every, curve
        self.curve_path = curve_path
        self.writer = None
        if keras.backend.backend() == "tensorflow":  # elsewhere: heldout_curve.json only
            import tensorflow as tf

            self.writer = tf.summary.create_file_writer(str(log_dir))

    def record(self, step: int, metrics: dict[str, Any]) -> None:
        self.curve.append({"step": step, **metrics})
        if self.curve_path is not None:  # on disk at once, so a killed run's resume keeps its earlier points
            write_json(self.curve_path, self.curve)
        if self.writer is None:
            return
        import tensorflow as tf

        with self.writer.as_default(step=step):
            for key, value in metrics.items():
                if isinstance(value, list):
                    for layer, item in enumerate(value):
                        tf.summary.scalar(f"{key}/layer_{layer}", item)
                else:
                    tf.summary.scalar(key, value)
        self.writer.flush()

    def on_train_batch_end(self, batch, logs=None):
        step = self._advance()
        if step % self.every == 0:
            self.record(step, evaluate_pretrainer(self.model, self.dataset, self.batches))
            # evaluate() left its own state in the metrics that training shares: start them afresh,
            # so the training logs after this point average training batches only.
            self.model.reset_metrics()


def has_checkpoint(output_dir: Path) -> bool:
    """Whether `output_dir` holds a real run (a checkpoint or final models), not just files that a
    run which failed early might have left."""
    return checkpoints.has_checkpoint(output_dir) or any(
        (output_dir / part / "model.keras").is_file() for part in ("discriminator", "generator"))


def _load_tokenizer(options: PretrainingOptions, output_dir: Path,
                    tokenizer_class: type | None = None) -> ElectraTokenizer | Vocabulary:
    """The run's tokenizer; `tokenizer_class=Vocabulary` when the data is already ids (shards), which
    needs no tensorflow-text."""
    if tokenizer_class is None:
        from keras_electra.data.tokenizer import ElectraTokenizer as tokenizer_class
    saved = output_dir / "vocab.txt"
    if saved.is_file() and has_checkpoint(output_dir):  # a resumed run keeps the vocabulary it started with
        tokenizer = tokenizer_class.from_directory(output_dir)
        if options.vocab is not None:
            from keras_electra.data.vocabulary import load_vocabulary

            if load_vocabulary(options.vocab) != tokenizer.vocabulary:
                raise CheckpointError(f"--vocab {options.vocab} differs from {saved}, the vocabulary of the run "
                                      f"in {output_dir}; drop --vocab to resume, or use a new --output")
        if (options.vocab is not None or not options.lower_case) and options.lower_case != tokenizer.lower_case:
            raise CheckpointError(f"the run in {output_dir} is {'un' if tokenizer.lower_case else ''}cased "
                                  f"({output_dir / 'tokenizer.json'}); "
                                  f"{'drop' if not options.lower_case else 'add'} --cased, or use a new --output")
        return tokenizer
    if options.vocab is None and options.two_stage_from:
        return tokenizer_class.from_directory(two_stage_generator_dir(options.two_stage_from))
    if options.vocab is None and options.init:
        from keras_electra.convert import read_checkpoint, tokenizer_from_checkpoint

        tokenizer = tokenizer_from_checkpoint(read_checkpoint(options.init))
        if tokenizer is not None:
            return tokenizer if isinstance(tokenizer, tokenizer_class) else tokenizer_class(
                tokenizer.vocabulary, lower_case=tokenizer.lower_case, strip_accents=tokenizer.strip_accents)
    if options.vocab is None:
        raise ElectraError("--vocab is required (build one with `keras-electra build-vocab`)")
    return tokenizer_class.from_directory(options.vocab, lower_case=options.lower_case)  # the one factory


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


def save_pretrained_models(pretrainer: ElectraPretrainer, tokenizer: ElectraTokenizer | Vocabulary,
                           output_dir: Path) -> None:
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


def _shard_directory(sources: Sequence[str]) -> Path | None:
    """The ArrayRecord shard directory given as the corpus (`keras_electra.data.shards`), else None."""
    from keras_electra.data.shards import is_shard_directory

    found = [Path(s) for s in sources if is_shard_directory(s)]
    if not found:
        return None
    if len(sources) > 1:
        raise ElectraError(f"--corpus {found[0]} is an ArrayRecord shard directory; pass it alone")
    return found[0]


def _shard_vocabulary(directory: Path, options: PretrainingOptions, output_dir: Path) -> Vocabulary:
    """The vocabulary the shards were built with (their metadata), checked against --vocab and a resumed run."""
    from keras_electra.data.shards import SENTENCE_LABEL, read_shard_metadata, vocabulary_fingerprint
    from keras_electra.data.vocabulary import Vocabulary, load_vocabulary

    metadata = read_shard_metadata(directory)
    where = directory / "metadata.json"
    if int(metadata["seq_length"]) != options.seq_length:
        raise ElectraError(f"{where} has seq_length {metadata['seq_length']}, but --seq-length is "
                           f"{options.seq_length}")
    if options.sentence_objective and (SENTENCE_LABEL not in metadata["features"]
                                       or metadata.get("sentence_objective") not in (None, options.sentence_objective)):
        raise ElectraError(f"{where} has no {options.sentence_objective} sentence labels; build the shards with "
                           f"--sentence-objective {options.sentence_objective}")
    # write_shards saves vocab.txt (and tokenizer.json when the casing is known) beside the shards.
    settings = {k: metadata[k] for k in ("lower_case", "strip_accents") if metadata.get(k) is not None}
    vocabulary = Vocabulary.from_directory(directory, **settings)
    if metadata.get("vocab_sha256") not in (None, vocabulary_fingerprint(vocabulary.vocabulary)):
        raise ElectraError(f"{directory / 'vocab.txt'} is not the vocabulary that {where} records (vocab_sha256)")
    if options.vocab is not None and load_vocabulary(options.vocab) != vocabulary.vocabulary:
        raise ElectraError(f"--vocab {options.vocab} differs from the vocabulary the shards in {directory} "
                           "were built with; drop --vocab")
    saved = output_dir / "vocab.txt"
    if saved.is_file() and has_checkpoint(output_dir) and load_vocabulary(saved) != vocabulary.vocabulary:
        raise CheckpointError(f"the shards in {directory} were built with another vocabulary than {saved}, "
                              f"the vocabulary of the run in {output_dir}; use a new --output")
    return vocabulary


def _tf_data_modules():
    """tf.data pipelines (text, TFRecord shards, TFDS): a clear error where TensorFlow is missing."""
    try:
        from keras_electra.data import pretraining_data, tfds_data
    except ImportError as err:
        raise ElectraError(
            f"text corpora and TFRecord shards are read with tf.data, which needs TensorFlow ({err}); "
            "on a machine without it, pretrain from ArrayRecord shards (a directory from "
            "keras_electra.data.shards.write_shards / `build-data` with ArrayRecord output)"
        ) from None
    return pretraining_data, tfds_data


def _numpy_batches(dataset, count: int) -> list[dict[str, np.ndarray]]:
    return [{k: np.asarray(v) for k, v in _unpack_batch(b).items()} for b in dataset.take(count)]


def _run_pretraining(options: PretrainingOptions, output_dir: Path, verbose: int) -> dict[str, Any]:
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise ElectraError(f"pretraining runs on KERAS_BACKEND=tensorflow or jax, not {backend}")
    _check_resume_compatible(output_dir, options)
    if not options.sources:
        raise ElectraError("no corpus given (--corpus FILES_OR_DIR, TFRecord or ArrayRecord shards)")
    if options.mixed_precision not in (None, "mixed_bfloat16", "mixed_float16"):
        raise ElectraError(f"unknown --mixed-precision {options.mixed_precision!r}")
    if backend == "jax" and options.strategy in ("multiworker", "tpu"):
        jax_distribution(options.strategy)  # the one-line error, before any data is read
    sources, corpus_format = list(options.sources), options.corpus_format
    shards = _shard_directory(sources)
    eval_sources: list[str] = []
    if shards is not None:  # ids already: no tokenizer, no tf.data
        if options.eval_sources:
            raise ElectraError("--eval-corpus takes text files; with ArrayRecord shards the evaluation batches "
                               "come from the shards under another seed")
        tokenizer = _shard_vocabulary(shards, options, output_dir)
    else:
        pretraining_data, tfds_data = _tf_data_modules()
        if any(tfds_data.is_tfds(s) for s in sources):
            # TFDS text datasets become corpus files in the official layout (a blank line ends a document).
            sources = tfds_data.resolve_corpus_sources(sources, output_dir / "tfds_corpus", options.tfds_data_dir)
            corpus_format = "sentences" if corpus_format == "auto" else corpus_format
        if options.eval_sources:  # after TFDS: held-out files are split off real files
            sources, eval_sources = held_out_split(sources, list(options.eval_sources))
        tokenizer = None
    keras.utils.set_random_seed(options.seed)
    if tokenizer is None:
        tokenizer = _load_tokenizer(options, output_dir)

    if backend == "tensorflow":
        strategy = get_strategy(options.strategy)
        replicas = strategy.num_replicas_in_sync
        scope = strategy.scope()
        # Like Keras' own "auto", XLA stays off under Mirrored/MultiWorker strategies, where it
        # cannot place per-replica state (an explicit --jit on is refused there); TPUStrategy compiles
        # with XLA regardless.
        jit_compile = resolve_jit_compile(options.jit_compile, replicas)
    else:
        distribution = jax_distribution(options.strategy)
        replicas = len(distribution.device_mesh.devices.flatten()) if distribution else 1
        scope = distribution.scope() if distribution else contextlib.nullcontext()
        # JAX's only fast path is XLA (jax.jit); without it every op dispatches on its own.
        jit_compile = options.jit_compile not in (False, "off")
    if options.batch_size % replicas:
        raise ElectraError(f"--batch-size {options.batch_size} is not divisible by {replicas} replicas")
    with scope:
        pretrainer = build_pretrainer(options, tokenizer)
        optimizer = create_optimizer(options.learning_rate, options.steps, options.warmup_steps,
                                     bias_correction=options.adam_bias_correction)
        pretrainer.compile(optimizer=optimizer, jit_compile=jit_compile)
        optimizer.build(pretrainer.trainable_variables)

    saver = checkpoints.for_backend(pretrainer, optimizer, output_dir, verbose)
    restored = saver.restore()
    start_step = _step(pretrainer)
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

    if shards is not None:
        from keras_electra.data.shards import shard_batches

        # Shards are read by index: a resumed run continues the same stream at its step's batch.
        # Keras takes a generator of (inputs,) tuples.
        train_data = ((batch,) for batch in shard_batches(shards, options.batch_size, seed=options.seed,
                                                          start_batch=start_step))
        eval_data = list(itertools.islice(
            shard_batches(shards, options.batch_size, seed=options.seed + 1_000_003), options.eval_batches))
    else:
        # tf.data restarts with a seed derived from the step, so a resumed run does not replay the
        # batches it has already seen.
        def make_dataset(seed: int, repeat: bool = True, files: list[str] | None = None) -> tf.data.Dataset:
            return pretraining_data.pretraining_dataset(
                files or sources, tokenizer, seq_length=options.seq_length, batch_size=options.batch_size,
                seed=seed, corpus_format=corpus_format, sentence_objective=options.sentence_objective,
                repeat=repeat,
            )

        train_data = make_dataset(options.seed + start_step)
        eval_data = make_dataset(options.seed + 1_000_003, files=eval_sources or None)
        eval_data = eval_data.take(options.eval_batches).cache()
        if backend != "tensorflow":
            eval_data = _numpy_batches(eval_data, options.eval_batches)
    curve_path = output_dir / "heldout_curve.json"
    curve: list[dict[str, Any]] = read_json(curve_path) if start_step and curve_path.is_file() else []
    curve = [point for point in curve if point["step"] <= start_step]  # points after the checkpoint were lost
    held_out = HeldOutEvaluation(eval_data, options.eval_batches, options.eval_every or options.steps,
                                 output_dir / "logs" / "heldout", curve, curve_path)
    before = evaluate_pretrainer(pretrainer, eval_data, options.eval_batches)
    # Only now, with the options, model and data validated, does the run pin its files.
    if not (output_dir / "vocab.txt").is_file() or not has_checkpoint(output_dir):
        tokenizer.save_to_directory(output_dir)
    write_json(output_dir / RUN_CONFIG_FILE, dataclasses.asdict(options))
    if not curve:
        held_out.record(start_step, before)

    remaining = options.steps - start_step
    elapsed = 0.0
    from keras_electra.utils import tracking

    tracker = tracking.start(options.wandb, dataclasses.asdict(options), output_dir / "logs",
                             name=output_dir.name, job_type="pretrain")
    if remaining > 0:
        callbacks = [NonFiniteLossGuard(), StepCheckpoint(saver, options.checkpoint_every)]
        if backend == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(output_dir / "logs", update_freq=options.log_every))
        else:
            callbacks.append(JsonLinesLogger(output_dir / "logs" / "train.jsonl", options.log_every))
        if tracker is not None:  # W&B (--wandb): the same scalars, the held-out curve as it grows
            callbacks.append(tracking.keras_callback(tracker, options.log_every, curve))
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
        "steps": _step(pretrainer),
        "backend": backend,
        "replicas": replicas,
        "jit_compile": jit_compile,
        "trained_steps_this_run": remaining if remaining > 0 else 0,
        "seconds_this_run": round(elapsed, 2),
        "tokens_per_second": round(max(remaining, 0) * options.batch_size * options.seq_length / elapsed, 1)
        if elapsed else None,
        "eval_corpus": eval_sources or ("the shards, another seed" if shards is not None
                                        else "training corpus, another seed"),
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
    if tracker is not None:
        tracker.log_curve(curve)
        tracker.finish({k: v for k, v in result.items() if k != "heldout_curve"})
    return result
