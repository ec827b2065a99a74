"""`keras-electra zero-shot`: argument parsing only (the work is in `keras_electra.tasks.prompting`)."""

from __future__ import annotations

import json


def register(subparsers) -> None:
    z = subparsers.add_parser(
        "zero-shot",
        help="classify with a discriminator's replaced-token detection, no training",
        description="Fill a template with each label word and pick the label whose word the discriminator's RTD "
        "head finds least replaced (Ni & Kao 2022; Xia et al. 2022). Scores a dataset split (--data) and/or saves "
        "the prompt model (--output) for `keras-electra predict` and `evaluate`. The model needs its RTD head: a "
        "`pretrain` output or an ElectraForPreTraining checkpoint (a plain BERT/MiniLM encoder has none). "
        "Few-shot: `finetune --prompt TEMPLATE --labels WORD=LABEL... --train-examples K`.",
    )
    z.add_argument("--model", required=True, metavar="DIR",
                   help="a discriminator with its RTD head (pretrain output, ElectraForPreTraining, TF1 checkpoint)")
    z.add_argument("--template", required=True, metavar="TEMPLATE",
                   help="with {label} once and {text} (pairs: {text_a}, {text_b}; tables: the --text-columns names), "
                   "e.g. \"{text} It was {label}.\" or \"{text_a} ? {label} , {text_b}\"")
    z.add_argument("--labels", required=True, nargs="+", metavar="WORD=LABEL",
                   help="one label word per label, e.g. great=1 terrible=0 (SST-2's labels are 0/1)")
    z.add_argument("--data", metavar="PATH", help="a task's data directory (e.g. ../shared/data/glue/SST-2) or file")
    z.add_argument("--task", metavar="NAME", help="default: from the data directory's name (SST-2, MRPC...), "
                   "else table")
    z.add_argument("--split", default="dev", help="the split to score (default dev)")
    z.add_argument("--max-examples", type=int, metavar="N", help="score N examples, drawn with --seed")
    z.add_argument("--seed", type=int, default=0)
    z.add_argument("--seq-length", type=int, default=128, metavar="L")
    z.add_argument("--batch-size", type=int, default=32, metavar="N")
    z.add_argument("--text-columns", nargs="+", metavar="COL", help="table data: one or two text columns")
    z.add_argument("--label-column", metavar="COL", help="table data: the label column")
    z.add_argument("--output", metavar="DIR", help="save the prompt model here (for predict / evaluate)")
    z.add_argument("--overwrite", action="store_true", help="replace a model already in --output")
    z.add_argument("--json", action="store_true", help="print the result as JSON")
    z.set_defaults(func=_zero_shot)


def _zero_shot(args) -> int:
    from keras_electra.tasks.prompting import zero_shot

    result = zero_shot(args.model, args.template, args.labels, data=args.data, task=args.task, split=args.split,
                       max_examples=args.max_examples, batch_size=args.batch_size, seq_length=args.seq_length,
                       text_columns=args.text_columns, label_column=args.label_column, output=args.output,
                       overwrite=args.overwrite, seed=args.seed)
    if args.json:
        print(json.dumps(result, indent=2, sort_keys=True))
        return 0
    if "scores" in result:
        shown = ", ".join(f"{k} {v:.4f}" for k, v in result["scores"].items())
        counts = ", ".join(f"{k}: {v}" for k, v in result["predicted_label_counts"].items())
        print(f"{result['task']} {result['split']} ({result['num_examples']} examples), zero-shot: {shown} "
              f"(predicted {counts})")
    if "output" in result:
        print(f"saved the prompt model to {result['output']} (keras-electra predict --model {result['output']} TEXT)")
    return 0
