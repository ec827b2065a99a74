"""Property-based tests (issue 18): the readers, the corpus check and the tokenizer front end on
arbitrary Unicode (lone surrogates included) and arbitrary bytes. Every input yields a result or one
`ElectraError` line, never another exception.

Derandomised, so the default suite is reproducible; `HYPOTHESIS_PROFILE=soak` (slow mark) runs many more.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pytest

hypothesis = pytest.importorskip(
    "hypothesis", reason="hypothesis is not installed: `pip install -e .[dev]` (setup.py dev extras) to run these"
)
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from keras_electra.errors import ElectraError  # noqa: E402
from tests.conftest import VOCAB_UNCASED  # noqa: E402

EXAMPLES = 400 if os.environ.get("HYPOTHESIS_PROFILE") == "soak" else 40
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
# Every code point, lone surrogates (category Cs) included.
ANY_TEXT = st.text(st.characters(exclude_categories=()), max_size=200)
# Bytes that look like the formats more often than pure noise would.
STRUCTURED = st.lists(st.sampled_from(
    ["\t", "\n", "\r\n", " ", "0", "1", "-", "B-PER", "I-LOC", "O", "{", "}", "[", "]", '"', ":", ",",
     "<e1>", "</e1>", "<e2>", "</e2>", "Cause-Effect(e1,e2)", "Other", "sentence", "label", "text", "id",
     '"data"', '"context"', '"qas"', '"answers"', '"answer_start"', "\x00", "\ufeff", "\u200b", "é"]),
    max_size=60).map(lambda parts: "".join(parts).encode("utf-8"))
ANY_BYTES = st.one_of(st.binary(max_size=300), STRUCTURED, ANY_TEXT.map(lambda t: t.encode("utf-8", "surrogatepass")))


def _one_line(call) -> object:
    try:
        return call()
    except ElectraError as err:
        assert str(err) and "\n" not in str(err), repr(str(err))
        return err


def _with_file(data: bytes, name: str, call) -> object:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        return _one_line(lambda: call(path))


@pytest.fixture(scope="module")
def tokenizer():
    from keras_electra.data.tokenizer import ElectraTokenizer

    return ElectraTokenizer(VOCAB_UNCASED, lower_case=True)


@FUZZ
@given(data=ANY_BYTES)
def test_readers_on_arbitrary_bytes(data):
    from keras_electra.data.readers.c3 import read_c3
    from keras_electra.data.readers.cluener import read_cluener
    from keras_electra.data.readers.conll import read_conll
    from keras_electra.data.readers.glue import read_glue
    from keras_electra.data.readers.semeval import read_semeval
    from keras_electra.data.readers.squad import read_squad
    from keras_electra.data.readers.table import read_table

    _with_file(data, "train.tsv", lambda p: read_glue("sst2", p, "train"))
    _with_file(data, "train.tsv", lambda p: read_glue("mrpc", p, "train"))
    _with_file(data, "train.txt", lambda p: read_conll(p))
    _with_file(data, "train.json", lambda p: read_squad(p))
    _with_file(data, "TRAIN_FILE.TXT", lambda p: read_semeval(p))
    _with_file(data, "train.json", lambda p: read_cluener(p))
    _with_file(data, "train.json", lambda p: read_c3(p))
    _with_file(data, "train.csv", lambda p: read_table(p, ["text"], "label"))
    _with_file(data, "train.jsonl", lambda p: read_table(p, ["text"], "label"))


@FUZZ
@given(data=ANY_BYTES)
def test_corpus_check_on_arbitrary_bytes(data):
    from keras_electra.data.corpus import check_corpus_files

    _with_file(data, "corpus.txt", lambda p: check_corpus_files([p]))


@settings(FUZZ, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(texts=st.lists(ANY_TEXT, min_size=1, max_size=4), raw=st.binary(max_size=100))
def test_tokenizer_front_end_on_arbitrary_unicode_and_bytes(tokenizer, texts, raw):
    from keras_electra.tasks.predict import check_texts, clean_inputs

    ids = tokenizer.tokenize(texts)
    assert ids.shape[0] == len(texts)
    with_offsets, starts, ends = tokenizer.tokenize_with_offsets(texts)
    assert with_offsets.shape[0] == len(texts)
    assert tokenizer.tokenize([raw]).shape[0] == 1  # raw bytes, valid UTF-8 or not
    cleaned, _, _, _ = clean_inputs(texts, None, None, None)
    assert all(c < "\ud800" or c > "\udfff" for t in cleaned for c in t)
    _one_line(lambda: check_texts(cleaned))
