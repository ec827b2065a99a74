"""`keras-electra convert`: released checkpoints → keras-electra model directories."""

from __future__ import annotations

import argparse


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "convert",
        help="convert a TF1 / Hugging Face / keras-hub ELECTRA checkpoint",
        description=(
            "Convert a released ELECTRA checkpoint into DIR/discriminator/ and/or DIR/generator/ "
            "(model.keras, config.json, vocab.txt + tokenizer.json, conversion.json). Every checkpoint "
            "variable must be used or ignored on purpose (Adam slots, global_step); anything else stops "
            "the conversion with its name."
        ),
    )
    parser.add_argument(
        "source", metavar="SRC",
        help="checkpoint prefix or directory, or a name: a Hugging Face id (org/name[@revision]), a keras-hub "
             "preset or kaggle:// handle, or electra_small|electra_base|electra_large (see `keras-electra models`)",
    )
    parser.add_argument(
        "--from", dest="format", default="auto", choices=("auto", "tf1", "hf", "keras-hub", "keras-electra"),
        help="source format (default: detect from the files)",
    )
    parser.add_argument("--output", required=True, metavar="DIR", help="output directory")
    parser.add_argument(
        "--part", default="auto", choices=("auto", "discriminator", "generator", "both", "backbone"),
        help="what to convert (default: both nets of a TF1 checkpoint, else what the checkpoint holds)",
    )
    parser.add_argument(
        "--config", metavar="JSON",
        help="config: keras-electra ElectraConfig, HF/BERT-style config.json, or the official hparams JSON",
    )
    parser.add_argument(
        "--generator-config", metavar="JSON",
        help="the generator's own BERT-style config (Chinese-ELECTRA ships one); TF1 only",
    )
    parser.add_argument(
        "--generator", metavar="DIR",
        help="the generator's own checkpoint or name (Hugging Face keeps it apart): converts the pair",
    )
    parser.add_argument(
        "--allow-unused", nargs="+", default=[], metavar="NAME",
        help="source variable names or patterns (fnmatch) that may stay unused",
    )
    parser.add_argument(
        "--allow-missing", nargs="+", default=[], metavar="NAME",
        help="model parameter names or patterns that may stay newly initialised",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace DIR if it exists")
    parser.set_defaults(func=run)

    models = subparsers.add_parser(
        "models",
        help="list the released checkpoints known by name",
        description=(
            "The released ELECTRA checkpoints that from_pretrained, convert, finetune --init and pretrain --init "
            "accept by name (any other Hugging Face id or keras-hub ELECTRA preset works too). Downloads go to "
            "the Hugging Face / kagglehub caches and $KERAS_ELECTRA_CACHE (default ~/.cache/keras_electra); "
            "HF_HUB_OFFLINE=1 or KERAS_ELECTRA_OFFLINE=1 use cached copies only."
        ),
    )
    models.add_argument("--kind", choices=("hf", "keras-hub", "tf1"), help="only this kind of source")
    models.add_argument("--wide", action="store_true", help="also print each source URL and the published scores")
    models.set_defaults(func=list_models)


def list_models(args: argparse.Namespace) -> int:
    from keras_electra.convert.catalog import CATALOG, format_table

    print(format_table(tuple(e for e in CATALOG if args.kind in (None, e.kind)), wide=args.wide))
    return 0


def run(args: argparse.Namespace) -> int:
    from keras_electra.convert.api import convert
    from keras_electra.convert.resolve import resolve_optional

    args.source, args.generator = resolve_optional(args.source), resolve_optional(args.generator)  # names -> paths
    result = convert(
        args.source, args.output, format=args.format, part=args.part, config=args.config,
        generator_config=args.generator_config, allow_unused=args.allow_unused,
        allow_missing=args.allow_missing, overwrite=args.overwrite, generator_source=args.generator,
    )
    for name, path in result["parts"].items():
        report = result["reports"][name]
        print(f"{name}: {path} ({report.summary()})")
    notes = {note for report in result["reports"].values() for note in report.notes}
    for note in sorted(notes):
        print(f"note: {note}")
    if not result["vocabulary"]:
        print("note: the source has no vocab.txt; add one to the output directories to tokenize")
    return 0
