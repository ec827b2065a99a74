"""Learn a WordPiece vocabulary from a corpus with tensorflow-text's vocabulary tools.

Words are split as BERT splits them (tensorflow-text's `BasicTokenizer`: white space,
punctuation, CJK characters), counted, and handed to tensorflow-text's WordPiece learner
(`tensorflow_text.tools.wordpiece_vocab`, the code behind `bert_vocab_from_dataset`).
The learner is pure Python and slow (seconds per pass over the distinct words), so:

* a corpus larger than `max_bytes` (4 MB) is sampled: sentences are kept at random with
  probability `max_bytes / corpus size` (seeded), which keeps the word frequencies;
* the frequency threshold is found by our own bracketed binary search, which starts
  from the word-count distribution instead of from 10^7 and needs about five passes.
Building an 8k vocabulary from 3 MB of novels takes about 20 s on two CPU cores.

The text is normalised exactly as `ElectraTokenizer` will normalise it (lower-casing,
accent stripping), so every learned token is reachable at tokenisation time.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import tensorflow as tf
from tensorflow_text.python.ops import bert_tokenizer
from tensorflow_text.tools.wordpiece_vocab import wordpiece_tokenizer_learner_lib as learner

from keras_electra.data.corpus import check_corpus_files, iter_sentences, resolve_corpus_files
from keras_electra.data.tokenizer import REQUIRED_TOKENS, normalize_text, validate_vocabulary, write_vocabulary
from keras_electra.errors import DataError, VocabularyError

DEFAULT_MAX_BYTES = 4_000_000
SLACK_RATIO = 0.05  # accept any size in [vocab_size · (1 - slack), vocab_size]


def count_words(
    sentences: Sequence[str], lower_case: bool = True, strip_accents: bool | None = None, batch_size: int = 4096
) -> Counter:
    """Count BERT-split words of `sentences` after the tokenizer's normalisation."""
    strip_accents = lower_case if strip_accents is None else strip_accents
    splitter = bert_tokenizer.BasicTokenizer(lower_case=False)
    dataset = tf.data.Dataset.from_tensor_slices(list(sentences)).batch(batch_size)
    dataset = dataset.map(
        tf.autograph.experimental.do_not_convert(
            lambda texts: splitter.tokenize(normalize_text(texts, lower_case, strip_accents))
        ),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    return learner.count_words(dataset)


def learn_wordpiece(
    word_counts: Counter,
    vocab_size: int,
    reserved_tokens: Sequence[str] = REQUIRED_TOKENS,
    max_token_length: int = 50,
    max_unique_chars: int = 1000,
    num_iterations: int = 4,
) -> list[str]:
    """The largest vocabulary of at most `vocab_size` tokens that tensorflow-text's learner produces.

    The learner keeps subwords seen at least `threshold` times; a larger threshold gives
    a smaller vocabulary. We search the threshold (bracket, then bisect) and stop early
    once the size is within 5% below `vocab_size`.
    """
    if not word_counts:
        raise DataError("no words to learn a vocabulary from")
    params = learner.Params(
        upper_thresh=None, lower_thresh=None, num_iterations=num_iterations, max_input_tokens=None,
        max_token_length=max_token_length, max_unique_chars=max_unique_chars, vocab_size=vocab_size,
        slack_ratio=SLACK_RATIO, include_joiner_token=True, joiner="##", reserved_tokens=list(reserved_tokens),
    )
    all_counts = learner.get_input_words(list(word_counts.items()), params.reserved_tokens, max_token_length)
    allowed = learner.get_allowed_chars(all_counts, max_unique_chars)
    counts = learner.filter_input_words(all_counts, allowed, -1)
    cache: dict[int, list[str]] = {}

    def vocab_at(threshold: int) -> list[str]:
        if threshold not in cache:
            cache[threshold] = learner.learn_with_thresh(counts, threshold, params)
        return cache[threshold]

    def good(vocab: list[str]) -> bool:
        return (1 - SLACK_RATIO) * vocab_size <= len(vocab) <= vocab_size

    # Start near the frequency of the (vocab_size / 2)-th most common word.
    frequencies = sorted((c for _, c in counts), reverse=True)
    guess = max(1, frequencies[min(len(frequencies) - 1, vocab_size // 2)])
    low, high = 1, guess  # invariant target: size(high) <= vocab_size, size(low - 1) > vocab_size
    if len(vocab_at(guess)) > vocab_size:
        low = guess + 1
        high = guess * 2
        while len(vocab_at(high)) > vocab_size:
            low, high = high + 1, high * 2
    elif good(vocab_at(guess)):
        return vocab_at(guess)
    # Bisect for the smallest threshold whose vocabulary fits.
    while low < high:
        middle = (low + high) // 2
        vocab = vocab_at(middle)
        if good(vocab):
            return vocab
        if len(vocab) > vocab_size:
            low = middle + 1
        else:
            high = middle
    return vocab_at(high)


def build_vocabulary(
    files: str | Path | Sequence[str | Path],
    vocab_size: int = 8000,
    lower_case: bool = True,
    strip_accents: bool | None = None,
    *,
    corpus_format: str = "auto",
    output: str | Path | None = None,
    max_bytes: int | None = DEFAULT_MAX_BYTES,
    seed: int = 0,
    extra_reserved_tokens: Sequence[str] = (),
    verbose: bool = False,
) -> list[str]:
    """Learn a WordPiece vocabulary of at most `vocab_size` tokens from a text corpus.

    Args:
        files: text files, directories or glob patterns (see `corpus.resolve_corpus_files`).
        vocab_size: the largest vocabulary wanted, special tokens included. A small corpus
            may give fewer tokens (every subword seen at least once is then in it).
        lower_case / strip_accents: as for `ElectraTokenizer` (strip_accents defaults to lower_case).
        corpus_format: "auto", "sentences" or "paragraphs" (how lines become sentences).
        output: if given, the vocabulary is also written there atomically (`vocab.txt`).
        max_bytes: sample the corpus down to about this many bytes (None: use all of it).
        seed: seed of that sample.
        extra_reserved_tokens: more tokens to reserve after the five special ones.

    Returns:
        The tokens, id order: [PAD], [UNK], [CLS], [SEP], [MASK], extras, then learned pieces.
    """
    if vocab_size < len(REQUIRED_TOKENS) + 1 + len(extra_reserved_tokens):
        raise VocabularyError(f"vocab_size {vocab_size} is too small to hold the special tokens")
    strip_accents = lower_case if strip_accents is None else bool(strip_accents)
    started = time.perf_counter()
    paths = resolve_corpus_files(files)
    total_bytes = check_corpus_files(paths)
    keep = 1.0 if not max_bytes or total_bytes <= max_bytes else max_bytes / total_bytes
    rng = random.Random(seed)
    sentences = [s for s in iter_sentences(paths, corpus_format) if keep >= 1.0 or rng.random() < keep]
    if not sentences:
        raise DataError(f"no sentences were read from {paths[0]} (sample fraction {keep:.3f})")
    counts = count_words(sentences, lower_case=lower_case, strip_accents=strip_accents)
    reserved = [*REQUIRED_TOKENS, *extra_reserved_tokens]
    tokens = learn_wordpiece(counts, vocab_size, reserved)
    tokens = validate_vocabulary(tokens, source="learned vocabulary")
    if output is not None:
        write_vocabulary(tokens, output)
    if verbose:
        print(
            f"learned {len(tokens)} tokens from {len(sentences)} sentences ({len(counts)} distinct words, "
            f"{keep:.0%} of {total_bytes / 1e6:.1f} MB) in {time.perf_counter() - started:.1f} s"
        )
    return tokens
