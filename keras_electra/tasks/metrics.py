"""Task metrics that reproduce the official scorers (numpy only).

Scores are fractions in [0, 1] (the official scripts print them ×100), correlations in [-1, 1].

- GLUE: `accuracy`, `f1_binary`, `matthews_corrcoef` (CoLA), `pearson`, `spearman` (STS-B),
  `glue_metrics(task, preds, labels)` for the standard metric set of a task.
- NER: `entity_prf`, entity-level micro P/R/F1 and per type, identical to `seqeval` in its default
  (conlleval-style) mode, including chunks that start with a stray I- tag.
- SQuAD: `normalize_answer`, `squad_exact`, `squad_f1`, `squad_v1` (evaluate-v1.1.py) and
  `squad_v2` (evaluate-v2.0.py with HasAns/NoAns and best no-answer threshold).
- CMRC 2018: `cmrc_em_f1` (cmrc2018_evaluate.py: longest-common-substring F1 over mixed segments).
- SemEval-2010 Task 8: `semeval_scores`, `semeval_macro_f1` (the official (9+1)-way, direction-aware
  macro F1 excluding Other, as semeval2010_task8_scorer-v1.2.pl).

Degenerate inputs follow scikit-learn: MCC, Pearson and Spearman are 0.0 when a side is constant
(scipy would give NaN, which breaks best-checkpoint selection); P/R/F1 are 0.0 when undefined.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from collections.abc import Mapping, Sequence

import numpy as np

from keras_electra.errors import ElectraError

__all__ = [
    "accuracy",
    "cmrc_em_f1",
    "entity_prf",
    "f1_binary",
    "get_entities",
    "glue_metrics",
    "matthews_corrcoef",
    "mixed_segmentation",
    "normalize_answer",
    "pearson",
    "semeval_macro_f1",
    "semeval_scores",
    "spearman",
    "squad_exact",
    "squad_f1",
    "squad_v1",
    "squad_v2",
]


def _pair(preds: Sequence, labels: Sequence, name: str) -> tuple[np.ndarray, np.ndarray]:
    preds, labels = np.asarray(preds), np.asarray(labels)
    if preds.shape != labels.shape or preds.ndim != 1:
        raise ElectraError(f"{name}: predictions {preds.shape} and labels {labels.shape} must be 1-D of equal length")
    if preds.size == 0:
        raise ElectraError(f"{name}: no examples to score")
    return preds, labels


# ----------------------------------------------------------------------------- classification


def accuracy(preds: Sequence, labels: Sequence) -> float:
    """Fraction of predictions equal to the label."""
    preds, labels = _pair(preds, labels, "accuracy")
    return float(np.mean(preds == labels))


def f1_binary(preds: Sequence, labels: Sequence, positive=1) -> float:
    """F1 of the positive class (scikit-learn `f1_score(average="binary")`, 0.0 when undefined)."""
    preds, labels = _pair(preds, labels, "f1_binary")
    pred_pos, true_pos = preds == positive, labels == positive
    tp = float(np.sum(pred_pos & true_pos))
    denominator = float(np.sum(pred_pos) + np.sum(true_pos))
    return 0.0 if denominator == 0 else 2.0 * tp / denominator


def matthews_corrcoef(preds: Sequence, labels: Sequence) -> float:
    """Matthews correlation (multi-class form of scikit-learn; 0.0 when either side is constant)."""
    preds, labels = _pair(preds, labels, "matthews_corrcoef")
    classes, indices = np.unique(np.concatenate([labels, preds]), return_inverse=True)
    true_idx, pred_idx = indices[: labels.size], indices[labels.size :]
    confusion = np.zeros((classes.size, classes.size), dtype=np.float64)
    np.add.at(confusion, (true_idx, pred_idx), 1.0)
    t_sum, p_sum = confusion.sum(axis=1), confusion.sum(axis=0)
    n_correct, n = np.trace(confusion), confusion.sum()
    cov_ytyp = n_correct * n - np.dot(t_sum, p_sum)
    cov_ypyp = n * n - np.dot(p_sum, p_sum)
    cov_ytyt = n * n - np.dot(t_sum, t_sum)
    if cov_ypyp * cov_ytyt == 0:
        return 0.0
    return float(cov_ytyp / np.sqrt(cov_ytyt * cov_ypyp))


def pearson(preds: Sequence[float], labels: Sequence[float]) -> float:
    """Pearson correlation coefficient (0.0 when either side is constant)."""
    x, y = _pair(preds, labels, "pearson")
    x, y = x.astype(np.float64), y.astype(np.float64)
    x, y = x - x.mean(), y - y.mean()
    denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
    if denominator == 0:
        return 0.0
    return float(np.clip(np.dot(x, y) / denominator, -1.0, 1.0))


def _average_ranks(values: np.ndarray) -> np.ndarray:
    """1-based ranks, ties getting the mean of their ranks (scipy.stats.rankdata "average")."""
    order = np.argsort(values, kind="mergesort")
    ordered = values[order]
    # Start index of each run of equal values.
    boundaries = np.concatenate([[True], ordered[1:] != ordered[:-1]])
    run_id = np.cumsum(boundaries) - 1
    starts = np.flatnonzero(boundaries)
    ends = np.concatenate([starts[1:], [values.size]])
    mean_rank = (starts + ends + 1) / 2.0  # mean of 1-based ranks start+1 .. end
    ranks = np.empty(values.size, dtype=np.float64)
    ranks[order] = mean_rank[run_id]
    return ranks


def spearman(preds: Sequence[float], labels: Sequence[float]) -> float:
    """Spearman rank correlation with average ranks for ties (0.0 when either side is constant)."""
    x, y = _pair(preds, labels, "spearman")
    return pearson(_average_ranks(x.astype(np.float64)), _average_ranks(y.astype(np.float64)))


_GLUE_LABELS = {
    "cola": ("0", "1"),
    "sst2": ("0", "1"),
    "mrpc": ("0", "1"),
    "qqp": ("0", "1"),
    "wnli": ("0", "1"),
    "qnli": ("entailment", "not_entailment"),
    "rte": ("entailment", "not_entailment"),
    "mnli": ("contradiction", "entailment", "neutral"),
}
_GLUE_ALIASES = {"sst-2": "sst2", "sts-b": "stsb", "mnli-m": "mnli", "mnli-mm": "mnli", "mnli_mismatched": "mnli"}


def _as_label_names(values: Sequence, names: tuple[str, ...], task: str, side: str) -> list[str]:
    """Class ids (ints, indices into `names`) or label strings → label strings."""
    out = []
    for value in values:
        if isinstance(value, (str, np.str_)):
            label = str(value)
        elif isinstance(value, (int, np.integer)) and not isinstance(value, bool) and 0 <= value < len(names):
            label = names[int(value)]
        else:
            raise ElectraError(f"glue_metrics({task}): {side} value {value!r} is neither a label nor a class id")
        if label not in names:
            raise ElectraError(f"glue_metrics({task}): unknown {side} {label!r} (expected one of {names})")
        out.append(label)
    return out


def glue_metrics(task: str, preds: Sequence, labels: Sequence) -> dict[str, float]:
    """The standard GLUE metrics of a task, plus "score" (the task's GLUE score: their mean).

    cola: mcc; sst2, qnli, rte, wnli, mnli: accuracy; mrpc, qqp: accuracy, f1 (positive class "1");
    stsb: pearson, spearman. Classification preds/labels may be label strings ("entailment", "1")
    or class ids (indices into the task's label list); STS-B takes floats.
    """
    key = _GLUE_ALIASES.get(task.lower(), task.lower())
    if key == "stsb":
        preds_f = np.asarray(preds, dtype=np.float64)
        labels_f = np.asarray(labels, dtype=np.float64)
        out = {"pearson": pearson(preds_f, labels_f), "spearman": spearman(preds_f, labels_f)}
    elif key in _GLUE_LABELS:
        names = _GLUE_LABELS[key]
        p = np.asarray(_as_label_names(preds, names, task, "prediction"))
        t = np.asarray(_as_label_names(labels, names, task, "label"))
        if key == "cola":
            out = {"mcc": matthews_corrcoef(p, t)}
        elif key in ("mrpc", "qqp"):
            out = {"accuracy": accuracy(p, t), "f1": f1_binary(p, t, positive="1")}
        else:
            out = {"accuracy": accuracy(p, t)}
    else:
        raise ElectraError(f"unknown GLUE task {task!r} (known: {', '.join([*_GLUE_LABELS, 'stsb'])})")
    out["score"] = float(np.mean(list(out.values())))
    return out


# ----------------------------------------------------------------------------- entity-level NER


def _tag_parts(tag: str) -> tuple[str, str]:
    # seqeval (default, prefix mode): the first character is the tag, the rest after the first "-"
    # the type; "O" has type "_".
    return tag[0], tag[1:].split("-", maxsplit=1)[-1] or "_"


def _end_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if prev_tag in ("E", "S"):
        return True
    if prev_tag in ("B", "I") and tag in ("B", "S", "O"):
        return True
    return prev_tag not in ("O", ".") and prev_type != type_


def _start_of_chunk(prev_tag: str, tag: str, prev_type: str, type_: str) -> bool:
    if tag in ("B", "S"):
        return True
    if prev_tag in ("E", "S", "O") and tag in ("E", "I"):
        return True
    return tag not in ("O", ".") and prev_type != type_


def get_entities(tags: Sequence[str]) -> list[tuple[str, int, int]]:
    """(type, start, end inclusive) chunks of one sentence, conlleval-style (as seqeval's default).

    Reads IOB1, IOB2 and IOBES alike; an I- tag after O or after another type opens a chunk.
    """
    chunks = []
    prev_tag, prev_type, begin = "O", "", 0
    for i, chunk in enumerate([*tags, "O"]):
        tag, type_ = _tag_parts(chunk)
        if _end_of_chunk(prev_tag, tag, prev_type, type_):
            chunks.append((prev_type, begin, i - 1))
        if _start_of_chunk(prev_tag, tag, prev_type, type_):
            begin = i
        prev_tag, prev_type = tag, type_
    return chunks


def _prf(tp: int, n_pred: int, n_true: int) -> tuple[float, float, float]:
    precision = tp / n_pred if n_pred else 0.0
    recall = tp / n_true if n_true else 0.0
    denominator = precision + recall
    f1 = 2.0 * precision * recall / denominator if denominator else 0.0
    return precision, recall, f1


def entity_prf(true_tags: Sequence[Sequence[str]], pred_tags: Sequence[Sequence[str]]) -> dict:
    """Entity-level micro precision/recall/F1 and per-type scores (= seqeval default mode).

    An entity is correct when its type, start and end all match. Returns
    {"precision", "recall", "f1", "per_type": {type: {"precision", "recall", "f1", "support"}}}.
    Chunking is conlleval-style, so IOB1, IOB2 and IOBES tags all score alike.
    """
    if len(true_tags) != len(pred_tags):
        raise ElectraError(f"entity_prf: {len(true_tags)} true sentences but {len(pred_tags)} predicted")
    true_set: dict[str, set] = {}
    pred_set: dict[str, set] = {}
    for index, (true, pred) in enumerate(zip(true_tags, pred_tags)):
        if len(true) != len(pred):
            raise ElectraError(f"entity_prf: sentence {index} has {len(true)} true tags but {len(pred)} predicted")
        for kind, start, end in get_entities(list(true)):
            true_set.setdefault(kind, set()).add((index, start, end))
        for kind, start, end in get_entities(list(pred)):
            pred_set.setdefault(kind, set()).add((index, start, end))
    per_type = {}
    total_tp = total_pred = total_true = 0
    for kind in sorted(set(true_set) | set(pred_set)):
        t, p = true_set.get(kind, set()), pred_set.get(kind, set())
        tp = len(t & p)
        precision, recall, f1 = _prf(tp, len(p), len(t))
        per_type[kind] = {"precision": precision, "recall": recall, "f1": f1, "support": len(t)}
        total_tp, total_pred, total_true = total_tp + tp, total_pred + len(p), total_true + len(t)
    precision, recall, f1 = _prf(total_tp, total_pred, total_true)
    return {"precision": precision, "recall": recall, "f1": f1, "per_type": per_type}


# ----------------------------------------------------------------------------- SQuAD

_PUNCTUATION = frozenset(string.punctuation)
_ARTICLES = re.compile(r"\b(a|an|the)\b", re.UNICODE)


def normalize_answer(text: str) -> str:
    """SQuAD v1.1/v2.0 normalisation: lower case, drop punctuation, drop a/an/the, squash whitespace."""
    text = "".join(ch for ch in text.lower() if ch not in _PUNCTUATION)
    return " ".join(_ARTICLES.sub(" ", text).split())


def squad_exact(prediction: str, gold: str) -> float:
    return float(normalize_answer(prediction) == normalize_answer(gold))


def squad_f1(prediction: str, gold: str, v2: bool = False) -> float:
    """Token-overlap F1 of normalised answers. With `v2`, two empty answers score 1 (evaluate-v2.0)."""
    pred_tokens, gold_tokens = normalize_answer(prediction).split(), normalize_answer(gold).split()
    if v2 and (not pred_tokens or not gold_tokens):
        return float(pred_tokens == gold_tokens)
    common = Counter(pred_tokens) & Counter(gold_tokens)
    same = sum(common.values())
    if same == 0:
        return 0.0
    precision, recall = same / len(pred_tokens), same / len(gold_tokens)
    return 2 * precision * recall / (precision + recall)


def _golds(golds) -> dict[str, list[str]]:
    """{id: gold answer texts} from a mapping or from QAExamples (no-answer questions → [])."""
    if isinstance(golds, Mapping):
        return {str(k): list(v) for k, v in golds.items()}
    out = {}
    for example in golds:
        out[example.guid] = [] if example.is_impossible else example.answer_texts
    return out


def squad_v1(predictions: Mapping[str, str], golds) -> dict[str, float]:
    """SQuAD v1.1 exact match and F1 (max over gold answers), as evaluate-v1.1.py.

    golds: {question id: [gold texts]} or a list of QAExample. Questions without a prediction score 0
    (and count in the total), as in the official script.
    """
    gold = _golds(golds)
    if not gold:
        raise ElectraError("squad_v1: no gold questions")
    exact = f1 = 0.0
    for qid, answers in gold.items():
        if qid not in predictions:
            continue
        if not answers:
            raise ElectraError(f"squad_v1: question {qid!r} has no gold answer (use squad_v2 for unanswerable)")
        prediction = predictions[qid]
        exact += max(squad_exact(prediction, a) for a in answers)
        f1 += max(squad_f1(prediction, a) for a in answers)
    return {"exact_match": exact / len(gold), "f1": f1 / len(gold), "total": len(gold)}


def squad_v2(
    predictions: Mapping[str, str],
    golds,
    na_probs: Mapping[str, float] | None = None,
    na_prob_thresh: float = 1.0,
) -> dict[str, float]:
    """SQuAD v2.0 scores, as evaluate-v2.0.py.

    predictions: {id: answer text, "" for no answer}. golds: {id: [gold texts], [] = unanswerable}
    or QAExamples. na_probs: {id: no-answer probability}; a question whose probability exceeds
    na_prob_thresh counts as answered "no answer". Returns exact, f1, total and HasAns_/NoAns_
    versions; with na_probs also best_exact(_thresh) and best_f1(_thresh).
    """
    gold = _golds(golds)
    missing = [qid for qid in gold if qid not in predictions]
    if missing:
        raise ElectraError(f"squad_v2: {len(missing)} question(s) have no prediction, e.g. {missing[0]!r}")
    if not gold:
        raise ElectraError("squad_v2: no gold questions")
    has_answer = {qid: bool(answers) for qid, answers in gold.items()}
    exact_raw, f1_raw = {}, {}
    for qid, answers in gold.items():
        texts = [a for a in answers if normalize_answer(a)] or [""]
        prediction = predictions[qid]
        exact_raw[qid] = max(squad_exact(prediction, a) for a in texts)
        f1_raw[qid] = max(squad_f1(prediction, a, v2=True) for a in texts)
    if na_probs is None:
        probs = {qid: 0.0 for qid in gold}
    else:
        absent = [qid for qid in gold if qid not in na_probs]
        if absent:
            raise ElectraError(f"squad_v2: {len(absent)} question(s) have no no-answer probability, e.g. {absent[0]!r}")
        # In na_probs order: the official threshold sweep sorts stably, so ties keep that order.
        probs = {qid: float(p) for qid, p in na_probs.items() if qid in gold}

    def threshold(scores: dict[str, float]) -> dict[str, float]:
        return {q: float(not has_answer[q]) if probs[q] > na_prob_thresh else s for q, s in scores.items()}

    exact_t, f1_t = threshold(exact_raw), threshold(f1_raw)
    out: dict[str, float] = {
        "exact": sum(exact_t.values()) / len(gold),
        "f1": sum(f1_t.values()) / len(gold),
        "total": len(gold),
    }
    for prefix, wanted in (("HasAns", True), ("NoAns", False)):
        ids = [q for q in gold if has_answer[q] == wanted]
        if ids:
            out[f"{prefix}_exact"] = sum(exact_t[q] for q in ids) / len(ids)
            out[f"{prefix}_f1"] = sum(f1_t[q] for q in ids) / len(ids)
            out[f"{prefix}_total"] = len(ids)
    if na_probs is not None:
        for name, raw in (("exact", exact_raw), ("f1", f1_raw)):
            best, thresh = _best_threshold(predictions, raw, probs, has_answer)
            out[f"best_{name}"], out[f"best_{name}_thresh"] = best, thresh
    return out


def _best_threshold(predictions, scores, probs, has_answer) -> tuple[float, float]:
    """evaluate-v2.0.py find_best_thresh: sweep the no-answer threshold over the sorted probabilities."""
    score = best = sum(1 for q in has_answer if not has_answer[q])
    best_thresh = 0.0
    for qid in sorted(probs, key=lambda q: probs[q]):
        if has_answer[qid]:
            diff = scores[qid]
        else:
            diff = -1 if predictions[qid] else 0
        score += diff
        if score > best:
            best, best_thresh = score, probs[qid]
    return best / len(scores), best_thresh


# ----------------------------------------------------------------------------- CMRC 2018

# The punctuation list of cmrc2018_evaluate.py (ASCII and full-width); "……" never matches a single
# character there either.
_CMRC_PUNCT = frozenset(
    ["-", ":", "_", "*", "^", "/", "\\", "~", "`", "+", "=", "，", "。", "：", "？", "！", "“", "”", "；", "’"]
    + ["《", "》", "……", "·", "、", "「", "」", "（", "）", "－", "～", "『", "』"]
)
_CJK = re.compile(r"[\u4e00-\u9fa5]")

# A port of NLTK's word_tokenize (NLTKWordTokenizer) rules, which the official script applies to
# runs of non-Chinese characters. NLTK's Punkt sentence splitting is not reproduced: it only matters
# for a run holding several English sentences, which answers almost never do.
_STARTING_QUOTES = [
    (re.compile(r"([«“‘„]|[`]+)"), r" \1 "),
    (re.compile(r"^\""), r"``"),
    (re.compile(r"(``)"), r" \1 "),
    (re.compile(r"([ \(\[{<])(\"|\'{2})"), r"\1 `` "),
    (re.compile(r"(?i)(\')(?!re|ve|ll|m|t|s|d|n)(\w)\b"), r"\1 \2"),
]
_ENDING_QUOTES = [
    (re.compile(r"([»”’])"), r" \1 "),
    (re.compile(r"''"), " '' "),
    (re.compile(r'"'), " '' "),
    (re.compile(r"([^' ])('[sS]|'[mM]|'[dD]|') "), r"\1 \2 "),
    (re.compile(r"([^' ])('ll|'LL|'re|'RE|'ve|'VE|n't|N'T) "), r"\1 \2 "),
]
_PUNCT_RULES = [
    (re.compile(r'([^\.])(\.)([\]\)}>"\'»”’ ]*)\s*$'), r"\1 \2 \3 "),
    (re.compile(r"([:,])([^\d])"), r" \1 \2"),
    (re.compile(r"([:,])$"), r" \1 "),
    (re.compile(r"\.{2,}"), r" \g<0> "),
    (re.compile(r"[;@#$%&]"), r" \g<0> "),
    (re.compile(r'([^\.])(\.)([\]\)}>"\']*)\s*$'), r"\1 \2\3 "),
    (re.compile(r"[?!]"), r" \g<0> "),
    (re.compile(r"([^'])' "), r"\1 ' "),
    (re.compile(r"[*]"), r" \g<0> "),
]
_PARENS = (re.compile(r"[\]\[\(\)\{\}\<\>]"), r" \g<0> ")
_DASHES = (re.compile(r"--"), r" -- ")
_CONTRACTIONS = [
    re.compile(p)
    for p in (
        r"(?i)\b(can)(?#X)(not)\b",
        r"(?i)\b(d)(?#X)('ye)\b",
        r"(?i)\b(gim)(?#X)(me)\b",
        r"(?i)\b(gon)(?#X)(na)\b",
        r"(?i)\b(got)(?#X)(ta)\b",
        r"(?i)\b(lem)(?#X)(me)\b",
        r"(?i)\b(more)(?#X)('n)\b",
        r"(?i)\b(wan)(?#X)(na)(?=\s)",
        r"(?i) ('t)(?#X)(is)\b",
        r"(?i) ('t)(?#X)(was)\b",
    )
]


def _word_tokenize(text: str) -> list[str]:
    for pattern, sub in _STARTING_QUOTES:
        text = pattern.sub(sub, text)
    for pattern, sub in _PUNCT_RULES:
        text = pattern.sub(sub, text)
    text = _PARENS[0].sub(_PARENS[1], text)
    text = _DASHES[0].sub(_DASHES[1], text)
    text = " " + text + " "
    for pattern, sub in _ENDING_QUOTES:
        text = pattern.sub(sub, text)
    for pattern in _CONTRACTIONS:
        text = pattern.sub(r" \1 \2 ", text)
    return text.split()


def mixed_segmentation(text: str, remove_punctuation: bool = False) -> list[str]:
    """cmrc2018_evaluate.py mixed_segmentation: Chinese characters (and its punctuation) one by one,
    other runs word-tokenised; lower-cased and stripped first."""
    text = str(text).lower().strip()
    segments: list[str] = []
    run = ""
    for char in text:
        if remove_punctuation and char in _CMRC_PUNCT:
            continue
        if _CJK.match(char) or char in _CMRC_PUNCT:
            if run:
                segments.extend(_word_tokenize(run))
                run = ""
            segments.append(char)
        else:
            run += char
    if run:
        segments.extend(_word_tokenize(run))
    return segments


def _cmrc_remove_punctuation(text: str) -> str:
    return "".join(ch for ch in str(text).lower().strip() if ch not in _CMRC_PUNCT)


def _longest_common_substring(a: list[str], b: list[str]) -> int:
    best = 0
    previous = [0] * (len(b) + 1)
    for i in range(len(a)):
        current = [0] * (len(b) + 1)
        for j in range(len(b)):
            if a[i] == b[j]:
                current[j + 1] = previous[j] + 1
                best = max(best, current[j + 1])
        previous = current
    return best


def _cmrc_f1(answers: list[str], prediction: str) -> float:
    prediction_segments = mixed_segmentation(prediction, remove_punctuation=True)
    scores = []
    for answer in answers:
        answer_segments = mixed_segmentation(answer, remove_punctuation=True)
        lcs = _longest_common_substring(answer_segments, prediction_segments)
        if lcs == 0:
            scores.append(0.0)
            continue
        precision, recall = lcs / len(prediction_segments), lcs / len(answer_segments)
        scores.append(2 * precision * recall / (precision + recall))
    return max(scores)


def cmrc_em_f1(predictions: Mapping[str, str], golds) -> dict[str, float]:
    """CMRC 2018 official EM and F1 (cmrc2018_evaluate.py), plus their average.

    EM: a gold answer equals the prediction after lower-casing and removing punctuation. F1: the
    longest common substring of punctuation-free mixed segments (Chinese characters, English words),
    max over gold answers. golds: {id: [gold texts]} or QAExamples (all gold texts, including
    `unlocated` ones). Questions without a prediction score 0 and count in the total.
    """
    gold = _golds(golds)
    if not gold:
        raise ElectraError("cmrc_em_f1: no gold questions")
    em = f1 = 0.0
    skipped = 0
    for qid, answers in gold.items():
        if qid not in predictions:
            skipped += 1
            continue
        if not answers:
            raise ElectraError(f"cmrc_em_f1: question {qid!r} has no gold answer")
        prediction = str(predictions[qid])
        f1 += _cmrc_f1(answers, prediction)
        pred_clean = _cmrc_remove_punctuation(prediction)
        em += float(any(_cmrc_remove_punctuation(a) == pred_clean for a in answers))
    em, f1 = em / len(gold), f1 / len(gold)
    return {"em": em, "f1": f1, "average": (em + f1) / 2, "total": len(gold), "skipped": skipped}


# ----------------------------------------------------------------------------- SemEval-2010 Task 8


def _undirected(label: str) -> str:
    return re.sub(r"\(e[12],e[12]\)$", "", label)


def semeval_scores(preds: Sequence[str], labels: Sequence[str]) -> dict:
    """The official "(9+1)-way evaluation with directionality taken into account" of SemEval-2010 Task 8.

    A prediction counts as correct only with the right relation and direction. Per relation R (not
    Other): P = correct / all predictions of R (either direction), R = correct / gold R, F1; the
    macro average is over the relations present in the gold labels (excluding Other), as
    semeval2010_task8_scorer-v1.2.pl. Returns {"macro_f1", "macro_precision", "macro_recall",
    "micro_precision", "micro_recall", "micro_f1", "accuracy", "per_relation": {R: {...}}}.
    """
    preds, labels = _pair(list(preds), list(labels), "semeval_scores")
    correct: Counter = Counter()
    predicted: Counter = Counter()  # predictions of R in either direction (incl. wrong direction)
    gold: Counter = Counter()
    exact = 0
    for pred, label in zip(preds.tolist(), labels.tolist()):
        pred_rel, gold_rel = _undirected(pred), _undirected(label)
        gold[gold_rel] += 1
        predicted[pred_rel] += 1
        if pred == label:
            correct[gold_rel] += 1
            exact += 1
    relations = sorted(r for r in gold if r != "Other")
    per_relation = {}
    for relation in relations:
        precision, recall, f1 = _prf(correct[relation], predicted[relation], gold[relation])
        per_relation[relation] = {"precision": precision, "recall": recall, "f1": f1, "support": gold[relation]}
    n = max(len(relations), 1)
    micro_p, micro_r, micro_f1 = _prf(
        sum(correct[r] for r in relations), sum(predicted[r] for r in relations), sum(gold[r] for r in relations)
    )
    return {
        "macro_f1": sum(v["f1"] for v in per_relation.values()) / n,
        "macro_precision": sum(v["precision"] for v in per_relation.values()) / n,
        "macro_recall": sum(v["recall"] for v in per_relation.values()) / n,
        "micro_precision": micro_p,
        "micro_recall": micro_r,
        "micro_f1": micro_f1,
        "accuracy": exact / len(labels),
        "per_relation": per_relation,
    }


def semeval_macro_f1(preds: Sequence[str], labels: Sequence[str]) -> float:
    """The official SemEval-2010 Task 8 score (as a fraction; the scorer prints it ×100)."""
    return semeval_scores(preds, labels)["macro_f1"]
