"""Task metrics against scikit-learn, scipy and seqeval on real data, and hand-checked official-scorer cases."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest

from keras_electra.data.readers import read_dataset, read_glue
from keras_electra.errors import ElectraError
from keras_electra.tasks.metrics import (
    accuracy,
    cmrc_em_f1,
    entity_prf,
    f1_binary,
    get_entities,
    glue_metrics,
    matthews_corrcoef,
    mixed_segmentation,
    normalize_answer,
    pearson,
    semeval_macro_f1,
    semeval_scores,
    spearman,
    squad_exact,
    squad_f1,
    squad_v1,
    squad_v2,
)
from tests.conftest import GLUE, SHARED_DATA

# ----------------------------------------------------------------------------- GLUE metrics


def _flip(labels: np.ndarray, rate: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.where(rng.random(labels.size) < rate, 1 - labels, labels)


def test_classification_metrics_match_sklearn_on_cola():
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.metrics import matthews_corrcoef as sk_mcc

    labels = np.array([int(e.label) for e in read_glue("cola", GLUE / "CoLA", "dev")])
    for seed, rate in enumerate([0.0, 0.1, 0.3, 0.5, 0.9]):
        preds = _flip(labels, rate, seed)
        assert matthews_corrcoef(preds, labels) == pytest.approx(sk_mcc(labels, preds), abs=1e-12)
        assert f1_binary(preds, labels) == pytest.approx(f1_score(labels, preds), abs=1e-12)
        assert accuracy(preds, labels) == pytest.approx(accuracy_score(labels, preds), abs=1e-12)
    # Multi-class MCC too, and the degenerate constant case (sklearn gives 0).
    rng = np.random.default_rng(5)
    y, p = rng.integers(0, 3, 400), rng.integers(0, 3, 400)
    p[:200] = y[:200]
    assert matthews_corrcoef(p, y) == pytest.approx(sk_mcc(y, p), abs=1e-12)
    assert matthews_corrcoef(np.ones_like(labels), labels) == 0.0 == sk_mcc(labels, np.ones_like(labels))
    assert f1_binary([0, 0], [0, 0]) == 0.0


def test_correlations_match_scipy_on_stsb():
    from scipy.stats import pearsonr, spearmanr

    labels = np.array([e.label for e in read_glue("stsb", GLUE / "STS-B", "dev")])
    rng = np.random.default_rng(0)
    for noise in (0.1, 1.0, 3.0):
        # Rounded predictions have many ties, like the labels.
        preds = np.clip(np.round(labels + rng.normal(0, noise, labels.size), 1), 0, 5)
        assert pearson(preds, labels) == pytest.approx(pearsonr(preds, labels)[0], abs=1e-12)
        assert spearman(preds, labels) == pytest.approx(spearmanr(preds, labels)[0], abs=1e-12)
    assert spearman([1, 2, 2, 3], [1, 3, 3, 4]) == pytest.approx(1.0)
    assert pearson(np.full(5, 2.0), np.arange(5.0)) == 0.0


def test_glue_metrics():
    cola = glue_metrics("cola", [1, 0, 1, 1], ["1", "0", "0", "1"])
    assert set(cola) == {"mcc", "score"} and cola["mcc"] == pytest.approx(matthews_corrcoef([1, 0, 1, 1], [1, 0, 0, 1]))
    mrpc = glue_metrics("mrpc", ["1", "1", "0", "0"], ["1", "0", "0", "1"])
    assert mrpc["accuracy"] == 0.5 and mrpc["f1"] == 0.5 and mrpc["score"] == 0.5
    qnli = glue_metrics("qnli", [0, 1, 1], ["entailment", "not_entailment", "entailment"])
    assert qnli == {"accuracy": pytest.approx(2 / 3), "score": pytest.approx(2 / 3)}
    stsb = glue_metrics("STS-B", [1.0, 2.0, 3.5], [1.2, 3.0, 2.5])  # ranks 123 vs 132
    assert set(stsb) == {"pearson", "spearman", "score"} and stsb["spearman"] == pytest.approx(0.5)
    with pytest.raises(ElectraError, match="unknown GLUE task 'imdb'"):
        glue_metrics("imdb", [0], [0])
    with pytest.raises(ElectraError, match="unknown label 'maybe'"):
        glue_metrics("qnli", ["entailment"], ["maybe"])
    with pytest.raises(ElectraError, match="must be 1-D of equal length"):
        accuracy([1, 2], [1])


# ----------------------------------------------------------------------------- entity PRF vs seqeval


def _corrupt(sentences: list[list[str]], seed: int) -> list[list[str]]:
    """Realistic tagger errors: random tag flips, dropped B-, I- without B-, wrong types, shifted ends."""
    rng = random.Random(seed)
    tags = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"]
    out = []
    for sentence in sentences:
        pred = list(sentence)
        for i, tag in enumerate(pred):
            u = rng.random()
            if u < 0.04:
                pred[i] = rng.choice(tags)
            elif tag.startswith("B-") and u < 0.12:
                pred[i] = "I-" + tag[2:]  # I- without B-
            elif tag.startswith("B-") and u < 0.18:
                pred[i] = "O"  # dropped B-, leaving a stray I- after it
            elif tag.startswith("I-") and u < 0.22:
                pred[i] = "I-" + rng.choice(["PER", "ORG", "LOC", "MISC"])  # type change mid-entity
            elif tag == "O" and i > 0 and pred[i - 1] != "O" and u < 0.25:
                pred[i] = "I-" + pred[i - 1][2:]  # entity runs on
        out.append(pred)
    return out


def _seqeval_scores(true, pred):
    from seqeval.metrics import classification_report, f1_score, precision_score, recall_score

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        report = classification_report(true, pred, output_dict=True)
        return precision_score(true, pred), recall_score(true, pred), f1_score(true, pred), report


@pytest.mark.parametrize("seed", [0, 1])
def test_entity_prf_matches_seqeval_on_conll(seed):
    true = [e.tags for e in read_dataset("conll2003", SHARED_DATA, "dev")]
    pred = _corrupt(true, seed)
    ours = entity_prf(true, pred)
    precision, recall, f1, report = _seqeval_scores(true, pred)
    assert 0.3 < ours["f1"] < 0.95  # the corruption is substantial but not total
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx((precision, recall, f1), abs=1e-12)
    for kind, scores in ours["per_type"].items():
        assert scores["precision"] == pytest.approx(report[kind]["precision"], abs=1e-12)
        assert scores["recall"] == pytest.approx(report[kind]["recall"], abs=1e-12)
        assert scores["f1"] == pytest.approx(report[kind]["f1-score"], abs=1e-12)
        assert scores["support"] == report[kind]["support"]


def test_entity_prf_matches_seqeval_on_iob1_and_chinese():
    from keras_electra.data.readers import read_conll

    # The original IOB1 tags, scored as IOB1 on both sides.
    iob1 = [e.tags for e in read_conll(SHARED_DATA / "conll2003/original_iob1/eng.testb", scheme="IOB2")]
    pred = _corrupt(iob1, 3)
    ours = entity_prf(iob1, pred)
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx(_seqeval_scores(iob1, pred)[:3], abs=1e-12)
    # CLUENER character tags with their own types.
    cluener = [e.tags for e in read_dataset("cluener", SHARED_DATA, "dev")]
    rng = random.Random(0)
    pred = [[("O" if rng.random() < 0.1 else t) for t in tags] for tags in cluener]
    ours = entity_prf(cluener, pred)
    assert (ours["precision"], ours["recall"], ours["f1"]) == pytest.approx(
        _seqeval_scores(cluener, pred)[:3], abs=1e-12
    )


def test_entity_prf_edge_cases():
    assert get_entities(["I-PER", "I-PER", "O", "B-LOC", "I-ORG", "B-ORG", "I-ORG"]) == [
        ("PER", 0, 1),
        ("LOC", 3, 3),
        ("ORG", 4, 4),
        ("ORG", 5, 6),
    ]
    true = [["B-PER", "I-PER", "O"], ["B-LOC"]]
    nothing = entity_prf(true, [["O", "O", "O"], ["O"]])
    assert (nothing["precision"], nothing["recall"], nothing["f1"]) == (0.0, 0.0, 0.0)
    perfect = entity_prf(true, true)
    assert perfect["f1"] == 1.0 and perfect["per_type"]["PER"]["support"] == 1
    half = entity_prf(true, [["B-PER", "O", "O"], ["B-LOC"]])
    assert (half["precision"], half["recall"]) == (0.5, 0.5)
    with pytest.raises(ElectraError, match="sentence 1 has 1 true tags but 2 predicted"):
        entity_prf(true, [["O", "O", "O"], ["O", "O"]])


# ----------------------------------------------------------------------------- SQuAD


def test_squad_normalisation_and_single_scores():
    assert normalize_answer("The Cat!") == "cat"
    assert normalize_answer("  An   apple, a day.") == "apple day"
    assert normalize_answer("theatre") == "theatre"  # articles only as whole words
    assert squad_exact("The Cat!", "cat") == 1.0
    assert squad_exact("cats", "cat") == 0.0
    # tokens [quick, brown, fox] vs [quick, fox, jumps]: 2 shared → P = R = F1 = 2/3.
    assert squad_f1("the quick brown fox", "quick fox jumps") == pytest.approx(2 / 3)
    assert squad_f1("", "cat") == 0.0
    assert squad_f1("the", "a") == 0.0 and squad_f1("the", "a", v2=True) == 1.0


def test_squad_v1():
    golds = {"q1": ["The Cat", "a cat"], "q2": ["Denver Broncos"], "q3": ["1998"]}
    preds = {"q1": "cat", "q2": "the Broncos"}  # q3 unanswered → 0, still counted
    scores = squad_v1(preds, golds)
    # q1: EM 1, F1 1; q2: EM 0, F1 = 2·(1·½)/(1+½) = 2/3; q3: 0.
    assert scores["exact_match"] == pytest.approx(1 / 3)
    assert scores["f1"] == pytest.approx((1 + 2 / 3) / 3)
    assert scores["total"] == 3
    # Gold answers as predictions score 1 on real data.
    examples = read_dataset("xquad", SHARED_DATA, "dev")
    perfect = squad_v1({e.guid: e.answers[0].text for e in examples}, examples)
    assert perfect["exact_match"] == 1.0 and perfect["f1"] == 1.0


def test_squad_v2_with_no_answer_threshold():
    golds = {"q1": ["The cat", "cat"], "q2": ["a dog"], "q3": [], "q4": []}
    preds = {"q1": "the cat!", "q2": "dog food", "q3": "", "q4": "something"}
    na_probs = {"q1": 0.1, "q2": 0.6, "q3": 0.8, "q4": 0.7}
    scores = squad_v2(preds, golds, na_probs)
    # Raw scores: q1 (1, 1); q2 (0, 2/3); q3 (1, 1): both empty; q4 (0, 0).
    assert scores["exact"] == pytest.approx(0.5) and scores["f1"] == pytest.approx((1 + 2 / 3 + 1) / 4)
    assert scores["HasAns_exact"] == pytest.approx(0.5) and scores["HasAns_f1"] == pytest.approx(5 / 6)
    assert scores["NoAns_exact"] == pytest.approx(0.5) and scores["HasAns_total"] == scores["NoAns_total"] == 2
    # Sweep (sorted by probability q1, q2, q4, q3) from 2 no-answers right:
    # exact: 2 → 3 (q1) → 3 → 2 (q4 answered wrongly) → 2; best 3/4 at 0.1.
    # f1:    2 → 3 → 3 2/3 (q2) → 2 2/3 → 2 2/3;        best (3 2/3)/4 at 0.6.
    assert (scores["best_exact"], scores["best_exact_thresh"]) == (pytest.approx(0.75), 0.1)
    assert (scores["best_f1"], scores["best_f1_thresh"]) == (pytest.approx((3 + 2 / 3) / 4), 0.6)
    # With threshold 0.5, q2, q4 and q3 count as "no answer": q1 → 1, q2 → 0, q4 → 1, q3 → 1.
    thresholded = squad_v2(preds, golds, na_probs, na_prob_thresh=0.5)
    assert thresholded["exact"] == pytest.approx(0.75) and thresholded["f1"] == pytest.approx(0.75)
    with pytest.raises(ElectraError, match="1 question\\(s\\) have no prediction, e.g. 'q4'"):
        squad_v2({k: v for k, v in preds.items() if k != "q4"}, golds)


# ----------------------------------------------------------------------------- CMRC 2018


def test_cmrc_segmentation_and_scores():
    assert mixed_segmentation("Hello, World! 2010年") == ["hello", ",", "world", "!", "2010", "年"]
    assert mixed_segmentation("光荣和ω-force", remove_punctuation=True) == ["光", "荣", "和", "ωforce"]
    # English runs follow NLTK's word_tokenize (Treebank rules).
    assert mixed_segmentation("Don't stop 《U.S. army (1998)》.") == [
        "do",
        "n't",
        "stop",
        "《",
        "u.s.",
        "army",
        "(",
        "1998",
        ")",
        "》",
        ".",
    ]
    assert mixed_segmentation('"cannot" 3.14km') == ["``", "can", "not", "''", "3.14km"]
    golds = {
        "a": ["战国无双3"],
        "b": ["光荣和ω-force"],
        "c": ["北京大学"],
        "d": ["2010年赛季", "赛季"],
        "e": ["missing"],
    }
    preds = {"a": "《战国无双3》", "b": "光荣公司", "c": "北京的大学", "d": "2010年"}
    scores = cmrc_em_f1(preds, golds)
    # a: EM 1 (punctuation removed), F1 1. b: LCS 2 of 4/4 → 0.5. c: longest common *substring*
    # 北京 (2): P 2/5, R 2/4 → 4/9. d: vs 2010年赛季 LCS 2: P 1, R 1/2 → 2/3 (赛季 gives 0). e: unanswered.
    assert scores["em"] == pytest.approx(1 / 5)
    assert scores["f1"] == pytest.approx((1 + 0.5 + 4 / 9 + 2 / 3) / 5)
    assert scores["average"] == pytest.approx((scores["em"] + scores["f1"]) / 2)
    assert scores["skipped"] == 1 and scores["total"] == 5
    # Real data: each question's first gold text (located or not) is a perfect prediction.
    examples = read_dataset("cmrc2018", SHARED_DATA, "dev")
    perfect = cmrc_em_f1({e.guid: e.answer_texts[-1] for e in examples}, examples)
    assert perfect["em"] == 1.0 and perfect["f1"] == pytest.approx(1.0)


# ----------------------------------------------------------------------------- SemEval-2010 Task 8


def test_semeval_official_score_hand_built():
    labels = ["Cause-Effect(e1,e2)", "Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Component-Whole(e1,e2)"]
    labels += ["Other", "Other"]
    preds = ["Cause-Effect(e1,e2)", "Cause-Effect(e2,e1)", "Cause-Effect(e2,e1)", "Other"]
    preds += ["Component-Whole(e1,e2)", "Other"]
    scores = semeval_scores(preds, labels)
    # Cause-Effect: 2 right; 3 predictions of it (one with the wrong direction counts against P); 3 gold.
    assert scores["per_relation"]["Cause-Effect"]["precision"] == pytest.approx(2 / 3)
    assert scores["per_relation"]["Cause-Effect"]["recall"] == pytest.approx(2 / 3)
    # Component-Whole: its only prediction is on an Other sentence, its only gold is missed.
    assert scores["per_relation"]["Component-Whole"]["f1"] == 0.0
    assert semeval_macro_f1(preds, labels) == pytest.approx((2 / 3 + 0) / 2)
    assert scores["accuracy"] == pytest.approx(3 / 6)
    # Relations absent from the gold labels are not averaged (as the official scorer).
    assert semeval_macro_f1(["Cause-Effect(e1,e2)", "Message-Topic(e1,e2)"], ["Cause-Effect(e1,e2)", "Other"]) == 1.0


def test_semeval_score_on_real_test_labels():
    labels = [e.label for e in read_dataset("semeval", SHARED_DATA, "test")]
    assert semeval_macro_f1(labels, labels) == 1.0
    flipped = [
        label.replace("(e1,e2)", "(tmp)").replace("(e2,e1)", "(e1,e2)").replace("(tmp)", "(e2,e1)") for label in labels
    ]
    # Every relation with the wrong direction: nothing is right, although the 9+1-way no-direction view is perfect.
    assert semeval_macro_f1(flipped, labels) == 0.0
    rng = random.Random(0)
    noisy = [label if rng.random() < 0.8 else "Other" for label in labels]
    scores = semeval_scores(noisy, labels)
    assert all(v["precision"] == 1.0 for v in scores["per_relation"].values())
    assert 0.7 < scores["macro_recall"] < 0.9 and len(scores["per_relation"]) == 9
