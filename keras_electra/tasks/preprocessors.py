"""Task preprocessors: strings in, the model's fixed-length int32 dict out, in TF graph ops.

Each preprocessor is a Keras layer around `ElectraTokenizer` (tensorflow-text). It runs
inside `tf.data` (`dataset.batch(n).map(preprocessor)`), inside a SavedModel, and holds
no Python state at call time: vocabularies and tables are graph constants.

Packing is BERT's: `[CLS] A [SEP] (B [SEP])`, padded to `seq_length`; when a pair is
too long the longer segment loses tokens first (the official `_truncate_seq_pair`).
Token classification and QA also return, per position, the word / context-token index
and the *character* offsets of each token in the original text (the tokenizer gives
UTF-8 byte offsets; they are converted, which matters for Chinese).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf
import tensorflow_text as tf_text

from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import ElectraError, VocabularyError
from keras_electra.tasks.base import IGNORE_INDEX

DEFAULT_ENTITY_MARKERS = ("<e1>", "</e1>", "<e2>", "</e2>")


# ------------------------------------------------------------------ graph helpers
# Autograph would re-parse every helper on each trace (seconds per pipeline); they hold no
# tensor-dependent Python control flow, so they are traced as plain Python.
no_autograph = tf.autograph.experimental.do_not_convert


@no_autograph
def to_dense(values, seq_length: int, fill: int = 0) -> tf.Tensor:
    """Ragged [B, (n)] or dense [B, n] integers → int32 [B, seq_length], cut or padded with `fill`."""
    if isinstance(values, tf.RaggedTensor):
        return tf.cast(values, tf.int32).to_tensor(default_value=fill, shape=[None, seq_length])
    values = tf.cast(values, tf.int32)[:, :seq_length]
    padded = tf.pad(values, [[0, 0], [0, seq_length - tf.shape(values)[1]]], constant_values=fill)
    return tf.ensure_shape(padded, [None, seq_length])


@no_autograph
def trim_pair_lengths(len_a, len_b, budget):
    """Lengths after BERT's longest-first truncation of a pair to `budget` tokens.

    Ties cut the second segment first, exactly as `_truncate_seq_pair` does.
    """
    len_a = tf.cast(len_a, tf.int64)
    len_b = tf.cast(len_b, tf.int64)
    budget = tf.cast(budget, tf.int64)
    keep_b = tf.minimum(len_b, tf.maximum(budget // 2, budget - len_a))
    fits = len_a + len_b <= budget
    return tf.where(fits, len_a, budget - keep_b), tf.where(fits, len_b, keep_b)


@no_autograph
def pack_segments(
    segments: Sequence,
    lengths: Sequence,
    seq_length: int,
    cls_id: int,
    sep_id: int,
    pad_id: int,
    side: dict[str, tuple[Sequence, int]] | None = None,
) -> dict[str, tf.Tensor]:
    """`[CLS] s0 [SEP] (s1 [SEP])` → `token_ids`, `segment_ids`, `padding_mask`, int32 [B, seq_length].

    Segment i keeps its first `lengths[i]` tokens (ragged or dense [B, n]); the lengths must
    already fit. `side` packs parallel per-token features the same way:
    `name: (one tensor per segment, value at [CLS]/[SEP]/padding)`. Dense gathers and
    selects only, so the result has a static shape and maps onto TFLite builtins.
    """
    dense = [to_dense(s, seq_length) for s in segments]
    batch = tf.shape(dense[0])[0]
    position = tf.broadcast_to(tf.range(seq_length, dtype=tf.int32)[None, :], [batch, seq_length])
    token_ids = tf.where(position == 0, tf.constant(cls_id, tf.int32), tf.constant(pad_id, tf.int32))
    segment_ids = tf.zeros_like(position)
    side = side or {}
    extras = {name: tf.fill([batch, seq_length], tf.constant(fill, tf.int32)) for name, (_, fill) in side.items()}
    start = tf.ones([batch, 1], tf.int32)
    for i, (values, length) in enumerate(zip(dense, lengths)):
        length = tf.reshape(tf.cast(length, tf.int32), [-1, 1])
        inside = (position >= start) & (position < start + length)
        index = tf.clip_by_value(position - start, 0, seq_length - 1)
        token_ids = tf.where(inside, tf.gather(values, index, batch_dims=1), token_ids)
        sep = position == start + length
        token_ids = tf.where(sep, tf.constant(sep_id, tf.int32), token_ids)
        segment_ids = tf.where(inside | sep, tf.constant(i, tf.int32), segment_ids)
        for name, (features, fill) in side.items():
            feature = to_dense(features[i], seq_length, fill)
            extras[name] = tf.where(inside, tf.gather(feature, index, batch_dims=1), extras[name])
        start = start + length + 1
    out = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": tf.cast(position < start, tf.int32)}
    out.update(extras)
    return out


def _clip_lengths(rt: tf.RaggedTensor, limit) -> tf.Tensor:
    return tf.minimum(rt.row_lengths(), tf.cast(limit, tf.int64))


@no_autograph
def byte_to_char_offsets(texts, byte_offsets: tf.RaggedTensor) -> tf.RaggedTensor:
    """UTF-8 byte offsets [B, (t)] into `texts` [B] → character (code point) offsets, int32.

    An offset at a character boundary maps to that character's index, so exclusive
    end offsets stay exclusive.
    """
    _, char_starts = tf.strings.unicode_decode_with_offsets(texts, "UTF-8", errors="replace")
    big = tf.constant(np.iinfo(np.int64).max, tf.int64)
    starts = tf.cast(char_starts, tf.int64).to_tensor(default_value=big)
    starts = tf.concat([starts, tf.fill([tf.shape(starts)[0], 1], big)], axis=1)  # never empty
    offsets = tf.cast(byte_offsets, tf.int64)
    dense = offsets.to_tensor(default_value=0)
    chars = tf.searchsorted(starts, dense, side="left", out_type=tf.int32)
    return tf.RaggedTensor.from_tensor(chars, lengths=offsets.row_lengths())


def _strings(x):
    """A string tensor [B] (a scalar becomes [1]); returns (tensor, was_scalar)."""
    x = tf.convert_to_tensor(x, dtype=tf.string)
    if x.shape.rank == 0:
        return tf.reshape(x, [1]), True
    return x, False


def _ragged(x, dtype) -> tf.RaggedTensor:
    """A ragged [B, (n)] tensor from a RaggedTensor, a dense [B, n] tensor or nested lists."""
    if isinstance(x, tf.RaggedTensor):
        return x
    if isinstance(x, list | tuple):
        return tf.ragged.constant(x, dtype=dtype, ragged_rank=1) if x else tf.ragged.constant([[]], dtype)[:0]
    return tf.RaggedTensor.from_tensor(tf.convert_to_tensor(x, dtype))


def _squeeze_batch(values: dict, scalar: bool) -> dict:
    return {k: v[0] for k, v in values.items()} if scalar else values


# ------------------------------------------------------------------- base layer
class ElectraPreprocessor(keras.layers.Layer):
    """Common plumbing: the tokenizer, `seq_length`, TF tensors in and out (no autocasting)."""

    def __init__(self, tokenizer: ElectraTokenizer, seq_length: int = 128, **kwargs) -> None:
        kwargs.setdefault("dtype", "int32")
        super().__init__(trainable=False, **kwargs)
        if isinstance(tokenizer, dict):
            tokenizer = keras.saving.deserialize_keras_object(tokenizer)
        if not 4 <= seq_length <= 512:
            raise ElectraError(f"seq_length must be in 4..512 (ELECTRA's positions), got {seq_length}")
        self.tokenizer = tokenizer
        self.seq_length = int(seq_length)
        # Keep TF tensors (strings, ragged) as they are: no conversion to backend tensors.
        self._convert_input_args = False
        self._allow_non_tensor_positional_args = True
        self.built = True

    def _pack(self, segments, lengths, side=None):
        t = self.tokenizer
        return pack_segments(segments, lengths, self.seq_length, t.cls_id, t.sep_id, t.pad_id, side)

    def get_config(self) -> dict:
        config = super().get_config()
        config.pop("trainable", None)
        config.update(tokenizer=keras.saving.serialize_keras_object(self.tokenizer), seq_length=self.seq_length)
        return config

    @classmethod
    def from_config(cls, config: dict):
        config = dict(config)
        config["tokenizer"] = keras.saving.deserialize_keras_object(config["tokenizer"])
        return cls(**config)

    def get_build_config(self):
        return None


def _model_inputs(packed: dict) -> dict:
    return {k: packed[k] for k in ("token_ids", "segment_ids", "padding_mask")}


# ------------------------------------------------------------- classification
@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTextClassifierPreprocessor(ElectraPreprocessor):
    """Single sentences or pairs: `x` is a string tensor [B], or a tuple `(a, b)` of two.

    `call(x, y=None, sample_weight=None)` returns `x` or `(x, y[, sample_weight])`
    with `x` the model dict; labels pass through (map them to ids beforehand).
    """

    @no_autograph
    def call(self, x, y=None, sample_weight=None):
        texts = list(x) if isinstance(x, tuple | list) else [x]
        if not 1 <= len(texts) <= 2:
            raise ValueError(f"a classifier takes one or two text segments, got {len(texts)}")
        scalar = False
        segments = []
        for text in texts:
            text, scalar = _strings(text)
            segments.append(self.tokenizer.tokenize(text))
        budget = self.seq_length - 1 - len(segments)
        if len(segments) == 1:
            lengths = [_clip_lengths(segments[0], budget)]
        else:
            lengths = trim_pair_lengths(segments[0].row_lengths(), segments[1].row_lengths(), budget)
        out = _squeeze_batch(self._pack(segments, lengths), scalar)
        return keras.utils.pack_x_y_sample_weight(out, y, sample_weight)


# ----------------------------------------------------------- token classification
@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraTokenClassifierPreprocessor(ElectraPreprocessor):
    """Word-level tags ↔ sub-word positions.

    - Pre-split words (a ragged string tensor [B, (words)], CoNLL/CLUENER style): each
      word is tokenized on its own; its tag goes to its first sub-word, every other
      position gets `IGNORE_INDEX`. Words that produce no token (e.g. a lone control
      character) cannot be tagged and are predicted "O" when decoding.
    - Raw text (a dense string tensor [B]): words are the tokenizer's basic tokens
      (a token not starting with "##" starts a word), with character offsets.

    `call(x, y=None, sample_weight=None)`: `y` is a ragged [B, (words)] tensor of tag ids.
    `encode_words`/`encode_text` also return `word_ids` [B, L] (word index per
    position, -1 elsewhere) and, for text, `char_start`/`char_end` [B, L].
    """

    def __init__(self, tokenizer: ElectraTokenizer, seq_length: int = 128, **kwargs) -> None:
        super().__init__(tokenizer, seq_length, **kwargs)
        starts_word = np.array([not tok.startswith("##") for tok in self.tokenizer.vocabulary], dtype=bool)
        self._starts_word = starts_word

    @no_autograph
    def call(self, x, y=None, sample_weight=None):
        if isinstance(x, tf.RaggedTensor):
            packed = self.encode_words(x, y)
        else:
            if y is not None:
                raise ValueError("tags need pre-split words: pass x as a ragged [batch, (words)] string tensor")
            packed = self.encode_text(x)
        out = _model_inputs(packed)
        if y is None:
            return keras.utils.pack_x_y_sample_weight(out, None, sample_weight)
        return keras.utils.pack_x_y_sample_weight(out, packed["labels"], sample_weight)

    @no_autograph
    def encode_words(self, words: tf.RaggedTensor, tags: tf.RaggedTensor | None = None) -> dict:
        words = _ragged(words, tf.string)
        pieces = self.tokenizer.tokenize(words.values)  # [num_words, (pieces)]
        per_word = pieces.row_lengths()
        word_index = tf.ragged.range(words.row_lengths()).values  # index of each word in its sentence
        piece_index = tf.ragged.range(per_word).values  # position of each piece in its word
        row_splits = tf.gather(pieces.row_splits, words.row_splits)  # token row splits per sentence
        tokens = tf.RaggedTensor.from_row_splits(pieces.values, row_splits)
        word_ids = tf.RaggedTensor.from_row_splits(tf.repeat(word_index, per_word), row_splits)
        lengths = [_clip_lengths(tokens, self.seq_length - 2)]
        side = {"word_ids": ([word_ids], -1)}
        if tags is not None:
            tags = _ragged(tags, tf.int32)
            tag_per_piece = tf.repeat(tf.cast(tags.values, tf.int32), per_word)
            labels = tf.where(piece_index == 0, tag_per_piece, IGNORE_INDEX)
            side["labels"] = ([tf.RaggedTensor.from_row_splits(labels, row_splits)], IGNORE_INDEX)
        return self._pack([tokens], lengths, side)

    @no_autograph
    def encode_text(self, texts) -> dict:
        texts, scalar = _strings(texts)
        ids, start_bytes, end_bytes = self.tokenizer.tokenize_with_offsets(texts)
        starts = byte_to_char_offsets(texts, start_bytes)
        ends = byte_to_char_offsets(texts, end_bytes)
        begins = tf.cast(tf.gather(tf.constant(self._starts_word), ids.values), tf.int32)
        # Word index = running count of word starts in the row, minus one (a continuation
        # piece at the very start of a text still belongs to word 0).
        total = tf.concat([[0], tf.cumsum(begins)], axis=0)
        local = tf.cumsum(begins) - tf.repeat(tf.gather(total, ids.row_starts()), ids.row_lengths())
        word_ids = tf.RaggedTensor.from_row_splits(tf.maximum(local - 1, 0), ids.row_splits)
        side = {"word_ids": ([word_ids], -1), "char_start": ([starts], -1), "char_end": ([ends], -1)}
        return _squeeze_batch(self._pack([ids], [_clip_lengths(ids, self.seq_length - 2)], side), scalar)


# ------------------------------------------------------------ question answering
@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraQuestionAnswererPreprocessor(ElectraPreprocessor):
    """`[CLS] question [SEP] context window [SEP]`, one row per window of a long context.

    The question keeps at most `max_query_length` tokens. Windows start every
    `doc_stride` context tokens (the official meaning); `doc_stride=0` keeps one window
    and truncates the context. Every output row comes with `example_index` [N],
    `context_token_index` [N, L] (index of the context token, -1 elsewhere) and
    `char_start`/`char_end` [N, L] (character offsets in the context, -1 elsewhere).

    `call(x, y=None)`: `x = (questions [B], contexts [B])`; `y = (answer_start, answer_end)`
    character offsets [B] (end exclusive, -1 for no answer) → `y` [N, 2] token positions,
    (0, 0) — the [CLS] token — when the window does not contain the whole answer.
    """

    def __init__(self, tokenizer: ElectraTokenizer, seq_length: int = 384, doc_stride: int = 128,
                 max_query_length: int = 64, **kwargs) -> None:
        super().__init__(tokenizer, seq_length, **kwargs)
        if max_query_length + 4 > self.seq_length:
            raise ElectraError(f"max_query_length {max_query_length} leaves no room for the context in "
                             f"seq_length {self.seq_length}")
        self.doc_stride = int(doc_stride or 0)
        self.max_query_length = int(max_query_length)

    @no_autograph
    def call(self, x, y=None, sample_weight=None):
        questions, contexts = x
        answer_starts = answer_ends = None
        if y is not None:
            answer_starts, answer_ends = y
        packed = self.encode(questions, contexts, answer_starts, answer_ends)
        labels = None
        if y is not None:
            labels = tf.stack([packed["start_positions"], packed["end_positions"]], axis=1)
        return keras.utils.pack_x_y_sample_weight(_model_inputs(packed), labels, sample_weight)

    @no_autograph
    def encode(self, questions, contexts, answer_starts=None, answer_ends=None) -> dict:
        length = self.seq_length
        questions, _ = _strings(questions)
        contexts, _ = _strings(contexts)
        query = self.tokenizer.tokenize(questions)
        query_len = _clip_lengths(query, self.max_query_length)
        ctx, start_bytes, end_bytes = self.tokenizer.tokenize_with_offsets(contexts)
        n = ctx.row_lengths()
        # One spare column, so that gathers stay in range even when every context is empty.
        spare = [[0, 0], [0, 1]]
        ctx_ids = tf.pad(tf.cast(ctx, tf.int32).to_tensor(), spare)
        ctx_start = tf.pad(byte_to_char_offsets(contexts, start_bytes).to_tensor(-1), spare, constant_values=-1)
        ctx_end = tf.pad(byte_to_char_offsets(contexts, end_bytes).to_tensor(-1), spare, constant_values=-1)

        window = length - 3 - query_len  # context tokens per window
        if self.doc_stride > 0:
            step = tf.minimum(tf.cast(self.doc_stride, tf.int64), window)
            num_windows = 1 + (tf.maximum(n - window, 0) + step - 1) // step
        else:
            step = window
            num_windows = tf.ones_like(n)
        example = tf.repeat(tf.range(tf.shape(n, out_type=tf.int64)[0]), num_windows)  # [N]
        k = tf.ragged.range(num_windows).values
        w_start = k * tf.gather(step, example)
        w_len = tf.minimum(tf.gather(window, example), tf.gather(n, example) - w_start)
        last = tf.shape(ctx_ids, out_type=tf.int64)[1] - 1
        doc_index = tf.minimum(w_start[:, None] + tf.range(length, dtype=tf.int64)[None, :], last)  # [N, L]

        def take(table):
            return tf.gather(tf.gather(table, example), doc_index, batch_dims=1)

        window_query = tf.gather(to_dense(query, length), example)
        none = tf.fill(tf.shape(window_query), -1)
        side = {
            "context_token_index": ([none, doc_index], -1),
            "char_start": ([none, take(ctx_start)], -1),
            "char_end": ([none, take(ctx_end)], -1),
        }
        packed = self._pack([window_query, take(ctx_ids)], [tf.gather(query_len, example), w_len], side)
        packed["example_index"] = tf.cast(example, tf.int32)

        if answer_starts is not None:
            s = tf.cast(tf.reshape(answer_starts, [-1, 1]), tf.int32)
            e = tf.cast(tf.reshape(answer_ends, [-1, 1]), tf.int32)
            valid = tf.sequence_mask(n, tf.shape(ctx_ids)[1])
            # First context token ending after the answer start; last one starting before its end.
            doc_first = tf.reduce_sum(tf.cast(valid & (ctx_end <= s), tf.int64), axis=1)
            doc_last = tf.reduce_sum(tf.cast(valid & (ctx_start < e), tf.int64), axis=1) - 1
            first = tf.gather(doc_first, example)
            last_token = tf.gather(doc_last, example)
            has = ((tf.gather(s[:, 0], example) >= 0) & (first <= last_token) & (first >= w_start)
                   & (last_token < w_start + w_len))
            offset = 2 + tf.gather(query_len, example)  # [CLS] question [SEP]
            packed["start_positions"] = tf.cast(tf.where(has, first - w_start + offset, 0), tf.int32)
            packed["end_positions"] = tf.cast(tf.where(has, last_token - w_start + offset, 0), tf.int32)
        return packed

    def get_config(self) -> dict:
        return {**super().get_config(), "doc_stride": self.doc_stride, "max_query_length": self.max_query_length}


# --------------------------------------------------------------- multiple choice
@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraMultipleChoicePreprocessor(ElectraPreprocessor):
    """`[CLS] context [SEP] question choice [SEP]` for each choice → dict of [B, C, L].

    `x = (contexts [B], questions [B], choices [B, C])`; an empty choice string marks a
    missing choice (C3 has 2 to 4): its row is all padding, and the model scores it -inf.
    """

    def __init__(self, tokenizer: ElectraTokenizer, seq_length: int = 128, num_choices: int = 4, **kwargs) -> None:
        super().__init__(tokenizer, seq_length, **kwargs)
        self.num_choices = int(num_choices)

    @no_autograph
    def call(self, x, y=None, sample_weight=None):
        contexts, questions, choices = x
        contexts, scalar = _strings(contexts)
        questions, _ = _strings(questions)
        choices = tf.convert_to_tensor(choices, dtype=tf.string)
        if scalar:
            choices = tf.expand_dims(choices, 0)
        choices = tf.ensure_shape(choices, [None, self.num_choices])
        c = self.num_choices
        flat_choices = tf.reshape(choices, [-1])
        rows = tf.repeat(tf.range(tf.shape(contexts)[0]), c)  # each example once per choice
        ctx = self.tokenizer.tokenize(contexts)
        ctx_len = tf.gather(ctx.row_lengths(), rows)
        second = tf.concat(
            [tf.gather(self.tokenizer.tokenize(questions), rows), self.tokenizer.tokenize(flat_choices)], axis=1
        )
        lengths = trim_pair_lengths(ctx_len, second.row_lengths(), self.seq_length - 3)
        packed = self._pack([tf.gather(to_dense(ctx, self.seq_length), rows), second], lengths)
        valid = tf.cast(tf.expand_dims(tf.strings.length(tf.strings.strip(flat_choices)) > 0, 1), tf.int32)
        packed = {
            "token_ids": packed["token_ids"] * valid + self.tokenizer.pad_id * (1 - valid),
            "segment_ids": packed["segment_ids"] * valid,
            "padding_mask": packed["padding_mask"] * valid,
        }
        out = {k: tf.reshape(v, [-1, c, self.seq_length]) for k, v in packed.items()}
        out = _squeeze_batch(out, scalar)
        return keras.utils.pack_x_y_sample_weight(out, y, sample_weight)

    def get_config(self) -> dict:
        return {**super().get_config(), "num_choices": self.num_choices}


# ------------------------------------------------------------ relation extraction
def marker_tokens(vocabulary: Sequence[str]) -> list[str]:
    """Four vocabulary tokens for the entity markers: `[unused0]`..`[unused3]` when present
    (English BERT), else the first four `[unusedN]` tokens (Chinese and cased BERT start at 1)."""
    unused = [t for t in vocabulary if re.fullmatch(r"\[unused\d+\]", t)]
    preferred = [f"[unused{i}]" for i in range(4)]
    if all(t in set(unused) for t in preferred):
        return preferred
    if len(unused) < 4:
        raise VocabularyError(
            f"entity markers need four [unusedN] tokens in the vocabulary; it has {len(unused)}"
        )
    return sorted(unused, key=lambda t: int(t[7:-1]))[:4]


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraRelationClassifierPreprocessor(ElectraPreprocessor):
    """Text with entity markers (`"The <e1>company</e1> makes <e2>chairs</e2>."`) → model dict.

    Each marker string becomes one reserved vocabulary token (`marker_tokens`), so the
    markers survive tokenization and can be found again by the entity-start head.
    """

    def __init__(self, tokenizer: ElectraTokenizer, seq_length: int = 128,
                 markers: Sequence[str] = DEFAULT_ENTITY_MARKERS, marker_tokens: Sequence[str] | None = None,
                 **kwargs) -> None:
        super().__init__(tokenizer, seq_length, **kwargs)
        if len(markers) != 4:
            raise ValueError(f"markers must be (e1_open, e1_close, e2_open, e2_close), got {markers}")
        self.markers = [str(m) for m in markers]
        self.marker_tokens = list(marker_tokens) if marker_tokens else _marker_tokens(self.tokenizer.vocabulary)
        self.marker_ids = [self.tokenizer.token_to_id(t) for t in self.marker_tokens]
        self._pattern = "|".join(re.escape(m) for m in self.markers)

    @no_autograph
    def call(self, x, y=None, sample_weight=None):
        texts, scalar = _strings(x)
        ids = self.tokenize_marked(texts)
        out = _squeeze_batch(self._pack([ids], [_clip_lengths(ids, self.seq_length - 2)]), scalar)
        return keras.utils.pack_x_y_sample_weight(out, y, sample_weight)

    @no_autograph
    def tokenize_marked(self, texts) -> tf.RaggedTensor:
        pieces = tf_text.regex_split(texts, self._pattern, self._pattern)  # [B, (pieces)], markers kept
        flat = pieces.values
        which = tf.stack([tf.equal(flat, m) for m in self.markers], axis=1)  # [P, 4]
        is_marker = tf.reduce_any(which, axis=1)
        marker_id = tf.gather(tf.constant(self.marker_ids, tf.int32), tf.argmax(tf.cast(which, tf.int32), axis=1))
        words = self.tokenizer.tokenize(tf.where(is_marker, "", flat))  # a marker piece tokenizes to nothing
        markers = tf.RaggedTensor.from_row_lengths(tf.boolean_mask(marker_id, is_marker),
                                                   tf.cast(is_marker, tf.int64))
        per_piece = tf.concat([markers, words], axis=1)
        return tf.RaggedTensor.from_row_splits(per_piece, pieces.row_splits).merge_dims(1, 2)

    def get_config(self) -> dict:
        return {**super().get_config(), "markers": self.markers, "marker_tokens": self.marker_tokens}


_marker_tokens = marker_tokens
