"""`keras-electra build-vocab` and `keras-electra build-data`."""

from __future__ import annotations

import argparse
import time
from pathlib import Path

CORPUS_FORMAT_CHOICES = ["auto", "sentences", "paragraphs"]


def register(subparsers) -> None:
    vocab = subparsers.add_parser(
        "build-vocab", help="learn a WordPiece vocabulary (vocab.txt) from a text corpus",
        description="Learn a WordPiece vocabulary with tensorflow-text's learner. [PAD] [UNK] [CLS] [SEP] [MASK] "
        "get ids 0-4. The casing is written to tokenizer.json beside the vocabulary.",
    )
    vocab.add_argument("--corpus", nargs="+", required=True, metavar="FILES_OR_DIR",
                       help="text files, directories (every *.txt) or glob patterns")
    vocab.add_argument("--vocab-size", type=int, default=8000, help="largest vocabulary size (default 8000)")
    vocab.add_argument("--output", default="vocab.txt", help="vocabulary file to write (default vocab.txt)")
    vocab.add_argument("--cased", action="store_true", help="keep the case (default: lower-case)")
    vocab.add_argument("--no-strip-accents", action="store_true", help="keep accents (default: strip when uncased)")
    vocab.add_argument("--corpus-format", choices=CORPUS_FORMAT_CHOICES, default="auto")
    vocab.add_argument("--max-bytes", type=int, default=None,
                       help="sample the corpus down to about this many bytes (default 4 MB; 0 = all of it)")
    vocab.add_argument("--seed", type=int, default=0)
    vocab.set_defaults(func=_build_vocab)

    data = subparsers.add_parser(
        "build-data", help="pack a text corpus into TFRecord or ArrayRecord shards for pretraining",
        description="Tokenise and pack a corpus into [CLS] A [SEP] B [SEP] examples of a fixed length, written as "
        "shards with metadata.json (read them with `pretrain --corpus DIR`). Packing needs TensorFlow and "
        "tensorflow-text; --format arrayrecord shards are read without TensorFlow (grain), e.g. on JAX.",
    )
    data.add_argument("--corpus", nargs="+", required=True, metavar="FILES_OR_DIR",
                      help="text files, directories (every *.txt) or glob patterns")
    data.add_argument("--vocab", required=True, help="vocab.txt, or a directory holding it (and tokenizer.json)")
    data.add_argument("--seq-length", type=int, default=128)
    data.add_argument("--output", required=True, help="output directory (created atomically)")
    data.add_argument("--format", choices=["tfrecord", "arrayrecord"], default="tfrecord",
                      help="tfrecord (default; the TensorFlow input pipeline) or arrayrecord (read with grain, no "
                      "TensorFlow needed: keras_electra.data.shards, the JAX trainer)")
    data.add_argument("--num-shards", type=int, default=8, help="TFRecord shards (default 8)")
    data.add_argument("--shard-size", type=int, default=16384,
                      help="examples per ArrayRecord shard (default 16384)")
    data.add_argument("--seed", type=int, default=0)
    data.add_argument("--sentence-objective", choices=["nsp", "sop"])
    data.add_argument("--corpus-format", choices=CORPUS_FORMAT_CHOICES, default="auto")
    casing = data.add_mutually_exclusive_group()
    casing.add_argument("--cased", action="store_true", help="keep the case (default: tokenizer.json, else uncased)")
    casing.add_argument("--uncased", action="store_true", help="lower-case and strip accents")
    data.set_defaults(func=_build_data)

    text = subparsers.add_parser(
        "task-text", help="write the unlabelled text of task datasets as a pretraining corpus",
        description="Domain-adaptive pretraining data: the text fields of each dataset split (labels, answers and "
        "tags dropped; repeated QA contexts once), one paragraph per text, in one file for `pretrain --corpus`. "
        "Use train splits only for datasets you will evaluate on.",
    )
    text.add_argument("--source", nargs=3, action="append", required=True, metavar=("DATASET", "PATH", "SPLIT"),
                      help="a dataset name (e.g. chnsenticorp, cluener, cmrc2018, c3), its data path and a split; "
                      "repeat for several")
    text.add_argument("--output", required=True, help="the corpus file to write (written atomically)")
    text.set_defaults(func=_task_text)


def _build_vocab(args: argparse.Namespace) -> int:
    import json

    from keras_electra.data.tokenizer import TOKENIZER_CONFIG_FILE, VOCAB_FILE
    from keras_electra.data.vocab_builder import DEFAULT_MAX_BYTES, build_vocabulary
    from keras_electra.utils.io import atomic_file

    lower_case = not args.cased
    strip_accents = False if args.no_strip_accents else lower_case
    output = Path(args.output)
    if output.is_dir():
        output = output / VOCAB_FILE
    max_bytes = DEFAULT_MAX_BYTES if args.max_bytes is None else (args.max_bytes or None)
    started = time.perf_counter()
    tokens = build_vocabulary(
        args.corpus, vocab_size=args.vocab_size, lower_case=lower_case, strip_accents=strip_accents,
        corpus_format=args.corpus_format, output=output, max_bytes=max_bytes, seed=args.seed,
    )
    casing = f"{'uncased' if lower_case else 'cased'}, accents {'stripped' if strip_accents else 'kept'}"
    where = ""
    if output.name == VOCAB_FILE:  # the directory then loads with ElectraTokenizer.from_directory
        config_path = output.parent / TOKENIZER_CONFIG_FILE
        with atomic_file(config_path) as tmp:
            tmp.write_text(json.dumps({"lower_case": lower_case, "strip_accents": strip_accents}) + "\n")
        where = f" and the casing to {config_path}"
    print(f"wrote {len(tokens)} tokens to {output}{where} ({casing}) in {time.perf_counter() - started:.1f} s")
    return 0


def _load_tokenizer(vocab: str, cased: bool, uncased: bool):
    from keras_electra.data.tokenizer import build_tokenizer

    return build_tokenizer(vocab, lower_case=casing_flag(cased, uncased))


def casing_flag(cased: bool, uncased: bool) -> bool | None:
    """`--cased` / `--uncased` as `lower_case`: None (neither) lets the vocabulary's tokenizer.json decide."""
    return False if cased else True if uncased else None


def _task_text(args: argparse.Namespace) -> int:
    from keras_electra.data.task_text import write_task_corpus

    counts = write_task_corpus([tuple(source) for source in args.source], args.output)
    listing = ", ".join(f"{source} {count}" for source, count in counts.items())
    print(f"wrote {sum(counts.values())} paragraphs to {args.output} ({listing})")
    return 0


def _build_data(args: argparse.Namespace) -> int:
    from keras_electra.data.pretraining_data import write_arrayrecords, write_tfrecords

    tokenizer = _load_tokenizer(args.vocab, args.cased, args.uncased)
    started = time.perf_counter()
    common = {"seq_length": args.seq_length, "seed": args.seed, "corpus_format": args.corpus_format,
              "sentence_objective": args.sentence_objective}
    if args.format == "arrayrecord":
        metadata = write_arrayrecords(args.corpus, tokenizer, args.output, shard_size=args.shard_size, **common)
    else:
        metadata = write_tfrecords(args.corpus, tokenizer, args.output, num_shards=args.num_shards, **common)
    seconds = time.perf_counter() - started
    print(
        f"wrote {metadata['count']} examples of length {metadata['seq_length']} ({metadata['tokens']} tokens, "
        f"{metadata['corpus_format']} corpus of {len(metadata['sources'])} files) in {metadata['num_shards']} "
        f"{args.format} shards to {args.output} in {seconds:.1f} s "
        f"({metadata['count'] / max(seconds, 1e-9):.0f} examples/s)"
    )
    return 0
