"""Which vocabulary rows does a pretraining corpus never train, and what became of them?

A scratch run updates an embedding row only when its token occurs in the corpus (the tied MLM output
also pushes every row a little through the softmax). Rows that never occur drift together. This script
tokenises the corpus with the vocabulary (the project's one tokenizer factory), counts the rows that
never occur, and, given pretraining outputs, compares the mean pairwise cosine of their never-seen
word-embedding rows with that of their seen rows.

    python scripts/vocab_coverage.py --corpus ../shared/data/english_novels \
        --vocab ../shared/data/vocab/bert_uncased_vocab.txt --models saved_models/electra-tiny-novels

`--vocab` may be a vocab.txt or a pretraining output (its vocab.txt and casing); `--models` are read
with the same vocabulary size. Lines are read as `pretrain` reads them (`iter_sentences`).
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from keras_electra.convert.api import load_backbone  # noqa: E402
from keras_electra.data.corpus import iter_sentences, resolve_corpus_files  # noqa: E402
from keras_electra.data.tokenizer import build_tokenizer  # noqa: E402

BATCH_LINES = 4096


def token_counts(tokenizer, files: list[Path], max_lines: int | None) -> tuple[np.ndarray, int]:
    """Occurrences of every vocabulary id over the corpus, and the number of lines read."""
    counts = np.zeros(tokenizer.vocabulary_size, np.int64)
    sentences = itertools.islice(iter_sentences(files), max_lines)
    lines = 0
    while batch := list(itertools.islice(sentences, BATCH_LINES)):
        lines += len(batch)
        counts += np.bincount(tokenizer.tokenize(batch).flat_values.numpy(), minlength=counts.size)
    return counts, lines


def mean_cosine(rows: np.ndarray, sample: int, rng: np.random.Generator) -> float:
    """Mean cosine over distinct pairs of (a sample of) `rows`."""
    if len(rows) < 2:
        return float("nan")
    rows = rows[rng.choice(len(rows), min(sample, len(rows)), replace=False)]
    unit = rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12)
    gram = unit @ unit.T
    n = len(unit)
    return float((gram.sum() - np.trace(gram)) / (n * (n - 1)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", nargs="+", required=True, help="text files, directories or globs")
    parser.add_argument("--vocab", required=True, help="vocab.txt, or a directory holding one")
    parser.add_argument("--models", nargs="*", default=[], help="pretraining outputs using this vocabulary")
    parser.add_argument("--max-lines", type=int, default=None, help="read at most this many lines")
    parser.add_argument("--sample", type=int, default=2000, help="rows per cosine estimate (default 2000)")
    args = parser.parse_args(argv)

    tokenizer = build_tokenizer(args.vocab)
    counts, lines = token_counts(tokenizer, resolve_corpus_files(args.corpus), args.max_lines)
    special = np.array([token.startswith("[") and token.endswith("]") for token in tokenizer.vocabulary])
    unseen = (counts == 0) & ~special
    ordinary = int((~special).sum())
    print(f"{args.vocab}: {tokenizer.vocabulary_size} rows, {ordinary} ordinary (not [..] tokens); "
          f"{lines} lines, {int(counts.sum())} tokens, {counts[tokenizer.token_to_id('[UNK]')]} [UNK]")
    print(f"never in the corpus: {int(unseen.sum())} ordinary rows ({100 * unseen.sum() / ordinary:.1f}%)")
    examples = [tokenizer.vocabulary[i] for i in np.flatnonzero(unseen)[:: max(1, int(unseen.sum()) // 12)][:12]]
    if examples:
        print("  e.g. " + " ".join(examples))
    rng = np.random.default_rng(0)
    seen = (counts > 0) & ~special
    for model in args.models:
        table = load_backbone(model).embeddings.word_embeddings.numpy()
        if len(table) != tokenizer.vocabulary_size:
            print(f"{model}: {len(table)} embedding rows, not this vocabulary's {tokenizer.vocabulary_size}")
            return 1
        seen_cosine, unseen_cosine = (mean_cosine(table[rows], args.sample, rng) for rows in (seen, unseen))
        print(f"{model}: mean pairwise cosine of word embeddings, seen rows {seen_cosine:.3f}, "
              f"never-seen rows {unseen_cosine:.3f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
