"""`keras-electra quickstart` and `keras-electra pretrain`."""

from __future__ import annotations

import argparse
import json

from keras_electra.config import PRESETS, parse_overrides
from keras_electra.utils.devices import JIT_CHOICES


def register(subparsers) -> None:
    quick = subparsers.add_parser(
        "quickstart", help="real encoder -> continued ELECTRA pretraining -> RTD demo -> SST-2 -> export",
        description="Fetch and convert MiniLM, continue ELECTRA pretraining on Python's own English text "
        "(metrics on held-out text before and after), show replaced-token detection on five sentences, "
        "fine-tune SST-2 on a subset, export a SavedModel and an int8 TFLite model and predict with each.",
    )
    quick.add_argument("--corpus", nargs="+", help="text files or directories for step 2 (default: Python's "
                       "language reference from pydoc_data, its last 10%% held out)")
    quick.add_argument("--output", default="quickstart_output", help="output directory")
    quick.add_argument("--steps", type=int, default=150, help="continued-pretraining steps")
    quick.add_argument("--batch-size", type=int, default=8)
    quick.add_argument("--seq-length", type=int, default=64)
    quick.add_argument("--learning-rate", type=float, default=2e-4)
    quick.add_argument("--sst2", metavar="DIR", help="GLUE SST-2 directory (default: ../shared/data/glue/SST-2 "
                       "or $KERAS_ELECTRA_SHARED_DATA/glue/SST-2)")
    quick.add_argument("--sst2-train-examples", type=int, default=3000)
    quick.add_argument("--finetune-epochs", type=int, default=1)
    quick.add_argument("--finetune-learning-rate", type=float, default=6e-4)
    quick.add_argument("--finetune-batch-size", type=int, default=16)
    quick.add_argument("--seed", type=int, default=0)
    quick.set_defaults(func=_quickstart)

    pre = subparsers.add_parser(
        "pretrain", help="pretrain (or resume) ELECTRA on a corpus or TFRecord shards",
        description="Joint generator/discriminator pretraining. Running the same command again resumes "
        "from the latest checkpoint in --output. Runs on KERAS_BACKEND=tensorflow (default) or jax, with the "
        "same objective. Needs TensorFlow (tensorflow-text): text corpora, TFRecord shards and tfds: sources "
        "(tokenised with tf.data), --strategy multiworker/tpu and TensorBoard logs. Without TensorFlow (JAX): "
        "pretrain from an ArrayRecord shard directory; strategies auto/default/mirrored use "
        "keras.distribution.DataParallel, checkpoints are checkpoints/ckpt-STEP.npz and the training logs "
        "go to logs/train.jsonl.",
    )
    pre.add_argument("--preset", default="tiny", choices=sorted(PRESETS),
                     help="model size and recipe: small, base, large (paper Table 6); tiny (default) is a "
                     "debug size for tests and laptops, not a paper model")
    pre.add_argument("--corpus", nargs="+", required=True,
                     help="text files, directories, TFRecord shards, or tfds:NAME[@SPLIT] (a TensorFlow Datasets "
                     "text dataset, e.g. tfds:wikipedia/20230601.en; default split train): these need TensorFlow; "
                     "or one ArrayRecord shard directory (keras_electra.data.shards), which does not")
    pre.add_argument("--tfds-data-dir", metavar="DIR", help="TFDS data directory for tfds: corpora")
    pre.add_argument("--vocab", help="vocab.txt (required unless --init, resuming or ArrayRecord shards, whose "
                     "metadata holds theirs, provide one); for a scratch run, learn it from the corpus with "
                     "`keras-electra build-vocab`, so that every embedding row is trained")
    casing = pre.add_mutually_exclusive_group()
    casing.add_argument("--cased", action="store_true",
                        help="keep the case (default: the --vocab's tokenizer.json, as build-vocab writes it, else "
                        "uncased)")
    casing.add_argument("--uncased", action="store_true", help="lower-case and strip accents")
    pre.add_argument("--output", required=True, help="output directory (checkpoints, logs, final models)")
    pre.add_argument("--steps", type=int, help="total training steps (default: the preset's)")
    pre.add_argument("--batch-size", type=int)
    pre.add_argument("--seq-length", type=int)
    pre.add_argument("--learning-rate", type=float)
    pre.add_argument("--warmup-steps", type=int)
    pre.add_argument("--mask-rate", type=float)
    pre.add_argument("--mixed-precision", choices=["mixed_bfloat16", "mixed_float16"])
    pre.add_argument("--jit", choices=JIT_CHOICES, default="auto",
                     help="XLA-compile the train step (TensorFlow, auto: on GPU/TPU, off on CPU where it is slower; "
                     "JAX always compiles with XLA unless off)")
    pre.add_argument("--no-jit", dest="jit", action="store_const", const="off", help="same as --jit off")
    pre.add_argument("--objective", choices=["electra", "mlm"], default="electra")
    pre.add_argument("--sentence-objective", choices=["nsp", "sop"])
    pre.add_argument("--generator-fraction", type=float)
    pre.add_argument("--config", action="append", metavar="KEY=VALUE",
                     help="change one ElectraConfig field of the preset, e.g. --config num_layers=4 (repeatable)")
    pre.add_argument("--disallow-correct", action="store_true",
                     help="forbid the generator from sampling the original token (official default: off)")
    fidelity = pre.add_argument_group(
        "deviations from the official code (each defaults to the official value, except --mask-sampling)")
    fidelity.add_argument("--adam-bias-correction", action="store_true",
                          help="Adam with bias correction (Keras/PyTorch style); official: none (default)")
    fidelity.add_argument("--mask-sampling", choices=["without_replacement", "with_replacement"],
                          default="without_replacement",
                          help="masked positions: distinct (default; exactly round(len*p) masked) or drawn with "
                          "replacement like the official tf.random.categorical (~13.8%% distinct at p=0.15, L=128)")
    fidelity.add_argument("--default-initializer", choices=["glorot_uniform", "truncated_normal"],
                          help="init of embeddings_project and the RTD output layer: glorot_uniform (official, "
                          "default) or truncated normal(initializer_range) like Hugging Face")
    pre.add_argument("--temperature", type=float, default=1.0)
    pre.add_argument("--corpus-format", choices=["auto", "sentences", "paragraphs"], default="auto")
    pre.add_argument("--seed", type=int, default=0)
    pre.add_argument("--log-every", type=int, default=50)
    pre.add_argument("--checkpoint-every", type=int, default=500)
    pre.add_argument("--eval-batches", type=int, default=10)
    pre.add_argument("--eval-corpus", nargs="+", metavar="FILES",
                     help="held-out text for the evaluation (AUC, MLM accuracy, collapse signals); files under "
                     "--corpus are left out of training (default: the training corpus under another seed)")
    pre.add_argument("--eval-every", type=int, metavar="N",
                     help="evaluate on the held-out batches every N steps: heldout_curve.json, metrics.json "
                     "and TensorBoard logs/heldout (default: before and after training only)")
    pre.add_argument("--strategy", default="auto", choices=["auto", "default", "mirrored", "multiworker", "tpu"],
                     help="TensorFlow: tf.distribute (auto: TPU if attached, Mirrored over several GPUs; "
                     "multiworker: MultiWorkerMirroredStrategy over the hosts of TF_CONFIG). JAX: "
                     "mirrored = keras.distribution.DataParallel over every device, auto = DataParallel over "
                     "several GPUs/TPUs, else one device; multiworker = jax.distributed (--coordinator ...) and "
                     "DataParallel over every process's devices; tpu needs TensorFlow. Multi-worker: every "
                     "worker gets the same --output (a shared file system); worker 0 writes it")
    cluster = pre.add_argument_group(
        "JAX multi-process (--strategy multiworker; default: KERAS_DISTRIBUTION_JOB_ADDRESSES, "
        "KERAS_DISTRIBUTION_NUM_PROCESSES, KERAS_DISTRIBUTION_PROCESS_ID, else jax.distributed's detection)")
    cluster.add_argument("--coordinator", metavar="HOST:PORT",
                         help="process 0's address for jax.distributed.initialize (the same on every process)")
    cluster.add_argument("--num-processes", type=int, metavar="N", help="processes (hosts) in the run")
    cluster.add_argument("--process-id", type=int, metavar="I", help="this process's index, 0..N-1 (0 writes "
                         "--output)")
    pre.add_argument("--init", help="continue pretraining from a checkpoint: Google TF1, Hugging Face "
                     "ElectraForPreTraining dir, or a keras-electra convert/pretrain output; from an encoder "
                     "alone (BERT, keras-hub, ElectraModel) the RTD head and the generator start fresh")
    pre.add_argument("--init-generator", help="the Hugging Face ElectraForMaskedLM dir that goes with --init")
    pre.add_argument("--two-stage-from", metavar="MLM_RUN",
                     help="the paper's two-stage training: a `--objective mlm` run's masked LM is the frozen "
                     "generator and the discriminator's starting point")
    pre.add_argument("--wandb", metavar="PROJECT",
                     help="also log to Weights & Biases (TensorBoard is always written)")
    pre.set_defaults(func=_pretrain)


def _quickstart(args: argparse.Namespace) -> int:
    from keras_electra.pretraining.quickstart import run_quickstart

    run_quickstart(args.output, args.corpus, steps=args.steps, batch_size=args.batch_size,
                   seq_length=args.seq_length, learning_rate=args.learning_rate, sst2=args.sst2,
                   sst2_train_examples=args.sst2_train_examples, finetune_epochs=args.finetune_epochs,
                   finetune_learning_rate=args.finetune_learning_rate, finetune_batch_size=args.finetune_batch_size,
                   seed=args.seed)
    return 0


def _lower_case(args: argparse.Namespace) -> bool:
    """--cased / --uncased, else the casing the --vocab's tokenizer.json records (else uncased)."""
    from keras_electra.data.cli import casing_flag
    from keras_electra.data.vocabulary import resolve_casing

    lower_case = casing_flag(args.cased, args.uncased)
    if lower_case is None and args.vocab:
        lower_case, _ = resolve_casing(args.vocab)
    return True if lower_case is None else lower_case


def _pretrain(args: argparse.Namespace) -> int:
    from keras_electra.pretraining.trainer import PretrainingOptions, run_pretraining

    options = PretrainingOptions(
        preset=args.preset, sources=args.corpus, vocab=args.vocab, lower_case=_lower_case(args),
        steps=args.steps, batch_size=args.batch_size, seq_length=args.seq_length,
        learning_rate=args.learning_rate, warmup_steps=args.warmup_steps, mask_rate=args.mask_rate,
        mixed_precision=args.mixed_precision, jit_compile=args.jit, objective=args.objective,
        sentence_objective=args.sentence_objective, generator_fraction=args.generator_fraction,
        disallow_correct=args.disallow_correct, temperature=args.temperature, corpus_format=args.corpus_format,
        seed=args.seed, log_every=args.log_every, checkpoint_every=args.checkpoint_every,
        eval_batches=args.eval_batches, strategy=args.strategy, init=args.init,
        init_generator=args.init_generator, two_stage_from=args.two_stage_from,
        model_overrides={**parse_overrides(args.config),
                         **({"default_initializer": args.default_initializer} if args.default_initializer else {})},
        adam_bias_correction=args.adam_bias_correction, mask_sampling=args.mask_sampling,
        tfds_data_dir=args.tfds_data_dir,
        eval_sources=args.eval_corpus or (), eval_every=args.eval_every, wandb=args.wandb,
        coordinator=args.coordinator, num_processes=args.num_processes, process_id=args.process_id,
    )
    result = run_pretraining(options, args.output)
    print(json.dumps({"eval_corpus": result["eval_corpus"], "before": result["before"], "after": result["after"]},
                     indent=2))
    if result.get("worker", 0):
        print(f"Worker {result['worker']} of {result['workers']} done; worker 0 saved the models under {args.output}")
    else:
        print(f"Saved the discriminator and generator under {args.output}")
    return 0
