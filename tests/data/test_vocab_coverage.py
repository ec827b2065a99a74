"""scripts/vocab_coverage.py: counts of vocabulary rows over a real novel, and the unseen-row report."""

from __future__ import annotations

import collections
import importlib.util
import re

import numpy as np
import pytest

from tests.conftest import NOVELS, REPO, VOCAB_UNCASED

NOVEL = NOVELS / "Doyle_Hound_1902.txt"
LINES = 400


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("vocab_coverage", REPO / "scripts" / "vocab_coverage.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_counts_whole_words_like_a_plain_split(script):
    from keras_electra.data.corpus import iter_sentences
    from keras_electra.data.tokenizer import build_tokenizer

    tokenizer = build_tokenizer(VOCAB_UNCASED)
    counts, lines = script.token_counts(tokenizer, [NOVEL], max_lines=LINES)
    assert lines == LINES
    # A whole-word entry counts once per occurrence, split on punctuation and space ("moorland" would add a
    # "moor" piece, so the words checked are ones that begin no longer word in these lines).
    words = collections.Counter()
    for index, line in enumerate(iter_sentences([NOVEL])):
        if index == LINES:
            break
        words.update(re.findall(r"[a-z0-9]+", line.lower()))
    for word in ("the", "and", "holmes", "said"):
        assert counts[tokenizer.token_to_id(word)] == words[word] > 0, word
    assert counts.sum() >= sum(words.values())  # every word is at least one piece


def test_reports_rows_the_corpus_never_uses(script, tmp_path, capsys):
    # Three made-up words appended to BERT's vocabulary can never occur: they must be among the unseen rows,
    # and a model whose embedding table has another size is refused with one line.
    vocab = tmp_path / "vocab.txt"
    made_up = ["qzxv", "vvqqzz", "zzqqxx"]
    vocab.write_text(VOCAB_UNCASED.read_text(encoding="utf-8") + "".join(f"{w}\n" for w in made_up), encoding="utf-8")
    assert script.main(["--corpus", str(NOVEL), "--vocab", str(vocab), "--max-lines", str(LINES)]) == 0
    out = capsys.readouterr().out
    unseen = int(re.search(r"never in the corpus: (\d+) ordinary rows", out).group(1))
    from keras_electra.data.tokenizer import build_tokenizer

    counts, _ = script.token_counts(build_tokenizer(vocab), [NOVEL], max_lines=LINES)
    assert counts[-3:].tolist() == [0, 0, 0]
    ordinary = np.array([not (t.startswith("[") and t.endswith("]")) for t in build_tokenizer(vocab).vocabulary])
    assert unseen == int(((counts == 0) & ordinary).sum()) > 20000  # 400 lines use few of 30k rows


def test_mean_cosine_of_identical_and_opposite_rows(script):
    rng = np.random.default_rng(0)
    row = rng.normal(size=8)
    assert script.mean_cosine(np.stack([row] * 5), sample=10, rng=rng) == pytest.approx(1.0)
    assert script.mean_cosine(np.stack([row, -row]), sample=10, rng=rng) == pytest.approx(-1.0)
