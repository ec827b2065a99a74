"""`keras-electra finetune | evaluate | predict`: argument parsing only."""

from __future__ import annotations

import dataclasses
import json
import sys

from keras_electra.utils.devices import JIT_CHOICES

PRESET_CHOICES = ("tiny", "small", "base", "large")


def register(subparsers) -> None:
    from keras_electra.tasks.registry import TASKS

    task_help = "; ".join(f"{name}: {spec.description}" for name, spec in TASKS.items())

    # ------------------------------------------------------------------ finetune
    p = subparsers.add_parser(
        "finetune",
        help="fine-tune a discriminator on a task (the paper's recipe by default)",
        description="Fine-tune ELECTRA with the paper's recipe: LR by model size, layer-wise LR decay, 10% "
        "warm-up + linear decay, AdamW eps 1e-6 without weight decay or bias correction, batch 32, a fixed "
        "number of epochs and the last checkpoint (--seeds: the median over seeds, as the paper reports). "
        "Every deviation from the official code is an option below whose default is the official value, "
        "except the layer-wise decay's off-by-one (--legacy-layerwise-decay) and the NER head (--tagging-head). "
        "Runs on Keras' TensorFlow (default) or JAX backend (KERAS_BACKEND=jax); either way TensorFlow must be "
        "installed: the data pipeline is tf.data with tensorflow-text, and prediction and export need it.",
    )
    p.add_argument("--task", metavar="NAME", help=f"task name ({task_help}); default with --tfds: from its name")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", metavar="PATH",
                        help="the task's data directory (e.g. ../shared/data/glue/SST-2) or file")
    source.add_argument("--tfds", metavar="NAME[/CONFIG]",
                        help="a TensorFlow Datasets dataset instead of --data: glue/sst2, glue/mrpc, conll2003, "
                        "squad... (tfds.load; downloads what is not in --tfds-data-dir)")
    p.add_argument("--tfds-data-dir", metavar="DIR",
                   help="TFDS data directory (default: TFDS's, ~/tensorflow_datasets)")
    p.add_argument("--init", required=True, metavar="CHECKPOINT|random",
                   help="any checkpoint `convert` reads (pretrain/convert output, Hugging Face ELECTRA or BERT "
                   "directory, TF1 checkpoint, keras-hub preset, or a name: `keras-electra models`), or 'random'")
    p.add_argument("--output", required=True, metavar="DIR", help="where the model, results and plots go")
    p.add_argument("--overwrite", action="store_true", help="replace the model already in --output")
    size = p.add_argument_group("model")
    size.add_argument("--preset", choices=PRESET_CHOICES,
                      help="model size: the architecture for --init random (default small) and the LR defaults; "
                      "small, base, large are the paper's; tiny is a debug size (tests, laptops), not a paper model")
    size.add_argument("--vocab", metavar="PATH", help="vocab.txt for --init random")
    casing = size.add_mutually_exclusive_group()
    casing.add_argument("--cased", action="store_true",
                        help="--init random: keep the case (default: the --vocab's tokenizer.json, else uncased)")
    casing.add_argument("--uncased", action="store_true", help="--init random: lower-case and strip accents")
    size.add_argument("--config", action="append", metavar="KEY=VALUE",
                      help="change one ElectraConfig field of the --init random network, e.g. --config num_layers=4")
    size.add_argument("--head", choices=("electra", "huggingface"),
                      help="task head of classification, regression, multiple choice and QA: the official code's "
                      "(default) or Hugging Face's (NER: --tagging-head; relations have one head)")
    size.add_argument("--seq-length", type=int, metavar="L",
                      help="tokens per example (default: the task's; QA 384, the official QA config uses 512)")
    opt = p.add_argument_group("recipe (defaults: the paper's)")
    opt.add_argument("--epochs", type=int, metavar="N", help="default 3; 10: STS-B, RTE, table-regression; 2: QA")
    opt.add_argument("--batch-size", type=int, default=32, metavar="N")
    opt.add_argument("--eval-batch-size", type=int, metavar="N")
    opt.add_argument("--learning-rate", type=float, metavar="X", help="default 3e-4 Small/tiny, 1e-4 Base, 5e-5 Large")
    opt.add_argument("--layerwise-lr-decay", type=float, metavar="X", help="default 0.8 (0.9 Large)")
    opt.add_argument("--legacy-layerwise-decay", action="store_true",
                     help="the official code's layer-wise depths exactly (google-research/electra#51): head x1, "
                     "top block x decay^2 ... embeddings x decay^(n+2); default: the gap closed (top block x decay)")
    opt.add_argument("--warmup-fraction", type=float, default=0.1, metavar="X")
    opt.add_argument("--weight-decay", type=float, default=0.0, metavar="X")
    opt.add_argument("--dropout", type=float, metavar="X",
                     help="dropout of the encoder and the head (default: 0.1 in the head, the --init model's own "
                     "in the encoder; 0.1 for every released model and --init random)")
    opt.add_argument("--seed", type=int, default=0)
    opt.add_argument("--seeds", type=int, nargs="+", metavar="S",
                     help="train one model per seed: report the median dev score (the paper: 10 seeds on GLUE) "
                     "and the ensemble (averaged probabilities)")
    opt.add_argument("--protocol", choices=("paper", "best-dev"), default="paper",
                     help="paper (default): fixed epochs, the last checkpoint, the median over --seeds, the median "
                     "seed's model saved; best-dev: keep each seed's best dev epoch, stop early (--patience), "
                     "save the best seed")
    opt.add_argument("--patience", type=int, default=3, metavar="N",
                     help="--protocol best-dev: stop after N epochs without a better dev score (0: never)")
    opt.add_argument("--no-double-unordered", dest="double_unordered", action="store_false",
                     help="MRPC, STS-B: train on each pair in its given order only (official, default: both orders)")
    opt.add_argument("--adam-bias-correction", action="store_true",
                     help="Adam with bias correction (Keras/PyTorch style); official: none (default)")
    opt.add_argument("--default-initializer", choices=("glorot_uniform", "truncated_normal"),
                     help="init of the new task head (and of embeddings_project for --init random): "
                     "glorot_uniform (official, default) or truncated normal(0.02) like Hugging Face")
    opt.add_argument("--label-smoothing", type=float, default=0.0, metavar="X",
                     help="classification, tagging, relation and multiple-choice losses (default 0: none)")
    opt.add_argument("--fgm-epsilon", type=float, default=0.0, metavar="X",
                     help="FGM adversarial training on the word embeddings with this epsilon (e.g. 1.0); "
                     "TensorFlow and JAX backends")
    opt.add_argument("--peft", choices=("none", "lora", "adalora", "adapter", "prefix", "bitfit"), default="none",
                     help="parameter-efficient fine-tuning")
    opt.add_argument("--lora-rank", type=int, default=8, metavar="R")
    opt.add_argument("--adapter-size", type=int, default=64, metavar="N", help="bottleneck size for --peft adapter")
    _add_peft_options(opt)
    opt.add_argument("--freeze-layers", type=int, default=0, metavar="K", help="freeze embeddings + bottom K blocks")
    opt.add_argument("--jit", choices=JIT_CHOICES, default="auto",
                     help="XLA-compile the train step (auto: on GPU/TPU, off on CPU where it is slower; "
                     "always on under KERAS_BACKEND=jax, where off means op-by-op eager execution)")
    opt.add_argument("--no-jit", dest="jit", action="store_const", const="off", help="same as --jit off")
    data = p.add_argument_group("data")
    data.add_argument("--max-train-examples", type=int, metavar="N", help="train on N examples (sampled with --seed)")
    data.add_argument("--max-eval-examples", type=int, metavar="N", help="evaluate on N examples")
    data.add_argument("--train-examples", type=int, metavar="N", help="few-shot: N training examples per class")
    data.add_argument("--train-split", metavar="NAME")
    data.add_argument("--dev-split", metavar="NAME")
    data.add_argument("--test-split", metavar="NAME")
    data.add_argument("--evaluate-test", action="store_true", help="also score the test split at the end")
    data.add_argument("--dev-fraction", type=float, default=0.1, metavar="X",
                      help="when --data is one file (no dev split): hold out this fraction, drawn with --seed")
    data.add_argument("--text-columns", nargs="+", metavar="COL", help="table tasks: one or two text columns")
    data.add_argument("--label-column", metavar="COL", help="table tasks: the label column")
    data.add_argument("--labels", nargs="+", metavar="LABEL",
                      help="table tasks: the label set, in id order; NER: the tag set (default: from the data); "
                      "with --prompt: WORD=LABEL for every label, e.g. great=1 terrible=0")
    task = p.add_argument_group("task options")
    task.add_argument("--doc-stride", type=int, metavar="N", help="QA: window step in tokens (default 128; 0: off)")
    task.add_argument("--max-query-length", type=int, metavar="N", help="QA: question tokens kept (default 64)")
    task.add_argument("--max-answer-length", type=int, metavar="N", help="QA: answer tokens at most (default 30)")
    task.add_argument("--n-best", type=int, metavar="N", help="QA: candidates per window (default 20)")
    task.add_argument("--allow-no-answer", action="store_true", help="QA: SQuAD 2.0 style no-answer prediction")
    task.add_argument("--null-score-threshold", type=float, metavar="X",
                      help="QA: no-answer threshold (default: -2.75 on the answerability logit with --head electra, "
                      "official; 0 on null minus best span score with --head huggingface)")
    task.add_argument("--pooling", choices=("cls", "entity_start"), help="relations: default entity_start")
    task.add_argument("--tagging-head", choices=("huggingface", "official"),
                      help="NER: huggingface (default: dropout, IOB2 tags, loss averaged over words) or official "
                      "(the official ELECTRA tagger: no dropout, BIOES tags, loss summed per sentence)")
    task.add_argument("--num-choices", type=int, metavar="N", help="multiple choice: choices per question")
    prompt = p.add_argument_group("prompt-based few-shot (ELECTRA's RTD head scores label words; see zero-shot)")
    prompt.add_argument("--prompt", metavar="TEMPLATE",
                        help="classify through a template with {label}, e.g. \"{text} It was {label}.\" (pairs: "
                        "{text_a}, {text_b}); --labels then gives WORD=LABEL for every label; trains the RTD head "
                        "and encoder with binary cross-entropy on the label word (Xia et al. 2022)")
    aug = p.add_argument_group("augmentation (default: none, the official recipe)")
    aug.add_argument("--augment", choices=("none", "generator"), default="none",
                     help="generator: add --augment-copies copies of every training example (after --train-examples "
                     "sampling; never dev or test) in which --augment-rate of the word pieces (whole words first; "
                     "never [CLS]/[SEP]/padding) are masked and resampled by an ELECTRA generator, labels kept; "
                     "deterministic under --seed; classification and regression tasks only")
    aug.add_argument("--augment-generator", metavar="DIR",
                     help="the generator: a pretrain or convert output directory (its generator/), or a converted "
                     "generator (`convert --part generator`); its vocabulary must be the task model's "
                     "(default: --init's generator)")
    aug.add_argument("--augment-copies", type=int, metavar="N", help="copies per training example (default 4)")
    aug.add_argument("--augment-rate", type=float, metavar="P",
                     help="fraction of the word pieces resampled in each copy, in (0, 1] (default 0.15, the "
                     "pretraining mask rate; at least one piece)")
    p.add_argument("--wandb", metavar="PROJECT", help="also log to Weights & Biases (TensorBoard is always written)")
    p.add_argument("--quiet", action="store_true", help="one line per epoch instead of progress bars")
    p.set_defaults(func=_finetune)

    # ------------------------------------------------------------------ evaluate
    e = subparsers.add_parser("evaluate", help="score a fine-tuned model on a task's data",
                              description="Score a fine-tuned model, or an export of it, on one split of a task's "
                              "data.")
    e.add_argument("--model", required=True, metavar="PATH",
                   help="a directory written by `finetune`, a fine-tuned Hugging Face ELECTRA task checkpoint, or "
                        "an export (SavedModel directory, token-ids .tflite, .onnx)")
    e.add_argument("--task", metavar="NAME",
                   help="default: the task the model was trained on (required for a Hugging Face checkpoint)")
    e.add_argument("--data", required=True, metavar="PATH", help="a data directory or file, or tfds:NAME[/CONFIG]")
    e.add_argument("--tfds-data-dir", metavar="DIR", help="TFDS data directory for --data tfds:NAME")
    e.add_argument("--split", default="dev", help="dev (default), test, ...")
    e.add_argument("--max-examples", type=int, metavar="N")
    e.add_argument("--batch-size", type=int, default=32, metavar="N")
    e.add_argument("--text-columns", nargs="+", metavar="COL", help="table tasks (default: the training columns)")
    e.add_argument("--label-column", metavar="COL", help="table tasks (default: the training column)")
    e.add_argument("--json", action="store_true", help="print the scores as JSON")
    e.set_defaults(func=_evaluate)

    # ------------------------------------------------------------------- predict
    r = subparsers.add_parser("predict", help="labels, entities or answers for typed text",
                              description="Run a fine-tuned model on text. Classifiers take TEXT (a pair as "
                              "'a ||| b'); NER takes TEXT; QA takes --context and --question; relations take "
                              "TEXT with <e1>..</e1> <e2>..</e2>; multiple choice takes --context, --question "
                              "and the choices as TEXT. '-' reads texts from stdin, one per line.")
    r.add_argument("--model", required=True, metavar="DIR")
    r.add_argument("texts", nargs="*", metavar="TEXT")
    r.add_argument("--question", action="append", metavar="Q")
    r.add_argument("--context", metavar="C")
    r.add_argument("--batch-size", type=int, default=32, metavar="N")
    r.add_argument("--json", action="store_true", help="print JSON")
    r.set_defaults(func=_predict)


def _task_options(args) -> dict:
    names = {"doc_stride": args.doc_stride, "max_query_length": args.max_query_length,
             "max_answer_length": args.max_answer_length, "n_best": args.n_best,
             "null_score_threshold": args.null_score_threshold, "pooling": args.pooling,
             "num_choices": args.num_choices, "tagging_head": args.tagging_head}
    options = {k: v for k, v in names.items() if v is not None}
    if args.allow_no_answer:
        options["allow_no_answer"] = True
    return options


def _finetune(args) -> int:
    from keras_electra.config import parse_overrides
    from keras_electra.data import tfds_data
    from keras_electra.errors import ElectraError

    data = args.data
    if args.tfds:
        data = tfds_data.PREFIX + tfds_data.parse_name(args.tfds)
    task = args.task or (tfds_data.task_for(args.tfds) if args.tfds else None)
    if not task:
        raise ElectraError("--task is required (it can be left out only with --tfds)")
    from keras_electra.data.cli import casing_flag
    from keras_electra.tasks.finetune import FinetuneConfig, finetune

    config = FinetuneConfig(
        task=task, data=data, init=args.init, output=args.output, preset=args.preset, vocab=args.vocab,
        lower_case=casing_flag(args.cased, args.uncased), epochs=args.epochs, batch_size=args.batch_size,
        eval_batch_size=args.eval_batch_size, learning_rate=args.learning_rate,
        layerwise_lr_decay=args.layerwise_lr_decay, legacy_layerwise_decay=args.legacy_layerwise_decay,
        warmup_fraction=args.warmup_fraction, weight_decay=args.weight_decay, dropout=args.dropout,
        seq_length=args.seq_length, seed=args.seed, seeds=args.seeds, max_train_examples=args.max_train_examples,
        max_eval_examples=args.max_eval_examples, train_examples_per_class=args.train_examples,
        early_stopping_patience=args.patience or None, label_smoothing=args.label_smoothing,
        protocol=args.protocol, double_unordered=args.double_unordered,
        adam_bias_correction=args.adam_bias_correction, default_initializer=args.default_initializer,
        fgm_epsilon=args.fgm_epsilon, peft=args.peft, lora_rank=args.lora_rank,
        adapter_size=args.adapter_size, freeze_layers=args.freeze_layers, **_peft_options(args),
        head=args.head, jit_compile=args.jit, train_split=args.train_split, dev_split=args.dev_split,
        test_split=args.test_split, evaluate_test=args.evaluate_test, task_options=_task_options(args),
        text_columns=args.text_columns, label_column=args.label_column, labels=args.labels,
        verbose=2 if args.quiet else "auto", model_overrides=parse_overrides(args.config),
        overwrite=args.overwrite, dev_fraction=args.dev_fraction, tfds_data_dir=args.tfds_data_dir,
        prompt=args.prompt, wandb=args.wandb, augment=args.augment, augment_generator=args.augment_generator,
        augment_copies=args.augment_copies, augment_rate=args.augment_rate,
    )
    if args.prompt is not None:  # --labels are the label words
        config = dataclasses.replace(config, labels=None, label_words=args.labels)
    results = finetune(config)
    metric = results["metric"]
    median = results["median"]
    if results["protocol"] == "paper":
        line = f"{results['task']}: dev {metric} {results['dev'][metric]:.4f} (last epoch {results['best_epoch']}"
        line += f", seed {results['best_seed']})" if len(median["values"]) == 1 else (
            f"; median over seeds {median['seeds']}: {median['dev']:.4f}, "
            f"values {', '.join(f'{v:.4f}' for v in median['values'])})")
    else:
        line = (f"{results['task']}: dev {metric} {results['dev'][metric]:.4f} (best epoch {results['best_epoch']}"
                f", seed {results['best_seed']})")
    if "test" in results and metric in results["test"]:
        line += f", test {metric} {results['test'][metric]:.4f}"
    if "ensemble" in results:
        line += f", ensemble dev {metric} {results['ensemble']['dev'].get(metric, float('nan')):.4f}"
    print(f"{line}\nsaved to {args.output} (model.keras, results.json, training_curves.png, logs/)")
    return 0


def _evaluate(args) -> int:
    from keras_electra.tasks.finetune import evaluate
    from keras_electra.tasks.registry import TableSource

    table = None
    if args.text_columns or args.label_column:
        # What is not given here comes from the training run (task.json), then the defaults.
        table = TableSource(tuple(args.text_columns or ()), args.label_column or "")
    result = evaluate(args.model, args.task, args.data, args.split, args.max_examples, args.batch_size, table=table,
                      tfds_data_dir=args.tfds_data_dir)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True, default=str))
        return 0
    scores = result["scores"]
    shown = ", ".join(f"{k} {v:.4f}" for k, v in scores.items() if isinstance(v, float))
    print(f"{result['task']} {result['split']} ({result['num_examples']} examples): {shown}")
    return 0


def _predict(args) -> int:
    from keras_electra.errors import DataError
    from keras_electra.export.predictor import predict_any
    from keras_electra.tasks.predict import format_prediction, is_blank

    texts = list(args.texts)
    stdin = texts == ["-"]
    if stdin:  # bytes, so that invalid UTF-8 becomes U+FFFD instead of a UnicodeDecodeError
        texts = sys.stdin.buffer.read().decode("utf-8", errors="replace").splitlines()
        if any("\ufffd" in t for t in texts):
            print("warning: invalid UTF-8 on stdin, replaced by U+FFFD", file=sys.stderr)
    # Keras model directory, SavedModel, .tflite or .onnx: the same output for each.
    keep = [i for i, t in enumerate(texts) if not (stdin and is_blank(t))]
    if stdin and not keep:
        raise DataError("nothing to predict: stdin holds no non-blank line")
    kept = predict_any(args.model, [texts[i] for i in keep], question=args.question, context=args.context,
                       batch_size=args.batch_size)
    results: list[dict | None] = kept
    if stdin and len(keep) < len(texts) and len(kept) == len(keep):
        # One output per input line: a blank line (the `is_blank` rule) gives null / an empty line.
        results = [None] * len(texts)
        for i, result in zip(keep, kept):
            results[i] = result
    if args.json:
        print(json.dumps(results, indent=2, ensure_ascii=False))
    else:
        for result in results:
            print("" if result is None else format_prediction(result))
    return 0


# --peft adalora / prefix: defaults are Hugging Face peft's AdaLoraConfig (Zhang et al. 2023) and Li & Liang (2021).
ADALORA_OPTIONS = (  # (flag, field, type, default, help)
    ("--adalora-init-rank", "init_rank", int, 12, "initial rank of every P·Λ·Q update"),
    ("--adalora-target-rank", "target_rank", int, 8, "average rank left after the budget schedule"),
    ("--adalora-tinit", "tinit", int, 0, "warm-up steps at the initial budget"),
    ("--adalora-tfinal", "tfinal", int, 0, "final steps at the target budget with the ranks fixed"),
    ("--adalora-delta-t", "delta_t", int, 1, "reallocate the ranks every N steps"),
    ("--adalora-beta1", "beta1", float, 0.85, "EMA of the sensitivity"),
    ("--adalora-beta2", "beta2", float, 0.85, "EMA of the sensitivity's uncertainty"),
    ("--adalora-orth-reg", "orth_reg_weight", float, 0.5, "weight of the orthogonality regulariser on P and Q"),
    ("--adalora-alpha", "alpha", float, 8.0, "the update is scaled by alpha / init rank"),
)
PREFIX_OPTIONS = (
    ("--prefix-length", "length", int, 20, "virtual tokens (key/value prefixes) per layer"),
    ("--prefix-hidden", "hidden", int, 512, "hidden units of the reparameterisation MLP"),
)


def _add_peft_options(group) -> None:
    for flag, _, kind, default, text in ADALORA_OPTIONS:
        group.add_argument(flag, type=kind, default=default, metavar="N" if kind is int else "X",
                           help=f"--peft adalora: {text} (default {default})")
    for flag, _, kind, default, text in PREFIX_OPTIONS:
        group.add_argument(flag, type=kind, default=default, metavar="N",
                           help=f"--peft prefix: {text} (default {default})")


def _peft_options(args) -> dict:
    def values(table):
        return {field: getattr(args, flag[2:].replace("-", "_")) for flag, field, *_ in table}

    return {"adalora_options": values(ADALORA_OPTIONS), "prefix_options": values(PREFIX_OPTIONS)}
