"""`keras-electra task-text`: unlabelled text from task datasets becomes a pretraining corpus."""

from __future__ import annotations

import pytest

from keras_electra.data.corpus import iter_sentences
from keras_electra.data.readers import read_dataset
from keras_electra.data.task_text import task_paragraphs, write_task_corpus
from keras_electra.errors import DataError
from tests.conftest import SHARED_DATA


def test_chinese_task_text_keeps_text_and_drops_labels(tmp_path):
    output = tmp_path / "zh.txt"
    counts = write_task_corpus([("chnsenticorp", str(SHARED_DATA / "chnsenticorp"), "train"),
                                ("cluener", str(SHARED_DATA / "cluener2020"), "train")], output)
    reviews = read_dataset("chnsenticorp", SHARED_DATA / "chnsenticorp", "train")
    sentences = read_dataset("cluener", SHARED_DATA / "cluener2020", "train")
    paragraphs = output.read_text(encoding="utf-8").split("\n\n")
    assert counts == {"chnsenticorp:train": len({" ".join(e.text_a.split()) for e in reviews}),
                      "cluener:train": len({"".join(e.words) for e in sentences})}
    assert len(paragraphs) == sum(counts.values())
    # CLUENER's one-character "words" are joined back into running Chinese text, and no tag survives.
    first_cluener = paragraphs[counts["chnsenticorp:train"]].strip()
    assert first_cluener == "".join(sentences[0].words) and " " not in first_cluener
    # The in-graph splitter cuts the Chinese paragraphs at 。！？ into sentences.
    split = list(iter_sentences([output], "paragraphs"))
    assert len(split) > len(paragraphs)


def test_qa_contexts_are_written_once():
    examples = read_dataset("xquad", SHARED_DATA / "xquad", "test")
    paragraphs = task_paragraphs(examples)
    contexts = {" ".join(e.context.split()) for e in examples}
    questions = {" ".join(e.question.split()) for e in examples}
    assert set(paragraphs) == contexts | questions
    assert len(paragraphs) == len(contexts | questions) < 2 * len(examples)


def test_bad_sources_fail_with_one_line(tmp_path):
    with pytest.raises(DataError, match="unknown dataset"):
        write_task_corpus([("imdb", str(tmp_path), "train")], tmp_path / "out.txt")
    with pytest.raises(DataError, match="no chnsenticorp dev file"):
        write_task_corpus([("chnsenticorp", str(tmp_path), "dev")], tmp_path / "out.txt")
    assert not (tmp_path / "out.txt").exists()
