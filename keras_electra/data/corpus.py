"""Plain-text pretraining corpora: finding the files, checking them, and splitting them into sentences.

Two layouts are understood (`corpus_format`):

* ``"sentences"``: the official ELECTRA/BERT layout. One sentence per line; a blank line
  separates documents; the end of a file ends a document.
* ``"paragraphs"``: running text, e.g. a novel. Lines are joined (so hard-wrapped text
  works), a blank line is a paragraph break, and the text is split into sentences by a
  regular expression that runs in the TensorFlow graph (RE2). Every file is one document,
  as the official code treats OpenWebText files.

``"auto"`` looks at the first lines of the first files (`detect_corpus_format`).

Files are read in blocks of `BLOCK_LINES` lines by `tf.data` (a UTF-8 BOM is dropped,
CRLF line ends are handled by `TextLineDataset`), so a corpus of any size streams.
"""

from __future__ import annotations

import codecs
import glob
from collections.abc import Iterator, Sequence
from pathlib import Path

import tensorflow as tf

from keras_electra.errors import DataError

CORPUS_FORMATS = ("auto", "sentences", "paragraphs")
TEXT_SUFFIX = ".txt"
# Lines per tf.data element. A document longer than a block is packed in pieces, so one
# extra short example can appear per block (about 0.3% of examples for novels).
BLOCK_LINES = 2048
# A line (or sentence) longer than this many characters is cut into pieces of this size before
# tokenisation. The official code keeps such a line whole, so it becomes one example truncated to
# seq_length tokens; a 5 MB line without spaces was one [UNK] per pass over the file. Ordinary lines
# (a paragraph of a novel, a Wikipedia paragraph) are far shorter, and a 4096-character piece still
# fills a 512-token example.
MAX_LINE_CHARS = 4096

# --- the sentence splitter (RE2 syntax, runs in the graph) -----------------------------
# Abbreviations that are (almost) always followed by a capitalised name: their period is
# hidden behind a placeholder before splitting and restored afterwards.
_PLACEHOLDER = "\x1f"
_TITLES = (
    "mr|mrs|ms|messrs|mme|mlle|dr|drs|prof|rev|revd|hon|st|sr|jr|capt|col|gen|lt|sgt|maj|"
    "gov|sen|rep|mt|esq|bros|co|corp|inc|ltd|vs|viz|cf|e\\.g|i\\.e|a\\.m|p\\.m"
)
_PROTECT_TITLES = r"\b((?i:" + _TITLES + r"))\."
# Single capital initials ("J. R. Smith"); "I" is left out because "... said I. Then" ends a sentence.
_PROTECT_INITIALS = r"\b([A-HJ-Z])\."
_TERMINAL = r"(?:[.!?\x{2026}]+)"
_CLOSERS = "[\"'\u201d\u2019\u00bb)\\]]*"
_OPENERS = "[\"'\u201c\u2018\u00ab(\\[]*"
# A sentence ends at terminal punctuation (plus closing quotes) followed by white space and
# a capital letter (after optional opening quotes). Digits do not start sentences ("No. 5").
_SPLIT = "(" + _TERMINAL + _CLOSERS + r")\s+(" + _OPENERS + r"\p{Lu})"
# Chinese and Japanese full stops end a sentence without any following space.
_CJK_SPLIT = "([\u3002\uff01\uff1f]+[\u201d\u2019\u300d\u300f\uff09]*)"
_BOM = r"^\x{FEFF}"


def split_sentences(texts) -> tf.RaggedTensor:
    """Split each string of `texts` [N] into sentences: a ragged [N, (sentences)] string tensor.

    Pure TensorFlow (so it runs inside `tf.data`); empty pieces are dropped.
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    protected = tf.strings.regex_replace(texts, _PROTECT_TITLES, "\\1" + _PLACEHOLDER)
    protected = tf.strings.regex_replace(protected, _PROTECT_INITIALS, "\\1" + _PLACEHOLDER)
    marked = tf.strings.regex_replace(protected, _SPLIT, "\\1\n\\2")
    marked = tf.strings.regex_replace(marked, _CJK_SPLIT, "\\1\n")
    marked = tf.strings.regex_replace(marked, _PLACEHOLDER, ".")
    pieces = tf.strings.strip(tf.strings.split(marked, "\n"))
    return tf.ragged.boolean_mask(pieces, tf.strings.length(pieces) > 0)


def clean_lines(lines) -> tf.Tensor:
    """Drop a UTF-8 byte-order mark and surrounding white space from each line."""
    return tf.strings.strip(tf.strings.regex_replace(lines, _BOM, ""))


def split_long_texts(texts, doc_index, max_chars: int = MAX_LINE_CHARS) -> tuple[tf.Tensor, tf.Tensor]:
    """Cut every text [N] longer than `max_chars` characters into pieces of `max_chars` (the last shorter),
    in order; each piece keeps its text's document index. Texts that fit pass through untouched.

    Only texts with more than `max_chars` bytes (a character is at least one byte) are decoded to
    code points, so ordinary text costs one length check.
    """
    texts = tf.convert_to_tensor(texts, tf.string)
    long = tf.strings.length(texts) > max_chars
    codes = tf.strings.unicode_decode(tf.boolean_mask(texts, long), "UTF-8", errors="replace")  # [K, (C)]
    chars = codes.row_lengths()
    starts = tf.ragged.range(tf.zeros_like(chars), chars, max_chars)  # [K, (P)] piece starts
    lengths = tf.minimum(tf.cast(max_chars, tf.int64), tf.gather(chars, starts.value_rowids()) - starts.flat_values)
    pieces = tf.strings.unicode_encode(tf.RaggedTensor.from_row_lengths(codes.flat_values, lengths), "UTF-8")
    # Row i holds its own text when it fits, its pieces otherwise; concatenating keeps the order.
    kept = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(texts, ~long), tf.cast(~long, tf.int64))
    long_rows = tf.cast(tf.where(long)[:, 0], tf.int64)
    piece_counts = tf.scatter_nd(long_rows[:, None], starts.row_lengths(), tf.shape(texts, out_type=tf.int64))
    split = tf.RaggedTensor.from_row_lengths(pieces, piece_counts)
    rows = tf.concat([kept, split], axis=1)
    return rows.flat_values, tf.gather(doc_index, rows.value_rowids())


def block_sentences(lines, corpus_format: str, max_chars: int = MAX_LINE_CHARS) -> tuple[tf.Tensor, tf.Tensor]:
    """A block of raw lines [N] → (sentences [S], document index within the block [S]).

    A sentence longer than `max_chars` characters is cut into pieces (`split_long_texts`).
    """
    lines = clean_lines(lines)
    blank = tf.equal(lines, "")
    if corpus_format == "sentences":
        doc_index = tf.cumsum(tf.cast(blank, tf.int32))
        keep = tf.logical_not(blank)
        return split_long_texts(tf.boolean_mask(lines, keep), tf.boolean_mask(doc_index, keep), max_chars)
    if corpus_format != "paragraphs":
        raise DataError(f"corpus_format must be 'sentences' or 'paragraphs' here, not {corpus_format!r}")
    # Join the block (hard-wrapped lines become one stream); blank lines stay hard breaks.
    text = tf.strings.reduce_join(tf.where(blank, "\n", lines), separator=" ")
    sentences = split_sentences(tf.reshape(text, [1])).flat_values
    return split_long_texts(sentences, tf.zeros_like(sentences, dtype=tf.int32), max_chars)


# --- files -------------------------------------------------------------------------------
def _has_glob(text: str) -> bool:
    return any(ch in text for ch in "*?[")


def resolve_corpus_files(sources: str | Path | Sequence[str | Path], suffix: str = TEXT_SUFFIX) -> list[Path]:
    """Files, directories (every `*.txt` below them, sorted) and glob patterns → a list of files."""
    if isinstance(sources, str | Path):
        sources = [sources]
    if not sources:
        raise DataError("no corpus given: pass text files, directories or glob patterns")
    files: list[Path] = []
    for source in sources:
        text = str(source)
        if _has_glob(text) and not Path(text).exists():
            matches = sorted(Path(p) for p in glob.glob(text, recursive=True))
            matches = [p for p in matches if p.is_file()]
            if not matches:
                raise DataError(f"corpus pattern {text} matches no files")
            files.extend(matches)
            continue
        path = Path(text)
        if path.is_dir():
            found = sorted(
                p
                for p in path.rglob(f"*{suffix}")
                if p.is_file() and not any(part.startswith(".") for part in p.relative_to(path).parts)
            )
            if not found:
                raise DataError(f"corpus directory {path} contains no {suffix} files")
            files.extend(found)
        elif path.is_file():
            files.append(path)
        else:
            raise DataError(f"corpus path not found: {path}")
    unique: list[Path] = []
    seen: set[Path] = set()
    for path in files:
        key = path.resolve()
        if key not in seen:
            seen.add(key)
            unique.append(path)
    return unique


_ASCII = bytes(range(128))


def check_corpus_files(files: Sequence[Path], chunk_bytes: int = 1 << 22, stats: dict | None = None) -> int:
    """Check that every file is UTF-8 and that the corpus has a non-blank line; return its size in bytes.

    Reads each file once (about 1 GB/s), so a bad byte surfaces here as one clear
    line rather than as an opaque error deep inside a `tf.data` pipeline. `stats`, when
    given, receives "words": an upper bound on the white-space separated words (counting
    separators is as fast as reading), and "non_ascii": the bytes outside ASCII (Chinese text has
    no spaces, but each of its characters, three bytes, is a token), so a corpus that packs into
    almost no examples is noticed before training waits on it.
    """
    total = 0
    words = 0
    non_ascii = 0
    any_text = False
    for path in files:
        decoder = codecs.getincrementaldecoder("utf-8")()
        offset = 0
        try:
            with open(path, "rb") as handle:
                while chunk := handle.read(chunk_bytes):
                    text = decoder.decode(chunk)
                    any_text = any_text or bool(text.replace("\ufeff", "").strip())
                    offset += len(chunk)
                    words += chunk.count(b" ") + chunk.count(b"\n") + chunk.count(b"\t")
                    non_ascii += len(chunk.translate(None, _ASCII))
                decoder.decode(b"", final=True)
        except UnicodeDecodeError as err:
            # err.start counts from the bytes held back from the previous chunk, if any.
            held = len(decoder.getstate()[0]) if offset else 0
            raise DataError(f"{path} is not UTF-8 text (bad byte at offset {offset + err.start - held})") from None
        except OSError as err:
            raise DataError(f"cannot read corpus file {path}: {err.strerror or err}") from None
        total += offset
    if not any_text:
        names = ", ".join(str(p) for p in files[:3]) + (" ..." if len(files) > 3 else "")
        raise DataError(f"corpus is empty (no non-blank lines): {names}")
    if stats is not None:
        stats.update(bytes=total, words=words + len(files), non_ascii=non_ascii)
    return total


def read_lines(path: Path, limit: int | None = None) -> Iterator[str]:
    """Yield the lines of a UTF-8 file without BOM or line ends (CRLF or LF)."""
    with open(path, encoding="utf-8-sig", newline=None) as handle:
        for i, line in enumerate(handle):
            if limit is not None and i >= limit:
                return
            yield line.rstrip("\n")


def detect_corpus_format(files: Sequence[Path], sample_lines: int = 2000) -> str:
    """Guess "sentences" or "paragraphs" from the first non-blank lines of the first files.

    A sentence-per-line corpus has (nearly) every line end in terminal punctuation and
    hold exactly one sentence; hard-wrapped text and one-paragraph-per-line text do not.
    """
    sample: list[str] = []
    for path in files:
        sample.extend(line.strip() for line in read_lines(path, limit=sample_lines) if line.strip())
        if len(sample) >= sample_lines:
            break
    if not sample:
        return "paragraphs"
    sample = sample[:sample_lines]
    counts = split_sentences(sample).row_lengths().numpy()
    ends = tf.strings.regex_full_match(sample, ".*" + _TERMINAL + _CLOSERS + "|.*" + _CJK_SPLIT).numpy()
    one_sentence = sum(1 for n, end in zip(counts, ends) if n == 1 and end)
    return "sentences" if one_sentence >= 0.75 * len(sample) else "paragraphs"


def resolve_corpus_format(files: Sequence[Path], corpus_format: str) -> str:
    if corpus_format not in CORPUS_FORMATS:
        raise DataError(f"corpus_format must be one of {', '.join(CORPUS_FORMATS)}, not {corpus_format!r}")
    return detect_corpus_format(files) if corpus_format == "auto" else corpus_format


def line_blocks(
    files: Sequence[Path],
    *,
    seed: int = 0,
    repeat: bool = False,
    shuffle_files: bool = True,
    block_lines: int = BLOCK_LINES,
    cycle_length: int = 4,
) -> tf.data.Dataset:
    """A `tf.data.Dataset` of (file index int64, line block string [≤ block_lines]) read from `files`.

    The file order is shuffled per epoch by a stateless shuffle of `seed` and the epoch,
    so it does not depend on TensorFlow's global seed. Several files are read at once
    (`interleave`, deterministic), so consecutive blocks come from different files.
    """
    paths = tf.constant([str(p) for p in files])
    count = len(files)
    epochs = tf.data.Dataset.counter() if repeat else tf.data.Dataset.range(1)

    def epoch_files(epoch):
        order = tf.range(count, dtype=tf.int64)
        if shuffle_files:
            order = tf.random.experimental.stateless_shuffle(order, seed=tf.stack([tf.cast(seed, tf.int64), epoch]))
        return tf.data.Dataset.from_tensor_slices(order)

    def read(index):
        lines = tf.data.TextLineDataset(tf.gather(paths, index)).batch(block_lines)
        return lines.map(lambda block: (index, block))

    return epochs.flat_map(tf.autograph.experimental.do_not_convert(epoch_files)).interleave(
        tf.autograph.experimental.do_not_convert(read),
        cycle_length=max(1, min(cycle_length, count)),
        block_length=1,
        num_parallel_calls=tf.data.AUTOTUNE,
        deterministic=True,
    )


def iter_sentences(files: Sequence[Path], corpus_format: str = "auto") -> Iterator[str]:
    """Eagerly yield the corpus sentences (the same splitting as the pretraining pipeline)."""
    corpus_format = resolve_corpus_format(files, corpus_format)
    blocks = line_blocks(files, shuffle_files=False, cycle_length=1)
    blocks = blocks.map(
        tf.autograph.experimental.do_not_convert(lambda _, lines: block_sentences(lines, corpus_format)[0]),
        num_parallel_calls=tf.data.AUTOTUNE,
    )
    for sentences in blocks.as_numpy_iterator():
        for sentence in sentences:
            yield sentence.decode("utf-8")
