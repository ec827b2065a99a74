"""WordPiece vocabularies and the in-graph tokenizer (tensorflow-text's FastBertTokenizer).

`ElectraTokenizer` is a Keras layer, so it runs inside `tf.data`, inside a SavedModel
and inside a TFLite model, and gives the same ids as Hugging Face's `BertTokenizer`
for the same `vocab.txt` and casing.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import keras
import tensorflow as tf
import tensorflow_text as tf_text

# The vocabulary itself (reading, validation, the saved files) needs no TensorFlow: see vocabulary.py.
from keras_electra.data.vocabulary import (  # noqa: F401  (re-exported)
    CLS,
    MASK,
    PAD,
    REQUIRED_TOKENS,
    SEP,
    TOKENIZER_CONFIG_FILE,
    UNK,
    VOCAB_FILE,
    Vocabulary,
    load_vocabulary,
    resolve_casing,
    save_vocabulary_files,
    saved_casing,
    validate_vocabulary,
    write_vocabulary,
)
from keras_electra.errors import VocabularyError

# Characters BERT deletes before anything else (Hugging Face's `BertNormalizer(clean_text=True)`):
# NUL, U+FFFD and the "other" categories (control, format, private use) except tab and line ends.
# FastBertTokenizer would instead split words at them, and stop reading a string at a NUL.
_DELETED_CHARACTERS = r"[\x00-\x08\x0B\x0C\x0E-\x1F\x7F-\x9F\p{Cf}\p{Co}\x{FFFD}]"


def normalize_text(texts, lower_case: bool, strip_accents: bool):
    """BERT's normalisation, as Hugging Face's `BertNormalizer` does it, in TensorFlow ops.

    Deletes control and format characters, then strips accents (NFD, drop Mn), then
    lower-cases. Done here rather than by FastBertTokenizer's `lower_case_nfd_strip_accents`
    because that applies NFKC case folding, unlike BERT: it maps full-width punctuation
    and digits ("，", "２") to ASCII, "ß" to "ss" and "ﬁ" to "fi", so Chinese text got
    other ids than the checkpoints were trained with.
    """
    texts = tf.convert_to_tensor(texts, dtype=tf.string)
    texts = tf.strings.regex_replace(texts, _DELETED_CHARACTERS, "")
    if strip_accents:
        texts = tf_text.normalize_utf8(texts, "NFD")
        texts = tf.strings.regex_replace(texts, r"\p{Mn}", "")
    if lower_case:
        # Character by character, as BertNormalizer does: a whole-string (ICU) lower-casing
        # would turn a word-final capital sigma into "ς" instead of "σ".
        texts = tf.strings.regex_replace(texts, "\u03a3", "\u03c3")
        texts = tf.strings.lower(texts, encoding="utf-8")
    return texts


def string_tensor(texts) -> tf.Tensor:
    """`texts` as a tf.string tensor. Python strings holding lone surrogates (invalid UTF-8 from
    argv, a broken JSON escape), which TensorFlow cannot convert, get U+FFFD in their place."""
    try:
        return tf.convert_to_tensor(texts, dtype=tf.string)
    except (ValueError, UnicodeEncodeError):
        def clean(value):
            if isinstance(value, str):
                return value.encode("utf-8", "surrogatepass").decode("utf-8", "replace")
            if isinstance(value, list | tuple):
                return [clean(v) for v in value]
            return value

        return tf.convert_to_tensor(clean(texts), dtype=tf.string)


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTokenizer(keras.layers.Layer):
    """BERT/ELECTRA WordPiece tokenizer that runs in the TensorFlow graph.

    Args:
        vocabulary: a list of tokens, or a path to `vocab.txt` (or its directory).
        lower_case: lower-case the text (uncased checkpoints).
        strip_accents: strip accents after NFD; defaults to `lower_case`, as in BERT.
    """

    def __init__(
        self,
        vocabulary: Sequence[str] | str | Path,
        lower_case: bool = True,
        strip_accents: bool | None = None,
        **kwargs,
    ) -> None:
        kwargs.setdefault("dtype", "int32")
        super().__init__(trainable=False, **kwargs)
        vocab = Vocabulary(vocabulary, lower_case, strip_accents)  # reading, validation and casing
        self.vocabulary, self.lower_case, self.strip_accents = vocab.vocabulary, vocab.lower_case, vocab.strip_accents
        self._token_to_id = vocab._token_to_id
        # Normalisation happens in `normalize_text`, not in FastBertTokenizer (see there).
        self._fast = tf_text.FastBertTokenizer(
            vocab=self.vocabulary,
            suffix_indicator="##",
            token_out_type=tf.int64,
            unknown_token=UNK,
            lower_case_nfd_strip_accents=False,
            support_detokenization=True,
        )
        self.built = True

    # ------------------------------------------------------------------ ids
    @property
    def vocabulary_size(self) -> int:
        return len(self.vocabulary)

    def token_to_id(self, token: str) -> int:
        if token not in self._token_to_id:
            raise VocabularyError(f"token {token!r} is not in the vocabulary")
        return self._token_to_id[token]

    def id_to_token(self, token_id: int) -> str:
        if not 0 <= int(token_id) < len(self.vocabulary):
            raise VocabularyError(f"id {token_id} is outside the vocabulary of {len(self.vocabulary)}")
        return self.vocabulary[int(token_id)]

    @property
    def pad_id(self) -> int:
        return self._token_to_id[PAD]

    @property
    def unk_id(self) -> int:
        return self._token_to_id[UNK]

    @property
    def cls_id(self) -> int:
        return self._token_to_id[CLS]

    @property
    def sep_id(self) -> int:
        return self._token_to_id[SEP]

    @property
    def mask_id(self) -> int:
        return self._token_to_id[MASK]

    @property
    def special_token_ids(self) -> dict[str, int]:
        """The ids ElectraPretrainer needs: cls, sep, pad, mask."""
        return {"cls": self.cls_id, "sep": self.sep_id, "pad": self.pad_id, "mask": self.mask_id}

    # ------------------------------------------------------------- tokenize
    def _normalize(self, texts):
        return normalize_text(texts, self.lower_case, self.strip_accents)

    def tokenize(self, texts):
        """Strings [B] (or a scalar) → ragged int32 ids [B, (tokens)], without special tokens."""
        texts = string_tensor(texts)
        if texts.shape.rank == 0:  # FastBertTokenizer fails on scalars when it does not normalise
            return self.tokenize(texts[None])[0]
        return tf.cast(self._fast.tokenize(self._normalize(texts)), tf.int32)

    def tokenize_with_offsets(self, texts):
        """Like `tokenize` (strings [B] or a scalar), plus each token's start and end byte offsets.

        Offsets refer to the original text: each character is normalised on its own, and
        the offsets FastBertTokenizer finds in the normalised text are mapped back through
        the characters' byte lengths (accents, deleted control characters, lower-casing
        that changes the length all stay aligned).
        """
        texts = string_tensor(texts)
        if texts.shape.rank == 0:
            ids, start_bytes, end_bytes = self.tokenize_with_offsets(texts[None])
            return ids[0], start_bytes[0], end_bytes[0]
        chars, char_starts = tf.strings.unicode_split_with_offsets(texts, "UTF-8")
        normalized = self._normalize(chars.flat_values)
        # Byte position of every character in the normalised text, counted across all rows.
        sizes = tf.cast(tf.strings.length(normalized), tf.int64)
        global_starts = tf.cumsum(sizes, exclusive=True)
        row_base = tf.concat([global_starts, tf.reshape(tf.reduce_sum(sizes), [1])], 0)
        row_base = tf.gather(row_base, chars.row_starts())
        ids, starts, ends = self._fast.tokenize_with_offsets(
            tf.strings.reduce_join(chars.with_flat_values(normalized), axis=-1)
        )
        base = tf.gather(row_base, ids.value_rowids())
        first = tf.searchsorted(global_starts, starts.flat_values + base, side="right") - 1
        last = tf.searchsorted(global_starts, ends.flat_values + base - 1, side="right") - 1
        char_ends = char_starts.flat_values + tf.cast(tf.strings.length(chars.flat_values), tf.int64)
        start_bytes = ids.with_flat_values(tf.gather(char_starts.flat_values, first))
        end_bytes = ids.with_flat_values(tf.gather(char_ends, last))
        return tf.cast(ids, tf.int32), start_bytes, end_bytes

    def detokenize(self, ids):
        """Ids [B, (tokens)] → strings [B], joining "##" pieces (lossy: casing, spacing)."""
        return self._fast.detokenize(tf.cast(ids, tf.int64))

    def call(self, texts):
        return self.tokenize(texts)

    # --------------------------------------------------------------- save
    def save_to_directory(self, directory: str | Path) -> None:
        """Write `vocab.txt` and `tokenizer.json` (casing), the layout released checkpoints use."""
        save_vocabulary_files(directory, self.vocabulary, self.lower_case, self.strip_accents)

    @classmethod
    def from_directory(cls, directory: str | Path, lower_case: bool | None = None,
                       strip_accents: bool | None = None) -> ElectraTokenizer:
        """`build_tokenizer` on a vocab.txt or a directory holding one (and tokenizer.json)."""
        return build_tokenizer(directory, lower_case, strip_accents)

    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "vocabulary": self.vocabulary,
            "lower_case": self.lower_case,
            "strip_accents": self.strip_accents,
        }

    @classmethod
    def from_config(cls, config: dict) -> ElectraTokenizer:
        config = dict(config)
        config.pop("trainable", None)
        return cls(**config)


def build_tokenizer(vocab: Sequence[str] | str | Path, lower_case: bool | None = None,
                    strip_accents: bool | None = None) -> ElectraTokenizer:
    """The one tokenizer factory: every command that makes a tokenizer from a vocabulary comes here.

    vocab: a list of tokens, a vocab.txt, or a directory holding vocab.txt (a model, a
    `build-vocab` output). The casing is the explicit `lower_case` / `strip_accents`, else
    what the vocabulary's tokenizer.json records, else uncased (see `resolve_casing`).
    """
    lower, strip = resolve_casing(vocab, lower_case, strip_accents)
    tokens = load_vocabulary(vocab) if isinstance(vocab, str | Path) else list(vocab)
    return ElectraTokenizer(tokens, lower_case=lower, strip_accents=strip)
