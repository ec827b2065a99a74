"""`ElectraQuestionAnswerer`: extractive QA with a document stride, n-best spans, a maximum
answer length and a no-answer threshold (SQuAD 2.0), on one of two heads: the official ELECTRA
head (start-conditioned end logits decoded with a beam, answerability classifier) or Hugging
Face's start/end head. `decode_answers` turns either head's outputs into answers."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
from keras import ops

from keras_electra.errors import DataError, ElectraError
from keras_electra.layers.initializers import activation
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks import metrics as task_metrics
from keras_electra.tasks.base import MODEL_KEYS, ElectraTask, SpanLoss, add_dense, dense_head, float_logits
from keras_electra.tasks.preprocessors import ElectraQuestionAnswererPreprocessor
from keras_electra.tasks.runner import AUTOTUNE, TaskRunner, check_nonempty, softmax

META_KEYS = ("example_index", "context_token_index", "char_start", "char_end")
QA_HEADS = ("electra", "huggingface")
# configure_finetuning.py of google-research/electra: beam_size, answerable_weight, qa_na_threshold.
OFFICIAL_BEAM_SIZE = 20
OFFICIAL_ANSWERABLE_WEIGHT = 0.5
OFFICIAL_NULL_THRESHOLD = -2.75  # on the answerability logit (the "electra" head)
HF_NULL_THRESHOLD = 0.0  # on null score − best span score (BERT's run_squad.py; the "huggingface" head)
ANSWER_MASK_PENALTY = 1000.0  # official: logits += 1000 · (answer_mask − 1)
HEAD_HIDDEN_SIZE = 512  # the official dense(512, gelu) of the end and answerability layers


def default_null_threshold(head: str) -> float:
    return OFFICIAL_NULL_THRESHOLD if head == "electra" else HF_NULL_THRESHOLD


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraQuestionAnswerer(ElectraTask):
    """Extractive QA on `ElectraBackbone`, with one of two heads.

    head="electra" (default; the official `finetune/qa/qa_tasks.py` of google-research/electra):
      - an answer mask keeps start and end on context tokens (segment 1, the final [SEP]
        included, as officially) and [CLS]; every other logit gets −1000;
      - start logits: dense(1) on each position;
      - end logits conditioned on the start: dense(1)(GELU(dense(512)(concat(h[start], h))));
        in training `h[start]` is the gold start (the `start_positions` input), at inference
        each of the `beam_size` (20) most likely starts, with the top `beam_size` ends of each;
      - an answerability classifier (trained for every QA task, as officially; its logit is
        the no-answer score of SQuAD 2.0): dense(1)(GELU(dense(512)(concat(h[CLS], Σ p_start·h)))),
        sigmoid loss × `answerable_weight` (0.5); answer "" when its minimum over windows
        exceeds `null_score_threshold` (official −2.75).
      Called with `start_positions` in the inputs it returns the training logits [B, L, 3]
      (masked start, teacher-forced masked end, answerability logit repeated on every
      position); without, the beam [B, K, 2K+3] float32 (see `unpack_beam`), K = beam_size.
      Static shapes (top_k), so it exports to SavedModel, TFLite and ONNX.
    head="huggingface": HF's `ElectraForQuestionAnswering` (`qa_outputs/{kernel,bias}`), start
      and end logits [B, L, 2] float32 from one dense layer; converted HF QA models load into it.

    Decoding options (used by `best_answers`): `n_best` candidates kept, answers of at most
    `max_answer_length` tokens, and for SQuAD 2.0 (`allow_no_answer`) `null_score_threshold`
    (None: −2.75 for "electra", 0.0 for "huggingface").
    """

    preprocessor_cls = ElectraQuestionAnswererPreprocessor
    task_type = "question_answering"

    def __init__(
        self,
        backbone: ElectraBackbone,
        preprocessor: ElectraQuestionAnswererPreprocessor | None = None,
        n_best: int = 20,
        max_answer_length: int = 30,
        null_score_threshold: float | None = None,
        allow_no_answer: bool = False,
        label_names: list[str] | None = None,
        adversarial_epsilon: float = 0.0,
        head: str = "electra",
        beam_size: int = OFFICIAL_BEAM_SIZE,
        answerable_weight: float = OFFICIAL_ANSWERABLE_WEIGHT,
        **kwargs,
    ) -> None:
        super().__init__(backbone, preprocessor, label_names, adversarial_epsilon, **kwargs)
        if head not in QA_HEADS:
            raise ElectraError(f"unknown question-answering head {head!r}; choose from {', '.join(QA_HEADS)}")
        self.head = head
        self.n_best = int(n_best)
        self.max_answer_length = int(max_answer_length)
        self.null_score_threshold = float(default_null_threshold(head) if null_score_threshold is None
                                          else null_score_threshold)
        self.allow_no_answer = bool(allow_no_answer)
        self.beam_size = int(beam_size)
        self.answerable_weight = float(answerable_weight)
        hidden, init, policy = backbone.hidden_size, backbone.initializer_range, backbone.dtype_policy
        if head == "huggingface":
            self.qa_outputs = dense_head(2, "qa_outputs", init, policy)
            self.qa_outputs.build((None, None, hidden))
        else:
            if preprocessor is not None and self.beam_size > preprocessor.seq_length:
                raise ElectraError(f"the QA beam_size {self.beam_size} exceeds seq_length {preprocessor.seq_length}: "
                                   "raise --seq-length or use --head huggingface")
            # Official: tf.layers.dense without an initializer, i.e. glorot_uniform.
            dense = lambda units, name: keras.layers.Dense(units, name=name, dtype=policy)  # noqa: E731
            self.start_logits = dense(1, "qa_start_logits")
            self.end_hidden = dense(HEAD_HIDDEN_SIZE, "qa_end_hidden")  # official name: qa_hidden
            self.end_logits = dense(1, "qa_end_logits")
            self.answerable_hidden = dense(HEAD_HIDDEN_SIZE, "qa_answerable_hidden")
            self.answerable_logits = dense(1, "qa_answerable_logits")
            self.start_logits.build((None, None, hidden))
            self.end_hidden.build((None, None, 2 * hidden))
            self.end_logits.build((None, None, HEAD_HIDDEN_SIZE))
            self.answerable_hidden.build((None, 2 * hidden))
            self.answerable_logits.build((None, HEAD_HIDDEN_SIZE))
            self._gelu = activation("gelu")  # official modeling.gelu: the exact erf form
        self.built = True  # every layer is built: `.keras` loading needs no sample call

    def call(self, inputs, training=None):
        hidden = self.backbone({k: inputs[k] for k in MODEL_KEYS}, training=training)
        if self.head == "huggingface":
            return float_logits(self.qa_outputs(hidden))
        return self._electra_head(hidden, inputs, inputs.get("start_positions") if isinstance(inputs, dict) else None)

    # ------------------------------------------------------------ the official head
    def _end_logits(self, start_features, end_features):
        """dense(1)(GELU(dense(512)(concat(start, end)))), with the 512-unit kernel split in two
        so that the [start; end] pairs are never materialised: K·L·2H·512 multiply-adds become
        (K + L)·H·512 (same weights, same result up to float rounding)."""
        size = ops.shape(end_features)[-1]
        kernel = ops.cast(self.end_hidden.kernel, end_features.dtype)
        bias = ops.cast(self.end_hidden.bias, end_features.dtype)
        from_start = ops.matmul(start_features, kernel[:size])  # [B, (K,) 1, 512]
        from_end = ops.matmul(end_features, kernel[size:])  # [B, (1,) L, 512]
        return ops.squeeze(self.end_logits(self._gelu(from_start + from_end + bias)), -1)

    def _electra_head(self, hidden, inputs, start_positions):
        length = ops.shape(hidden)[1]
        mask = ops.cast(inputs["padding_mask"], "float32") * ops.cast(inputs["segment_ids"], "float32")
        mask = mask + ops.one_hot(ops.zeros_like(inputs["padding_mask"][:, 0]), length, dtype="float32")
        penalty = ANSWER_MASK_PENALTY * (mask - 1.0)  # [B, L]
        start_logits = float_logits(ops.squeeze(self.start_logits(hidden), -1)) + penalty
        # Answerability: [CLS] and the start-probability-weighted hidden state.
        start_p = ops.cast(ops.softmax(start_logits, axis=-1), hidden.dtype)
        weighted = ops.einsum("bl,blh->bh", start_p, hidden)
        features = ops.concatenate([hidden[:, 0], weighted], axis=-1)
        answerable = float_logits(ops.squeeze(self.answerable_logits(self._gelu(self.answerable_hidden(features))), -1))
        if start_positions is not None:  # training: the end is conditioned on the gold start
            one_hot = ops.one_hot(ops.cast(start_positions, "int32"), length, dtype=hidden.dtype)
            start_hidden = ops.einsum("bl,blh->bh", one_hot, hidden)
            end_logits = float_logits(self._end_logits(start_hidden[:, None, :], hidden)) + penalty
            return ops.stack([start_logits, end_logits, ops.broadcast_to(answerable[:, None], ops.shape(end_logits))],
                             axis=-1)
        k = self.beam_size
        start_top_log_probs, start_top_index = ops.top_k(ops.log_softmax(start_logits, axis=-1), k)  # [B, K]
        one_hot = ops.one_hot(start_top_index, length, dtype=hidden.dtype)  # [B, K, L]
        start_hidden = ops.einsum("bkl,blh->bkh", one_hot, hidden)
        end_logits = float_logits(self._end_logits(start_hidden[:, :, None, :], hidden[:, None, :, :]))
        end_logits = end_logits + penalty[:, None, :]  # [B, K, L]
        end_top_log_probs, end_top_index = ops.top_k(ops.log_softmax(end_logits, axis=-1), k)  # [B, K, K]
        return ops.concatenate([
            start_top_log_probs[:, :, None], ops.cast(start_top_index, "float32")[:, :, None],
            end_top_log_probs, ops.cast(end_top_index, "float32"),
            ops.broadcast_to(answerable[:, None, None], (ops.shape(answerable)[0], k, 1)),
        ], axis=-1)

    def head_weights(self) -> dict[str, keras.Variable]:
        names: dict[str, keras.Variable] = {}
        if self.head == "huggingface":
            add_dense(names, "qa_outputs", self.qa_outputs)
            return names
        for name in ("start_logits", "end_hidden", "end_logits", "answerable_hidden", "answerable_logits"):
            add_dense(names, f"qa/{name}", getattr(self, name))
        return names

    def get_config(self) -> dict:
        return {**super().get_config(), "n_best": self.n_best, "max_answer_length": self.max_answer_length,
                "null_score_threshold": self.null_score_threshold, "allow_no_answer": self.allow_no_answer,
                "head": self.head, "beam_size": self.beam_size, "answerable_weight": self.answerable_weight}

    @classmethod
    def from_config(cls, config: dict):
        # Saved before the "electra" head existed: those models have the Hugging Face head.
        return super().from_config({"head": "huggingface", **config})

    @property
    def decoding(self) -> dict:
        """What `best_answers` needs besides the model outputs (also stored in export metadata)."""
        return {"n_best": self.n_best, "max_answer_length": self.max_answer_length,
                "null_score_threshold": self.null_score_threshold, "allow_no_answer": self.allow_no_answer,
                "head": self.head, "beam_size": self.beam_size}

    def answer(self, questions: Sequence[str], contexts: Sequence[str], batch_size: int = 32) -> list[dict]:
        """Best answer per (question, context): {"answer", "start", "end", "score", "n_best"}."""
        encoded = encode_windows(self.preprocessor, list(questions), list(contexts), batch_size)
        logits = self.predict({k: encoded[k] for k in MODEL_KEYS}, batch_size=batch_size, verbose=0)
        return decode_answers(contexts, logits, encoded, self.decoding)


def unpack_beam(beam: np.ndarray) -> dict[str, np.ndarray]:
    """The "electra" head's inference output [N, K, 2K+3] → the official named outputs:
    start_top_log_probs [N, K], start_top_index [N, K], end_top_log_probs [N, K, K],
    end_top_index [N, K, K] (the ends of each start) and answerable_logit [N]."""
    k = beam.shape[1]
    if beam.ndim != 3 or beam.shape[2] != 2 * k + 3:
        raise DataError(f"an electra QA beam is [N, K, 2K+3]; got shape {list(beam.shape)}")
    return {
        "start_top_log_probs": beam[:, :, 0],
        "start_top_index": np.rint(beam[:, :, 1]).astype(np.int64),
        "end_top_log_probs": beam[:, :, 2:2 + k],
        "end_top_index": np.rint(beam[:, :, 2 + k:2 + 2 * k]).astype(np.int64),
        "answerable_logit": beam[:, 0, 2 + 2 * k],
    }


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraSpanLoss(keras.losses.Loss):
    """The official QA loss of the "electra" head: (start NLL + end NLL) / 2 + `answerable_weight`
    × sigmoid cross-entropy of the answerability logit against `is_impossible`, averaged over the batch.

    y_true [B, 3] (start, end token positions, is_impossible ∈ {0, 1}); y_pred [B, L, 3], the
    head's training output (masked start logits, teacher-forced masked end logits, the
    answerability logit on every position).
    """

    def __init__(self, answerable_weight: float = OFFICIAL_ANSWERABLE_WEIGHT, name: str = "electra_span_loss",
                 **kwargs) -> None:
        super().__init__(name=name, reduction="sum", **kwargs)
        self.answerable_weight = float(answerable_weight)

    def call(self, y_true, y_pred):
        y_true = ops.cast(y_true, "int32")
        logits = ops.cast(y_pred, "float32")
        length = ops.shape(logits)[1]
        nll = 0.0
        for channel in (0, 1):
            log_probs = ops.log_softmax(logits[:, :, channel], axis=-1)
            nll = nll - ops.sum(ops.one_hot(y_true[:, channel], length, dtype="float32") * log_probs, axis=-1)
        impossible = ops.cast(y_true[:, 2], "float32")
        answerable = logits[:, 0, 2]
        # sigmoid_cross_entropy_with_logits, in its stable form.
        sigmoid_ce = ops.relu(answerable) - answerable * impossible + ops.log1p(ops.exp(-ops.abs(answerable)))
        return ops.mean(nll / 2.0 + self.answerable_weight * sigmoid_ce)

    def get_config(self) -> dict:
        return {"name": self.name, "answerable_weight": self.answerable_weight}


def electra_training_batch(preprocessor):
    """A `tf.data` map for the "electra" head: raw ((questions, contexts), (answer starts, ends))
    → (model inputs + `start_positions` (the gold start the end logits are conditioned on),
    [N, 3] labels: start, end, is_impossible of the example, as the official features)."""
    import tensorflow as tf

    def encode(x, y):
        packed = preprocessor.encode(x[0], x[1], y[0], y[1])
        inputs = {k: packed[k] for k in MODEL_KEYS}
        inputs["start_positions"] = packed["start_positions"]
        impossible = tf.cast(tf.gather(tf.reshape(y[0], [-1]) < 0, packed["example_index"]), tf.int32)
        return inputs, tf.stack([packed["start_positions"], packed["end_positions"], impossible], axis=1)

    return encode


# ---------------------------------------------------------------------- windows
def encode_windows(preprocessor, questions, contexts, batch_size: int = 32, answer_starts=None,
                   answer_ends=None) -> dict[str, np.ndarray]:
    """Every window of every example, as numpy (model inputs + alignment), in example order."""
    import tensorflow as tf

    inputs = (tf.constant(questions, tf.string, shape=[len(questions)]),
              tf.constant(contexts, tf.string, shape=[len(contexts)]))
    if answer_starts is not None:
        inputs += (tf.constant(answer_starts, tf.int32), tf.constant(answer_ends, tf.int32))
    ds = tf.data.Dataset.from_tensor_slices(inputs).batch(batch_size)
    offsets = tf.data.Dataset.range(0, max(len(questions), 1), batch_size)
    ds = tf.data.Dataset.zip((ds, offsets))

    def encode(batch, offset):
        out = preprocessor.encode(*batch)
        out["example_index"] = out["example_index"] + tf.cast(offset, tf.int32)
        return out

    parts = list(ds.map(encode, num_parallel_calls=AUTOTUNE).as_numpy_iterator())
    if not parts:
        raise DataError("no question-answer examples to encode")
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


def max_context_mask(example_index: np.ndarray, context_index: np.ndarray) -> np.ndarray:
    """[N, L] True where a window gives a context token its maximal context (BERT's
    `_check_is_max_context`: the window where min(left, right) context + 0.01·length is largest)."""
    mask = np.zeros(context_index.shape, dtype=bool)
    for ex in np.unique(example_index):
        rows = np.flatnonzero(example_index == ex)
        best: dict[int, tuple[float, int]] = {}
        for row in rows:
            valid = context_index[row] >= 0
            if not valid.any():
                continue
            tokens = context_index[row][valid]
            lo, hi = int(tokens.min()), int(tokens.max())
            for pos in np.flatnonzero(valid):
                t = int(context_index[row, pos])
                score = min(t - lo, hi - t) + 0.01 * (hi - lo + 1)
                if t not in best or score > best[t][0]:
                    best[t] = (score, row)
        for row in rows:
            for pos in np.flatnonzero(context_index[row] >= 0):
                mask[row, pos] = best[int(context_index[row, pos])][1] == row
    return mask


def best_answers(contexts: Sequence[str], logits: np.ndarray, encoded: dict, n_best: int = 20,
                 max_answer_length: int = 30, null_score_threshold: float | None = None) -> list[dict]:
    """Decode start/end logits of all windows into one answer per context.

    Candidates: the `n_best` best start and end positions of each window, both inside the
    context, start ≤ end, at most `max_answer_length` tokens, and the start token scored in
    the window where it has maximal context. With `null_score_threshold` set (SQuAD 2.0),
    the answer is "" when min over windows of start[CLS]+end[CLS] exceeds the best span
    score by more than the threshold. Returns per example: answer, start, end (characters),
    score, null_score_diff and the n-best list with softmax probabilities.
    """
    example_index = encoded["example_index"]
    context_index = encoded["context_token_index"]
    starts, ends = encoded["char_start"], encoded["char_end"]
    is_max = max_context_mask(example_index, context_index)
    results = []
    for ex, context in enumerate(contexts):
        candidates = []
        null_score = np.inf
        for row in np.flatnonzero(example_index == ex):
            start_logits, end_logits = logits[row, :, 0], logits[row, :, 1]
            null_score = min(null_score, float(start_logits[0] + end_logits[0]))
            top_starts = np.argsort(-start_logits)[:n_best]
            top_ends = np.argsort(-end_logits)[:n_best]
            for s in top_starts:
                if context_index[row, s] < 0 or not is_max[row, s]:
                    continue
                for e in top_ends:
                    if context_index[row, e] < 0 or e < s or e - s + 1 > max_answer_length:
                        continue
                    candidates.append((float(start_logits[s] + end_logits[e]), int(starts[row, s]), int(ends[row, e])))
        nbest = _rank(candidates, context, n_best)
        best = nbest[0] if nbest else {"text": "", "start": -1, "end": -1, "score": -np.inf}
        diff = null_score - best["score"] if nbest else np.inf
        answer = best
        if null_score_threshold is not None and (not nbest or diff > null_score_threshold):
            answer = {"text": "", "start": -1, "end": -1, "score": null_score}
        results.append({"answer": answer["text"], "start": answer["start"], "end": answer["end"],
                        "score": float(answer["score"]), "null_score_diff": float(diff), "n_best": nbest})
    return results


def _rank(candidates: list[tuple[float, int, int]], context: str, n_best: int, by_text: bool = False) -> list[dict]:
    """The `n_best` best distinct candidates (score, char start, char end), with softmax probabilities.

    Distinct by character span, or by answer text (`by_text`, as the official ELECTRA scorer)."""
    candidates = sorted(candidates, key=lambda c: -c[0])  # stable: ties keep window/beam order
    seen = set()
    nbest = []
    for score, a, b in candidates:
        key = context[a:b] if by_text else (a, b)
        if key in seen:
            continue
        seen.add(key)
        nbest.append({"text": context[a:b], "start": a, "end": b, "score": score})
        if len(nbest) >= n_best:
            break
    if nbest:
        probs = softmax(np.array([c["score"] for c in nbest]))
        for c, p in zip(nbest, probs):
            c["probability"] = float(p)
    return nbest


def electra_best_answers(contexts: Sequence[str], beam: np.ndarray, encoded: dict, n_best: int = 20,
                         max_answer_length: int = 30, null_score_threshold: float | None = None) -> list[dict]:
    """Decode the "electra" head's beams of all windows into one answer per context, as the
    official `SpanBasedQAScorer.write_predictions` (joint_prediction, answerable_classifier).

    Candidates: each of the K beam starts with each of its K beam ends, kept when both are
    context tokens, the start is not [CLS] and is in the window where it has maximal context,
    start ≤ end and the span has at most `max_answer_length` tokens; score = start log-prob +
    end log-prob. The n-best list is distinct by text. With `null_score_threshold` set (SQuAD
    2.0), the answer is "" when the smallest answerability logit over the windows (the
    official `score_null`) exceeds it; `null_score_diff` is that logit either way.
    """
    out = unpack_beam(np.asarray(beam, np.float32))
    example_index = encoded["example_index"]
    context_index = encoded["context_token_index"]
    starts, ends = encoded["char_start"], encoded["char_end"]
    is_max = max_context_mask(example_index, context_index)
    length = context_index.shape[1]
    results = []
    for ex, context in enumerate(contexts):
        candidates = []
        null_score = np.inf
        for row in np.flatnonzero(example_index == ex):
            null_score = min(null_score, float(out["answerable_logit"][row]))
            for i, s in enumerate(out["start_top_index"][row]):
                if not 0 < s < length or context_index[row, s] < 0 or not is_max[row, s]:
                    continue
                for j, e in enumerate(out["end_top_index"][row, i]):
                    if not 0 <= e < length or context_index[row, e] < 0 or e < s or e - s + 1 > max_answer_length:
                        continue
                    score = float(out["start_top_log_probs"][row, i] + out["end_top_log_probs"][row, i, j])
                    candidates.append((score, int(starts[row, s]), int(ends[row, e])))
        nbest = _rank(candidates, context, n_best, by_text=True)
        answer = nbest[0] if nbest else {"text": "", "start": -1, "end": -1, "score": -np.inf}
        if null_score_threshold is not None and (not nbest or null_score > null_score_threshold):
            answer = {"text": "", "start": -1, "end": -1, "score": null_score}
        results.append({"answer": answer["text"], "start": answer["start"], "end": answer["end"],
                        "score": float(answer["score"]), "null_score_diff": float(null_score), "n_best": nbest})
    return results


def decode_answers(contexts: Sequence[str], outputs: np.ndarray, encoded: dict, decoding: dict) -> list[dict]:
    """One answer per context from a QA model's outputs, for either head.

    decoding: `ElectraQuestionAnswerer.decoding` (or an export's metadata: without "head",
    an export made before the "electra" head, whose outputs are Hugging Face span logits).
    """
    threshold = decoding["null_score_threshold"] if decoding.get("allow_no_answer") else None
    decode = electra_best_answers if decoding.get("head", "huggingface") == "electra" else best_answers
    return decode(contexts, outputs, encoded, decoding["n_best"], decoding["max_answer_length"], threshold)


# ------------------------------------------------------------------------ runner
def _answer_span(example) -> tuple[int, int]:
    if example.is_impossible or not example.answers:
        return -1, -1
    a = example.answers[0]
    return a.start, a.end


def _is_chinese(text: str) -> bool:
    return any("\u4e00" <= ch <= "\u9fff" for ch in text[:200])


class QuestionAnsweringRunner(TaskRunner):
    """SQuAD-format extractive QA (SQuAD v1.1/v2.0, XQuAD, CMRC 2018)."""

    kind = "qa"
    heads = QA_HEADS

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        return ElectraQuestionAnswerer.from_backbone(
            backbone, tokenizer, seq_length,
            preprocessor_kwargs={"doc_stride": options.get("doc_stride", 128),
                                 "max_query_length": options.get("max_query_length", min(64, seq_length // 2))},
            n_best=options.get("n_best", 20), max_answer_length=options.get("max_answer_length", 30),
            null_score_threshold=options.get("null_score_threshold"),  # None: the head's default
            allow_no_answer=options.get("allow_no_answer", False),
            head=options.get("head", "electra"),
        )

    def compile_args(self, model, options):
        if model.head == "electra":
            return {"loss": ElectraSpanLoss(model.answerable_weight)}
        return {"loss": SpanLoss()}

    def check(self, examples, model, where):
        # An empty question still makes a valid input (CMRC 2018 trial has one); an empty context does not.
        for e in examples:
            check_nonempty(e.context, f"{where}: question {e.guid}", "context")
        pre = model.preprocessor
        if pre.doc_stride > 0 or not examples:
            return
        q_len, c_len = self._lengths(pre, examples)
        room = pre.seq_length - 3 - np.minimum(q_len, pre.max_query_length)
        too_long = np.flatnonzero(c_len > room)
        if too_long.size:
            i = int(too_long[0])
            raise DataError(
                f"{where}: question {examples[i].guid}: question + context take {int(q_len[i] + c_len[i] + 3)}"
                f" tokens, more than seq_length {pre.seq_length}, and the document stride is off (set --doc-stride)"
            )

    @staticmethod
    def _lengths(preprocessor, examples) -> tuple[np.ndarray, np.ndarray]:
        import tensorflow as tf

        tok = preprocessor.tokenizer
        q = tf.data.Dataset.from_tensor_slices([e.question for e in examples]).batch(256)
        c = tf.data.Dataset.from_tensor_slices([e.context for e in examples]).batch(256)
        lengths = lambda ds: np.concatenate(  # noqa: E731
            list(ds.map(lambda s: tok.tokenize(s).row_lengths()).as_numpy_iterator()))
        return lengths(q), lengths(c)

    def num_windows(self, preprocessor, examples) -> int:
        q_len, c_len = self._lengths(preprocessor, examples)
        window = preprocessor.seq_length - 3 - np.minimum(q_len, preprocessor.max_query_length)
        if preprocessor.doc_stride <= 0:
            return len(examples)
        step = np.minimum(preprocessor.doc_stride, window)
        return int(np.sum(1 + (np.maximum(c_len - window, 0) + step - 1) // step))

    def train_dataset(self, model, examples, batch_size, seed, shuffle=True):
        import tensorflow as tf

        spans = np.array([_answer_span(e) for e in examples], np.int32).reshape(-1, 2)
        inputs = ((tf.constant([e.question for e in examples]), tf.constant([e.context for e in examples])),
                  (tf.constant(spans[:, 0]), tf.constant(spans[:, 1])))
        ds = tf.data.Dataset.from_tensor_slices(inputs)
        if shuffle:
            ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        windows = self.num_windows(model.preprocessor, examples)
        drop = windows >= batch_size
        encode = electra_training_batch(model.preprocessor) if model.head == "electra" else model.preprocessor
        ds = ds.batch(64).map(encode, num_parallel_calls=AUTOTUNE).unbatch()
        if shuffle:
            ds = ds.shuffle(1024, seed=seed)
        ds = ds.batch(batch_size, drop_remainder=drop)
        steps = windows // batch_size if drop else 1
        return ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(AUTOTUNE)

    def predict(self, model, examples, batch_size):
        encoded = encode_windows(model.preprocessor, [e.question for e in examples], [e.context for e in examples],
                                 batch_size)
        outputs = model.predict({k: encoded[k] for k in MODEL_KEYS}, batch_size=batch_size, verbose=0)
        meta = {k: encoded[k] for k in META_KEYS}
        if model.head == "electra":
            # Beams hold token indices, which must not be averaged over seeds: "scores" (what
            # an ensemble averages) is the answerability logit; the spans come from "beam".
            return {"scores": unpack_beam(outputs)["answerable_logit"], "beam": outputs, **meta}
        return {"scores": outputs, **meta}

    def answers(self, examples, predictions, model) -> list[dict]:
        contexts = [e.context for e in examples]
        if model.head == "electra":
            beam = np.array(predictions["beam"], np.float32, copy=True)
            beam[:, :, -1] = np.asarray(predictions["scores"])[:, None]  # the (possibly averaged) answerability
            return decode_answers(contexts, beam, predictions, model.decoding)
        return decode_answers(contexts, predictions["scores"], predictions, model.decoding)

    def score(self, task, examples, predictions, model):
        answers = self.answers(examples, predictions, model)
        preds = {e.guid: a["answer"] for e, a in zip(examples, answers)}
        if task == "cmrc2018" or (examples and _is_chinese(examples[0].context)):
            return task_metrics.cmrc_em_f1(preds, examples)
        if model.allow_no_answer or any(e.is_impossible for e in examples):
            na = {e.guid: float(a["null_score_diff"]) for e, a in zip(examples, answers)}
            return task_metrics.squad_v2(preds, examples, na_probs=na, na_prob_thresh=model.null_score_threshold)
        return task_metrics.squad_v1(preds, examples)
