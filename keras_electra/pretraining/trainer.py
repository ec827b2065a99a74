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
import os
import shutil
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
    # `--strategy multiworker` on JAX: jax.distributed's cluster (unset: KERAS_DISTRIBUTION_JOB_ADDRESSES,
    # KERAS_DISTRIBUTION_NUM_PROCESSES, KERAS_DISTRIBUTION_PROCESS_ID, else JAX's own detection on
    # Cloud TPU / SLURM). TensorFlow reads its cluster from TF_CONFIG.
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None

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
WORKERS_DIR = "workers"  # OUTPUT/workers/worker-N: the non-chief workers' scratch, removed at the end


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """This process's place in a multi-worker run: worker `index` of `count`; index 0 is the chief, which
    alone writes `--output` (checkpoints, logs, final models). The other workers restore from the chief's
    checkpoints and write what they must (TensorFlow saves collectively) to `OUTPUT/workers/worker-N`."""

    index: int = 0
    count: int = 1

    @property
    def chief(self) -> bool:
        return self.index == 0

    def write_dir(self, output_dir: Path) -> Path:
        return output_dir if self.chief else output_dir / WORKERS_DIR / f"worker-{self.index}"


def tf_worker_role() -> WorkerRole:
    """The role TF_CONFIG gives this process (MultiWorkerMirroredStrategy's cluster): a `chief` task is
    worker 0; without one, `worker` 0 is the chief (TensorFlow's rule). No TF_CONFIG: one worker."""
    raw = os.environ.get("TF_CONFIG", "").strip()
    if not raw:
        return WorkerRole()
    try:
        config = json.loads(raw)
        cluster, task = config.get("cluster") or {}, config.get("task") or {}
        kind, index = task.get("type", "worker"), int(task.get("index", 0))
        chiefs, workers = len(cluster.get("chief") or []), len(cluster.get("worker") or [])
    except (ValueError, TypeError, AttributeError) as err:
        raise ElectraError(f"TF_CONFIG is not a cluster specification ({err}); expected "
                           '{"cluster": {"worker": ["host:port", ...]}, "task": {"type": "worker", "index": I}}'
                           ) from None
    if kind not in ("chief", "worker") or not 0 <= index < (chiefs if kind == "chief" else workers):
        raise ElectraError(f"TF_CONFIG: task {kind} {index} is not a chief or worker of its cluster "
                           f"({chiefs} chief, {workers} workers)")
    return WorkerRole(index if kind == "chief" else index + chiefs, chiefs + workers)


def jax_cluster(options: PretrainingOptions) -> tuple[str | None, int | None, int | None]:
    """(coordinator, processes, process id) for jax.distributed: the options, else Keras' variables."""
    env = os.environ
    coordinator = options.coordinator or env.get("KERAS_DISTRIBUTION_JOB_ADDRESSES") or None
    if coordinator and "," in coordinator:  # Keras' variable may list every process; the first coordinates
        coordinator = coordinator.split(",")[0]
    values = []
    for value, name in ((options.num_processes, "KERAS_DISTRIBUTION_NUM_PROCESSES"),
                        (options.process_id, "KERAS_DISTRIBUTION_PROCESS_ID")):
        if value is None and env.get(name, "").strip():
            try:
                value = int(env[name])
            except ValueError:
                raise ElectraError(f"{name}={env[name]!r} is not an integer") from None
        values.append(value)
    processes, process_id = values
    given = [coordinator is not None, processes is not None, process_id is not None]
    if any(given) and not all(given):
        raise ElectraError("--strategy multiworker on JAX: give --coordinator HOST:PORT, --num-processes N and "
                           "--process-id I together (or none, where jax.distributed detects the cluster)")
    if processes is not None and (processes < 1 or not 0 <= process_id < processes):
        raise ElectraError(f"--process-id {process_id} is not in 0..{processes - 1} (--num-processes {processes})")
    return coordinator, processes, process_id


def jax_worker_role(options: PretrainingOptions) -> WorkerRole:
    if options.strategy != "multiworker":
        return WorkerRole()
    _, processes, process_id = jax_cluster(options)
    if processes is None:  # JAX detects the cluster (Cloud TPU, SLURM, ...) only when it starts
        import jax

        initialize_jax_cluster(options)
        return WorkerRole(jax.process_index(), jax.process_count())
    return WorkerRole(process_id, processes)


def initialize_jax_cluster(options: PretrainingOptions) -> None:
    """`jax.distributed.initialize` for `--strategy multiworker` on JAX, before JAX computes anything.

    On CPUs the cross-process collectives need an implementation (gloo); accelerators bring their own.
    """
    import jax

    if jax.distributed.is_initialized():
        return
    coordinator, processes, process_id = jax_cluster(options)
    if jax.config.jax_cpu_collectives_implementation in (None, "none", ""):
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    try:
        jax.distributed.initialize(coordinator_address=coordinator, num_processes=processes,
                                   process_id=process_id, initialization_timeout=300)
    except (ValueError, RuntimeError) as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ElectraError(f"--strategy multiworker: jax.distributed could not start ({reason}); give "
                           "--coordinator HOST:PORT --num-processes N --process-id I on every process") from None


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
        try:  # waits for every worker of TF_CONFIG; TensorFlow gives up after its own timeout (minutes)
            return tf.distribute.MultiWorkerMirroredStrategy()
        except tf.errors.OpError as err:
            reason = str(err).strip().splitlines()[0][:300] if str(err).strip() else type(err).__name__
            raise ElectraError(f"--strategy multiworker: the workers of TF_CONFIG did not all start ({reason})"
                               ) from None
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
    else None (one device). `multiworker`: DataParallel over the devices of every process (after
    `initialize_jax_cluster`); each process feeds its own rows of each global batch. `tpu` is a
    tf.distribute strategy: TensorFlow only (on JAX, a TPU pod is `multiworker`)."""
    if name == "tpu":
        raise ElectraError("--strategy tpu is a tf.distribute strategy and needs KERAS_BACKEND=tensorflow; on JAX "
                           "use --strategy mirrored (one host's devices) or multiworker (a pod's hosts)")
    if name not in STRATEGIES:
        raise ElectraError(f"unknown strategy {name!r}; choose auto, default, mirrored, multiworker or tpu")
    devices = keras.distribution.list_devices()  # every process's devices, after jax.distributed starts
    if name == "multiworker":
        # The trainer hands each process its rows (`_process_rows`), also for generators that Keras'
        # auto-sharding (tf.data only) refuses.
        return keras.distribution.DataParallel(devices=devices, auto_shard_dataset=False)
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

        config = pretraining_config(options.init, options.init_generator,
                                    generator_fraction=options.generator_fraction)
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
    return int(checkpoints.to_numpy(model.optimizer.iterations.value))


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

    def on_train_begin(self, logs=None):
        super().on_train_begin(logs)
        # A resumed run starts at its checkpoint's step. Decided from the step alone, so that every worker
        # of a multi-worker run decides alike (TensorFlow saves collectively: one saving alone would hang).
        self.saved = self.step if self.step else None

    def on_train_batch_end(self, batch, logs=None):
        if self._advance() % self.every == 0:
            self.saver.save(_step(self.model))  # (on JAX, `self.model` brings the variables up to date)
            self.saved = self.step

    def on_train_end(self, logs=None):
        step = _step(self.model)
        if self.saved != step:
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


def evaluate_pretrainer(pretrainer: ElectraPretrainer, dataset: EvalData, steps: int,
                        rows: slice = slice(None)) -> dict[str, Any]:
    """Evaluate with a fixed masking seed, so 'before' and 'after' see the same masks.

    Besides the pretrainer's metrics (discriminator AUC, generator MLM accuracy, ...) this measures
    the collapse signals of `diagnostics.collapse_signals` on the same, unmasked batches.
    `rows`: on JAX across processes, this process's rows of each (numpy) batch.
    """
    from keras_electra.pretraining.diagnostics import collapse_signals

    state = pretrainer.seed_generator.state
    saved = checkpoints.to_numpy(state.value)
    state.assign(np.array([12345, 0], dtype=saved.dtype))
    try:
        if isinstance(dataset, list):  # numpy batches: one array per feature, sliced back into the batches
            batches = [{k: v[rows] for k, v in b.items()} for b in dataset[:steps]]
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
                 curve: list[dict[str, Any]], curve_path: Path | None = None, rows: slice = slice(None)) -> None:
        super().__init__()
        self.dataset, self.batches, self.every, self.curve, self.rows = dataset, batches, every, curve, rows
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
            self.record(step, evaluate_pretrainer(self.model, self.dataset, self.batches, self.rows))
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
    role = worker_role(options)
    write_dir = role.write_dir(output_dir)
    # One run per output directory; a second stops at once naming the holder, before any download.
    # (The non-chief workers of a multi-worker run write only their scratch directory.)
    with output_lock(write_dir, inside=True):
        options = dataclasses.replace(options, init=resolve_optional(options.init),  # names -> local paths
                                      init_generator=resolve_optional(options.init_generator))
        previous = keras.distribution.distribution()
        try:
            result = _run_pretraining(options, output_dir, verbose, role)
        finally:
            keras.distribution.set_distribution(previous)
    if not role.chief:  # its checkpoints were copies of the chief's; the chief's are the ones resumed from
        shutil.rmtree(write_dir, ignore_errors=True)
        with contextlib.suppress(OSError):  # the last worker to finish removes the emptied folder
            write_dir.parent.rmdir()
    return result


def worker_role(options: PretrainingOptions) -> WorkerRole:
    """This process's role: TF_CONFIG's (TensorFlow) or jax.distributed's (JAX) under `multiworker`."""
    cluster_options = [name for name, value in (("--coordinator", options.coordinator),
                                                ("--num-processes", options.num_processes),
                                                ("--process-id", options.process_id)) if value is not None]
    backend = keras.backend.backend()
    if cluster_options and (options.strategy != "multiworker" or backend != "jax"):
        raise ElectraError(f"{', '.join(cluster_options)}: for --strategy multiworker on JAX only "
                           "(TensorFlow reads its cluster from TF_CONFIG)")
    if options.strategy != "multiworker":
        return WorkerRole()
    return tf_worker_role() if backend == "tensorflow" else jax_worker_role(options)


def _check_workers_agree(step: int, role: WorkerRole, strategy, output_dir: Path) -> None:
    """Every worker resumed from the same step, or all stop with one line (instead of training apart or
    hanging in a collective). A worker that cannot read the chief's `--output` starts from 0."""
    if role.count == 1:
        return
    if strategy is not None:
        import tensorflow as tf

        values = strategy.run(lambda: tf.constant([float(step), float(step) ** 2], tf.float64))
        mean, square = (float(v) for v in strategy.reduce("MEAN", values, axis=None).numpy())
        steps = [step] if square == mean * mean else [step, "another"]
    else:
        from jax.experimental import multihost_utils

        steps = sorted({int(v) for v in np.asarray(multihost_utils.process_allgather(np.int64(step)))})
    if len(steps) > 1:
        raise CheckpointError(f"the workers resumed from different steps ({', '.join(map(str, steps))}; "
                              f"worker {role.index}: {step}); --output {output_dir} must be one directory that "
                              "every worker reads (a shared file system)")


def _process_rows(batch: dict, role: WorkerRole) -> dict:
    """JAX multiworker: this process's rows of a global batch (process i feeds the i-th slice, as the
    devices of a one-process DataParallel run take theirs)."""
    if role.count == 1:
        return batch
    size = next(iter(batch.values())).shape[0] // role.count
    return {key: value[role.index * size:(role.index + 1) * size] for key, value in batch.items()}


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


def _run_pretraining(options: PretrainingOptions, output_dir: Path, verbose: int,
                     role: WorkerRole | None = None) -> dict[str, Any]:
    """Reads `output_dir` (a resumed run, the chief's checkpoints); writes `role.write_dir(output_dir)`."""
    role = role or WorkerRole()
    write_dir = role.write_dir(output_dir)
    backend = keras.backend.backend()
    if backend not in ("tensorflow", "jax"):
        raise ElectraError(f"pretraining runs on KERAS_BACKEND=tensorflow or jax, not {backend}")
    _check_resume_compatible(output_dir, options)
    if not options.sources:
        raise ElectraError("no corpus given (--corpus FILES_OR_DIR, TFRecord or ArrayRecord shards)")
    if options.mixed_precision not in (None, "mixed_bfloat16", "mixed_float16"):
        raise ElectraError(f"unknown --mixed-precision {options.mixed_precision!r}")
    if backend == "jax" and options.strategy == "tpu":
        jax_distribution(options.strategy)  # the one-line error, before any data is read
    if backend == "jax" and options.strategy == "multiworker":
        initialize_jax_cluster(options)  # before JAX computes anything
    strategy = None
    if backend == "tensorflow":
        # First: MultiWorkerMirroredStrategy configures the collective ops, which TensorFlow accepts
        # only before its runtime starts (any op, the tokenizer's included, starts it).
        strategy = get_strategy(options.strategy)
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
            sources = tfds_data.resolve_corpus_sources(sources, write_dir / "tfds_corpus", options.tfds_data_dir)
            corpus_format = "sentences" if corpus_format == "auto" else corpus_format
        if options.eval_sources:  # after TFDS: held-out files are split off real files
            sources, eval_sources = held_out_split(sources, list(options.eval_sources))
        tokenizer = None
    keras.utils.set_random_seed(options.seed)
    if tokenizer is None:
        tokenizer = _load_tokenizer(options, output_dir)

    if backend == "tensorflow":
        replicas = strategy.num_replicas_in_sync
        scope = strategy.scope()
        # Like Keras' own "auto", XLA stays off under Mirrored/MultiWorker strategies, where it
        # cannot place per-replica state (an explicit --jit on is refused there); TPUStrategy compiles
        # with XLA regardless.
        jit_compile = resolve_jit_compile(options.jit_compile, replicas)
    else:
        distribution = jax_distribution(options.strategy)
        replicas = len(distribution.device_mesh.devices.flatten()) if distribution else 1
        scope = contextlib.nullcontext()
        # For the whole run, not only while building: Keras' JAX trainer shards each batch over the devices
        # (and, across processes, assembles the global batch) only where a distribution is set when `fit`
        # and `evaluate` run. (`run_pretraining` restores the previous one.)
        keras.distribution.set_distribution(distribution)
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

    saver = checkpoints.for_backend(pretrainer, optimizer, write_dir, verbose, restore_from=output_dir)
    restored = saver.restore()
    start_step = _step(pretrainer)
    _check_workers_agree(start_step, role, strategy, output_dir)
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
        train_data = ((_process_rows(batch, role),) for batch in shard_batches(
            shards, options.batch_size, seed=options.seed, start_batch=start_step))
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
            if role.count > 1:
                train_data = train_data.map(lambda batch: _process_rows(batch, role))
        elif role.count > 1:
            # Every worker packs the whole stream and keeps its replicas' part of each global batch, so N
            # workers train on exactly the batches of one process with N replicas (TensorFlow's AUTO
            # policy would shard by file where the corpus has several, giving other batches).
            import tensorflow as tf

            data_options = tf.data.Options()
            data_options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
            train_data, eval_data = train_data.with_options(data_options), eval_data.with_options(data_options)
    saved_curve = output_dir / "heldout_curve.json"  # the chief's
    curve: list[dict[str, Any]] = read_json(saved_curve) if start_step and saved_curve.is_file() else []
    curve = [point for point in curve if point["step"] <= start_step]  # points after the checkpoint were lost
    curve_path = write_dir / "heldout_curve.json"
    rows = slice(None) if backend == "tensorflow" or role.count == 1 else slice(
        role.index * options.batch_size // role.count, (role.index + 1) * options.batch_size // role.count)
    held_out = HeldOutEvaluation(eval_data, options.eval_batches, options.eval_every or options.steps,
                                 write_dir / "logs" / "heldout", curve, curve_path, rows=rows)
    before = evaluate_pretrainer(pretrainer, eval_data, options.eval_batches, rows=rows)
    # Only now, with the options, model and data validated, does the run pin its files.
    if not (write_dir / "vocab.txt").is_file() or not has_checkpoint(write_dir):
        tokenizer.save_to_directory(write_dir)
    write_json(write_dir / RUN_CONFIG_FILE, dataclasses.asdict(options))
    if not curve:
        held_out.record(start_step, before)

    remaining = options.steps - start_step
    elapsed = 0.0
    from keras_electra.utils import tracking

    tracker = tracking.start(options.wandb if role.chief else None, dataclasses.asdict(options),
                             write_dir / "logs", name=output_dir.name, job_type="pretrain")
    if remaining > 0:
        callbacks = [NonFiniteLossGuard(), StepCheckpoint(saver, options.checkpoint_every)]
        if backend == "tensorflow":
            callbacks.append(keras.callbacks.TensorBoard(write_dir / "logs", update_freq=options.log_every))
        else:
            callbacks.append(JsonLinesLogger(write_dir / "logs" / "train.jsonl", options.log_every))
        if tracker is not None:  # W&B (--wandb): the same scalars, the held-out curve as it grows
            callbacks.append(tracking.keras_callback(tracker, options.log_every, curve))
        if options.eval_every:
            callbacks.append(held_out)
        started = time.perf_counter()
        pretrainer.fit(
            train_data, steps_per_epoch=remaining, epochs=1, callbacks=callbacks, verbose=verbose,
        )
        elapsed = time.perf_counter() - started
    after = evaluate_pretrainer(pretrainer, eval_data, options.eval_batches, rows=rows)
    if role.chief:
        save_pretrained_models(pretrainer, tokenizer, output_dir)
    result = {
        "steps": _step(pretrainer),
        "backend": backend,
        "replicas": replicas,
        "workers": role.count,
        "worker": role.index,
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
    write_json(write_dir / METRICS_FILE, result)
    if tracker is not None:
        tracker.log_curve(curve)
        tracker.finish({k: v for k, v in result.items() if k != "heldout_curve"})
    return result
