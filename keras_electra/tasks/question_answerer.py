"""`ElectraQuestionAnswerer`: extractive QA with a start/end head, document stride, n-best
spans, a maximum answer length and a no-answer threshold (SQuAD 2.0)."""

from __future__ import annotations

from collections.abc import Sequence

import keras
import numpy as np
import tensorflow as tf

from keras_electra.errors import DataError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks import metrics as task_metrics
from keras_electra.tasks.base import MODEL_KEYS, ElectraTask, SpanLoss, add_dense, dense_head, float_logits
from keras_electra.tasks.preprocessors import ElectraQuestionAnswererPreprocessor
from keras_electra.tasks.runner import AUTOTUNE, TaskRunner, check_nonempty, softmax

META_KEYS = ("example_index", "context_token_index", "char_start", "char_end")


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraQuestionAnswerer(ElectraTask):
    """Start and end logits per position, [B, L, 2] float32 (`qa_outputs/{kernel,bias}`, as HF).

    Decoding options (used by `best_answers`): `n_best` start/end candidates, answers of at
    most `max_answer_length` tokens, and for SQuAD 2.0 `null_score_threshold`: answer ""
    when the [CLS] score beats the best span by more than it.
    """

    preprocessor_cls = ElectraQuestionAnswererPreprocessor
    task_type = "question_answering"

    def __init__(
        self,
        backbone: ElectraBackbone,
        preprocessor: ElectraQuestionAnswererPreprocessor | None = None,
        n_best: int = 20,
        max_answer_length: int = 30,
        null_score_threshold: float = 0.0,
        allow_no_answer: bool = False,
        label_names: list[str] | None = None,
        adversarial_epsilon: float = 0.0,
        **kwargs,
    ) -> None:
        super().__init__(backbone, preprocessor, label_names, adversarial_epsilon, **kwargs)
        self.n_best = int(n_best)
        self.max_answer_length = int(max_answer_length)
        self.null_score_threshold = float(null_score_threshold)
        self.allow_no_answer = bool(allow_no_answer)
        self.qa_outputs = dense_head(2, "qa_outputs", backbone.initializer_range, backbone.dtype_policy)
        self.qa_outputs.build((None, None, backbone.hidden_size))
        self.built = True  # every layer is built: `.keras` loading needs no sample call

    def call(self, inputs, training=None):
        hidden = self.backbone({k: inputs[k] for k in MODEL_KEYS}, training=training)
        return float_logits(self.qa_outputs(hidden))

    def head_weights(self) -> dict[str, keras.Variable]:
        names: dict[str, keras.Variable] = {}
        add_dense(names, "qa_outputs", self.qa_outputs)
        return names

    def get_config(self) -> dict:
        return {**super().get_config(), "n_best": self.n_best, "max_answer_length": self.max_answer_length,
                "null_score_threshold": self.null_score_threshold, "allow_no_answer": self.allow_no_answer}

    def answer(self, questions: Sequence[str], contexts: Sequence[str], batch_size: int = 32) -> list[dict]:
        """Best answer per (question, context): {"answer", "start", "end", "score", "n_best"}."""
        encoded = encode_windows(self.preprocessor, list(questions), list(contexts), batch_size)
        logits = self.predict({k: encoded[k] for k in MODEL_KEYS}, batch_size=batch_size, verbose=0)
        return best_answers(contexts, logits, encoded, self.n_best, self.max_answer_length,
                            self.null_score_threshold if self.allow_no_answer else None)


# ---------------------------------------------------------------------- windows
def encode_windows(preprocessor, questions, contexts, batch_size: int = 32, answer_starts=None,
                   answer_ends=None) -> dict[str, np.ndarray]:
    """Every window of every example, as numpy (model inputs + alignment), in example order."""
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
        candidates.sort(key=lambda c: -c[0])
        seen = set()
        nbest = []
        for score, a, b in candidates:
            if (a, b) in seen:
                continue
            seen.add((a, b))
            nbest.append({"text": context[a:b], "start": a, "end": b, "score": score})
            if len(nbest) >= n_best:
                break
        if nbest:
            probs = softmax(np.array([c["score"] for c in nbest]))
            for c, p in zip(nbest, probs):
                c["probability"] = float(p)
        best = nbest[0] if nbest else {"text": "", "start": -1, "end": -1, "score": -np.inf}
        diff = null_score - best["score"] if nbest else np.inf
        answer = best
        if null_score_threshold is not None and (not nbest or diff > null_score_threshold):
            answer = {"text": "", "start": -1, "end": -1, "score": null_score}
        results.append({"answer": answer["text"], "start": answer["start"], "end": answer["end"],
                        "score": float(answer["score"]), "null_score_diff": float(diff), "n_best": nbest})
    return results


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

    def build_model(self, backbone, tokenizer, seq_length, labels, options):
        return ElectraQuestionAnswerer.from_backbone(
            backbone, tokenizer, seq_length,
            preprocessor_kwargs={"doc_stride": options.get("doc_stride", 128),
                                 "max_query_length": options.get("max_query_length", min(64, seq_length // 2))},
            n_best=options.get("n_best", 20), max_answer_length=options.get("max_answer_length", 30),
            null_score_threshold=options.get("null_score_threshold", 0.0),
            allow_no_answer=options.get("allow_no_answer", False),
        )

    def compile_args(self, model, options):
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
        spans = np.array([_answer_span(e) for e in examples], np.int32).reshape(-1, 2)
        inputs = ((tf.constant([e.question for e in examples]), tf.constant([e.context for e in examples])),
                  (tf.constant(spans[:, 0]), tf.constant(spans[:, 1])))
        ds = tf.data.Dataset.from_tensor_slices(inputs)
        if shuffle:
            ds = ds.shuffle(len(examples), seed=seed, reshuffle_each_iteration=True)
        windows = self.num_windows(model.preprocessor, examples)
        drop = windows >= batch_size
        ds = ds.batch(64).map(model.preprocessor, num_parallel_calls=AUTOTUNE).unbatch()
        if shuffle:
            ds = ds.shuffle(1024, seed=seed)
        ds = ds.batch(batch_size, drop_remainder=drop)
        steps = windows // batch_size if drop else 1
        return ds.apply(tf.data.experimental.assert_cardinality(steps)).prefetch(AUTOTUNE)

    def predict(self, model, examples, batch_size):
        encoded = encode_windows(model.preprocessor, [e.question for e in examples], [e.context for e in examples],
                                 batch_size)
        logits = model.predict({k: encoded[k] for k in MODEL_KEYS}, batch_size=batch_size, verbose=0)
        return {"scores": logits, **{k: encoded[k] for k in META_KEYS}}

    def answers(self, examples, predictions, model) -> list[dict]:
        threshold = model.null_score_threshold if model.allow_no_answer else None
        return best_answers([e.context for e in examples], predictions["scores"], predictions, model.n_best,
                            model.max_answer_length, threshold)

    def score(self, task, examples, predictions, model):
        answers = self.answers(examples, predictions, model)
        preds = {e.guid: a["answer"] for e, a in zip(examples, answers)}
        if task == "cmrc2018" or (examples and _is_chinese(examples[0].context)):
            return task_metrics.cmrc_em_f1(preds, examples)
        if model.allow_no_answer or any(e.is_impossible for e in examples):
            na = {e.guid: float(a["null_score_diff"]) for e, a in zip(examples, answers)}
            return task_metrics.squad_v2(preds, examples, na_probs=na, na_prob_thresh=model.null_score_threshold)
        return task_metrics.squad_v1(preds, examples)

    def decode(self, examples, predictions, model):
        return [{"answer": a["answer"], "start": a["start"], "end": a["end"], "score": a["score"]}
                for a in self.answers(examples, predictions, model)]
