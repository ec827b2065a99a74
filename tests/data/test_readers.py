"""Dataset readers on every real file in ../shared/data, plus the error cases.

Expected counts are parsed from shared/data/SOURCES.md (the data's own documentation), never typed in.
"""

from __future__ import annotations

import json
import re
from collections import Counter

import pytest

from keras_electra.data.readers import (
    CLUENER_TAGS,
    CONLL2003_TAGS,
    READERS,
    SEMEVAL_LABELS,
    Answer,
    GlueSpec,
    QAExample,
    RelationExample,
    dataset_files,
    iob1_to_iob2,
    label_list,
    mark_entities,
    parse_entity_markup,
    read_c3,
    read_chnsenticorp,
    read_cluener,
    read_conll,
    read_dataset,
    read_glue,
    read_semeval,
    read_semeval_keys,
    read_squad,
    read_table,
    split_squad,
)
from keras_electra.data.readers.conll import detect_scheme
from keras_electra.data.readers.semeval import undirected
from keras_electra.errors import DataError, ElectraError
from keras_electra.tasks.metrics import get_entities
from tests.conftest import GLUE, SHARED_DATA


def _documented_counts() -> dict[str, dict[str, int]]:
    """{relative path: {unit: count}} from the file tables of SOURCES.md ("1,343 records / 3,072 entity spans")."""
    counts = {}
    for line in (SHARED_DATA / "SOURCES.md").read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) < 4 or not cells[1].startswith("`"):
            continue
        units = {}
        for number, unit in re.findall(r"(\d[\d,]*) ([A-Za-z-]+)", cells[3]):
            units.setdefault(unit, int(number.replace(",", "")))
        counts[cells[1].strip("`")] = units
    return counts


DOC = _documented_counts()


def doc(path: str, unit: str) -> int:
    return DOC[path][unit]


# ----------------------------------------------------------------------------- GLUE


GLUE_FILES = [
    ("cola", "CoLA", ["train", "dev", "test"]),
    ("sst2", "SST-2", ["train", "dev", "test"]),
    ("mrpc", "MRPC", ["train", "dev", "test"]),
    ("stsb", "STS-B", ["train", "dev", "test"]),
    ("qnli", "QNLI", ["dev"]),
]


@pytest.mark.parametrize("task,folder,splits", GLUE_FILES)
def test_glue_counts_and_labels(task, folder, splits):
    for split in splits:
        examples = read_glue(task, GLUE / folder, split)
        assert len(examples) == doc(f"glue/{folder}/{split}.tsv", "rows"), (task, split)
        assert all(e.text_a for e in examples)
        pair = task in ("mrpc", "stsb", "qnli")
        assert all((e.text_b is not None) == pair for e in examples)
        assert len({e.guid for e in examples}) == len(examples)
        if split == "test":
            assert all(e.label is None for e in examples)
        elif task == "stsb":
            scores = [e.label for e in examples]
            assert all(isinstance(s, float) and 0.0 <= s <= 5.0 for s in scores)
            assert len(set(scores)) > 10
        else:
            labels = Counter(e.label for e in examples)
            assert set(labels) == set(label_list(task)), labels


def test_cola_headerless_columns_are_assigned_right():
    # The CoLA "original label" column marks (*, ?*, ??) the unacceptable, label-0 sentences.
    from keras_electra.data.readers.table import read_rows

    for split in ("train", "dev"):
        columns = ("source", "label", "original_label", "sentence")
        _, rows = read_rows(GLUE / "CoLA" / f"{split}.tsv", "tsv", columns)
        examples = read_glue("cola", GLUE / "CoLA", split)
        assert [e.text_a for e in examples] == [row["sentence"] for _, row in rows]
        marks = Counter((e.label, bool(row["original_label"].strip())) for e, (_, row) in zip(examples, rows))
        assert marks[("1", True)] == 0
        assert marks[("0", False)] <= 0.01 * marks[("0", True)]


def test_glue_reads_quotes_literally():
    # GLUE TSVs are read with quoting disabled: an opening quote stays part of the sentence.
    examples = read_glue("mrpc", GLUE / "MRPC", "dev")
    raw = (GLUE / "MRPC" / "dev.tsv").read_text(encoding="utf-8-sig").split("\n")[1:]
    quoted = [e for e, line in zip(examples, raw) if line.split("\t")[4].startswith('"')]
    assert quoted and all(e.text_b.startswith('"') for e in quoted)


def test_mrpc_train_and_dev_are_the_msr_training_file():
    # SOURCES.md: MRPC train+dev = msr_paraphrase_train.txt; read it with the generic table reader.
    msr = read_table(GLUE / "MRPC" / "msr_paraphrase_train.txt", ["#1 String", "#2 String"], "Quality", format="tsv")
    assert len(msr) == doc("glue/MRPC/msr_paraphrase_train.txt", "rows")
    glue = read_glue("mrpc", GLUE, "train") + read_glue("mrpc", GLUE, "dev")
    key = lambda e: (e.text_a, e.text_b, e.label)
    assert Counter(map(key, glue)) == Counter(map(key, msr))


def test_glue_generic_spec_and_errors(tmp_path):
    spec = GlueSpec("mytask", "premise", "hypothesis", "label", ("yes", "no"), guid="id")
    path = tmp_path / "train.tsv"
    path.write_text('id\tpremise\thypothesis\tlabel\n7\t"a quote\tb\tyes\n8\tc\td\tno\n', encoding="utf-8")
    examples = read_glue(spec, tmp_path, "train")
    assert [(e.guid, e.text_a, e.text_b, e.label) for e in examples] == [
        ("train-7", '"a quote', "b", "yes"),
        ("train-8", "c", "d", "no"),
    ]
    path.write_text("id\tpremise\thypothesis\tlabel\n7\ta\tb\tmaybe\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.tsv:2: unknown label 'maybe'"):
        read_glue(spec, tmp_path, "train")
    path.write_text("id\tpremise\thypothesis\tlabel\n7\ta\tb\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"train\.tsv:2: malformed row: 3 fields, expected 4"):
        read_glue(spec, tmp_path, "train")
    with pytest.raises(DataError, match="missing column 'question'"):
        read_glue("qnli", GLUE / "SST-2" / "dev.tsv", "dev")
    with pytest.raises(DataError, match="missing label column 'label'"):
        read_glue("sst2", GLUE / "SST-2" / "test.tsv", "dev")
    with pytest.raises(DataError, match=r"QNLI/train\.tsv: file not found"):
        read_glue("qnli", GLUE, "train")
    with pytest.raises(DataError, match="unknown GLUE task 'nope'"):
        read_glue("nope", GLUE, "train")
    with pytest.raises(DataError, match="unknown split 'valid'"):
        read_glue("sst2", GLUE, "valid")


# ----------------------------------------------------------------------------- CoNLL-2003

CONLL_PAIRS = [
    ("train", "train.txt", "eng.train"),
    ("dev", "valid.txt", "eng.testa"),
    ("test", "test.txt", "eng.testb"),
]


@pytest.mark.parametrize("split,iob2_name,iob1_name", CONLL_PAIRS)
def test_conll_iob1_and_iob2_files_agree(split, iob2_name, iob1_name):
    root = SHARED_DATA / "conll2003"
    iob2 = read_conll(root / "iob2" / iob2_name, labels=CONLL2003_TAGS)
    iob1 = read_conll(root / "original_iob1" / iob1_name, labels=CONLL2003_TAGS)
    relative = f"conll2003/iob2/{iob2_name}"
    assert len(iob2) == len(iob1) == doc(relative, "sentences")
    assert sum(len(e.words) for e in iob2) == doc(relative, "tokens")
    assert [e.words for e in iob1] == [e.words for e in iob2]
    assert [e.tags for e in iob1] == [e.tags for e in iob2]
    assert not any(w == "-DOCSTART-" for e in iob2 for w in e.words)
    # The schemes are told apart from the tags themselves.
    raw1 = read_conll(root / "original_iob1" / iob1_name, scheme="IOB2")
    assert detect_scheme([e.tags for e in raw1]) == "IOB1"
    assert detect_scheme([e.tags for e in iob2]) == "IOB2"
    assert [iob1_to_iob2(e.tags) for e in raw1] == [e.tags for e in iob2]


def test_iob1_to_iob2_cases():
    assert iob1_to_iob2(["I-PER", "I-PER", "B-PER", "O", "I-LOC", "I-ORG"]) == [
        "B-PER",
        "I-PER",
        "B-PER",
        "O",
        "B-LOC",
        "B-ORG",
    ]


def test_conll_errors(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("EU NNP B-NP B-ORG\nrejects VBZ B-VP\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.txt:2: malformed line: 3 columns, expected 4"):
        read_conll(path)
    path.write_text("EU NNP B-NP ORG\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"bad\.txt:1: malformed tag 'ORG'"):
        read_conll(path)
    path.write_text("EU NNP B-NP B-XYZ\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"unknown label 'B-XYZ'"):
        read_conll(path, labels=CONLL2003_TAGS)
    path.write_text("-DOCSTART- -X- O O\n\n", encoding="utf-8")
    with pytest.raises(DataError, match="no examples"):
        read_conll(path)


# ----------------------------------------------------------------------------- SQuAD format


def _raw_squad(path):
    return json.loads(path.read_text(encoding="utf-8"))["data"]


@pytest.mark.parametrize("language", ["en", "zh"])
def test_xquad(language):
    relative = f"xquad/xquad.{language}.json"
    examples = read_squad(SHARED_DATA / relative)
    assert len(examples) == doc(relative, "questions")
    assert len({e.title for e in examples}) == doc(relative, "articles")
    assert len({(e.title, e.context) for e in examples}) == doc(relative, "paragraphs")
    for e in examples:
        assert e.answers and not e.is_impossible and not e.unlocated
        assert all(e.context[a.start : a.end] == a.text for a in e.answers)


def test_xquad_languages_share_question_ids():
    en = read_squad(SHARED_DATA / "xquad/xquad.en.json")
    zh = read_squad(SHARED_DATA / "xquad/xquad.zh.json")
    assert [e.guid for e in en] == [e.guid for e in zh]


def test_split_squad_by_article():
    examples = read_squad(SHARED_DATA / "xquad/xquad.en.json")
    train, dev = split_squad(examples, 0.2, seed=0)
    n_articles = len({e.title for e in examples})
    assert len(train) + len(dev) == len(examples)
    assert {e.title for e in train}.isdisjoint({e.title for e in dev})
    assert {e.context for e in train}.isdisjoint({e.context for e in dev})
    assert len({e.title for e in dev}) == round(0.2 * n_articles)
    assert split_squad(examples, 0.2, seed=0) == (train, dev)  # deterministic
    assert split_squad(examples, 0.2, seed=1)[1] != dev
    # The registry serves the documented split.
    assert read_dataset("xquad", SHARED_DATA, "dev") == dev
    assert read_dataset("xquad", SHARED_DATA, "train") == train
    with pytest.raises(DataError, match="dev_fraction"):
        split_squad(examples, 1.5)


def test_cmrc2018_misaligned_answers():
    path = SHARED_DATA / "cmrc2018/cmrc2018_dev.json"
    raw = _raw_squad(path)
    first_bad = None
    n_answers = n_absent = 0
    for article in raw:
        for paragraph in article["paragraphs"]:
            context = paragraph["context"]
            for qa in paragraph["qas"]:
                for answer in qa["answers"]:
                    n_answers += 1
                    start, text = answer["answer_start"], answer["text"]
                    if context[start : start + len(text)] != text and first_bad is None:
                        first_bad = qa["id"]
                    n_absent += text not in context
    with pytest.raises(DataError, match=re.escape(f"question {first_bad!r}")):
        read_squad(path)
    examples = read_squad(path, misaligned="fix")
    assert len(examples) == doc("cmrc2018/cmrc2018_dev.json", "questions")
    assert sum(len(e.answers) + len(e.unlocated) for e in examples) == n_answers
    assert sum(len(e.unlocated) for e in examples) == n_absent > 0
    assert all(e.context[a.start : a.end] == a.text for e in examples for a in e.answers)
    assert all(e.answers for e in examples)  # every question keeps at least one located span
    trial = read_dataset("cmrc2018", SHARED_DATA, "trial")
    assert len(trial) == doc("cmrc2018/cmrc2018_trial.json", "questions")


def test_squad_v2_and_errors(tmp_path):
    document = {
        "version": "v2.0",
        "data": [
            {
                "title": "T",
                "paragraphs": [
                    {
                        "context": "The cat sat on the mat.",
                        "qas": [
                            {"id": "q1", "question": "Who sat?", "answers": [{"text": "The cat", "answer_start": 0}]},
                            {
                                "id": "q2",
                                "question": "Who stood?",
                                "answers": [],
                                "plausible_answers": [{"text": "cat", "answer_start": 4}],
                                "is_impossible": True,
                            },
                        ],
                    }
                ],
            }
        ],
    }
    path = tmp_path / "dev-v2.0.json"
    path.write_text(json.dumps(document), encoding="utf-8")
    q1, q2 = read_squad(path)
    assert q1 == QAExample("q1", "Who sat?", "The cat sat on the mat.", [Answer("The cat", 0)], False, "T")
    assert q2.is_impossible and q2.answers == [] and q2.answer_texts == []
    assert read_dataset("squad", tmp_path, "dev") == [q1, q2]

    document["data"][0]["paragraphs"][0]["qas"][0]["answers"][0]["answer_start"] = 3
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DataError, match=r"question 'q1': answer 'The cat' is not at offset 3"):
        read_squad(path)
    assert read_squad(path, misaligned="fix")[0].answers == [Answer("The cat", 0)]
    document["data"][0]["paragraphs"][0]["qas"][1]["id"] = "q1"
    path.write_text(json.dumps(document), encoding="utf-8")
    with pytest.raises(DataError, match="duplicate question id 'q1'"):
        read_squad(path, misaligned="fix")
    path.write_text('{"data": [', encoding="utf-8")
    with pytest.raises(DataError, match="invalid JSON at line 1"):
        read_squad(path)
    path.write_text('{"version": 1}', encoding="utf-8")
    with pytest.raises(DataError, match="not SQuAD-format"):
        read_squad(path)


# ----------------------------------------------------------------------------- SemEval-2010 Task 8


def _raw_semeval_entities(path):
    pattern = re.compile(r'^(\d+)\t".*<e1>(.*)</e1>.*<e2>(.*)</e2>.*"\r?$', re.M)
    return {m.group(1): (m.group(2), m.group(3)) for m in pattern.finditer(path.read_text(encoding="utf-8"))}


@pytest.mark.parametrize("name", ["TRAIN_FILE.TXT", "TEST_FILE_FULL.TXT"])
def test_semeval(name):
    path = SHARED_DATA / "semeval2010_task8" / name
    examples = read_semeval(path)
    assert len(examples) == doc(f"semeval2010_task8/{name}", "examples")
    assert all(e.label in SEMEVAL_LABELS for e in examples)
    assert [int(e.guid) for e in examples] == list(range(int(examples[0].guid), int(examples[0].guid) + len(examples)))
    entities = _raw_semeval_entities(path)
    for e in examples:
        assert (e.e1_text, e.e2_text) == entities[e.guid]
        assert "<e1>" not in e.text and "</e2>" not in e.text
        # Rendering with the original markup and parsing it back is lossless.
        marked = e.marked_text(("<e1>", "</e1>", "<e2>", "</e2>"), space=False)
        assert parse_entity_markup(marked) == (e.text, e.e1, e.e2)


def test_semeval_train_has_all_19_labels_and_test_matches_keys():
    root = SHARED_DATA / "semeval2010_task8"
    train = read_semeval(root / "TRAIN_FILE.TXT")
    assert set(e.label for e in train) == set(SEMEVAL_LABELS) == set(label_list("semeval"))
    assert len(SEMEVAL_LABELS) == 19
    test = read_semeval(root / "TEST_FILE_FULL.TXT")
    keys = read_semeval_keys(root / "TEST_FILE_KEY.TXT")
    assert len(keys) == len(test)
    assert all(keys[e.guid] == undirected(e.label) for e in test)


def test_relation_markers():
    e = RelationExample("1", "the kitchen of the house", (4, 11), (19, 24), "Component-Whole(e1,e2)")
    assert e.marked_text() == "the [E1] kitchen [/E1] of the [E2] house [/E2]"
    assert e.marked_text(("<a>", "</a>", "<b>", "</b>"), space=False) == "the <a>kitchen</a> of the <b>house</b>"
    # Adjacent entities stay well nested.
    assert mark_entities("ab", (0, 1), (1, 2), space=False) == "[E1]a[/E1][E2]b[/E2]"


def test_semeval_errors(tmp_path):
    path = tmp_path / "s.txt"
    path.write_text('1\t"The <e1>cat</e1> sat on the <e2>mat."\r\nOther\r\nComment:\r\n\r\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.txt:1: missing entity tag </e2>"):
        read_semeval(path)
    path.write_text('1\t"The <e1>cat</e1> sat on the <e2>mat</e2>."\r\nSits-On(e1,e2)\r\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.txt:2: unknown label 'Sits-On\(e1,e2\)'"):
        read_semeval(path)
    path.write_text('1\t"The <e1>cat</e1> sat on the <e2>mat</e2>."\nOther\nOther\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"s\.txt:3: malformed block"):
        read_semeval(path)
    # The unlabelled layout (TEST_FILE.txt): sentence lines only.
    path.write_text('8001\t"a <e1>b</e1> c <e2>d</e2>"\n8002\t"<e2>x</e2> and <e1>y</e1>"\n', encoding="utf-8")
    first, second = read_semeval(path)
    assert first.label is None and (first.e1_text, first.e2_text) == ("b", "d")
    assert (second.e1_text, second.e2_text) == ("y", "x")


# ----------------------------------------------------------------------------- C3


@pytest.mark.parametrize("name", ["c3-m-dev", "c3-d-dev", "c3-m-test", "c3-d-test"])
def test_c3(name):
    relative = f"c3/{name}.json"
    raw = json.loads((SHARED_DATA / relative).read_text(encoding="utf-8"))
    examples = read_c3(SHARED_DATA / relative)
    assert len(raw) == doc(relative, "documents")
    assert len(examples) == doc(relative, "questions")
    assert len({e.guid for e in examples}) == len(examples)
    answers = [qa["answer"] for document in raw for qa in document[1]]
    assert [e.choices[e.label] for e in examples] == answers
    assert all(2 <= len(e.choices) <= 4 for e in examples)
    contexts = ["\n".join(document[0]) for document in raw for _ in document[1]]
    assert [e.context for e in examples] == contexts


def test_c3_registry_joins_m_and_d(tmp_path):
    both = read_dataset("c3", SHARED_DATA / "c3", "dev")
    assert len(both) == doc("c3/c3-m-dev.json", "questions") + doc("c3/c3-d-dev.json", "questions")
    path = tmp_path / "c3-m-dev.json"
    path.write_text(json.dumps([[["text"], [{"question": "q", "choice": ["a", "b"], "answer": "c"}], "1-1"]]))
    with pytest.raises(DataError, match="question '1-1-0': answer 'c' is not one of its choices"):
        read_c3(path)


# ----------------------------------------------------------------------------- ChnSentiCorp, CLUENER


@pytest.mark.parametrize("split", ["train", "dev", "test"])
def test_chnsenticorp(split):
    examples = read_chnsenticorp(SHARED_DATA / "chnsenticorp" / f"{split}.tsv")
    assert len(examples) == doc(f"chnsenticorp/{split}.tsv", "rows")
    assert Counter(e.label for e in examples).keys() == {"0", "1"}
    assert all(e.text_a and e.text_b is None for e in examples)


def _raw_cluener_spans(path):
    spans = []
    for line in path.read_text(encoding="utf-8").splitlines():
        record = json.loads(line)
        spans.append(
            sorted(
                (kind, start, end)
                for kind, entities in record.get("label", {}).items()
                for offsets in entities.values()
                for start, end in offsets
            )
        )
    return spans


@pytest.mark.parametrize("split", ["train", "dev"])
def test_cluener_labelled(split):
    relative = f"cluener2020/{split}.json"
    examples = read_cluener(SHARED_DATA / relative)
    raw = _raw_cluener_spans(SHARED_DATA / relative)
    assert len(examples) == doc(relative, "records")
    assert sum(map(len, raw)) == doc(relative, "entity")
    assert all(len(e.words) == len(e.tags) for e in examples)
    assert all(len(w) == 1 for e in examples for w in e.words)
    assert all(t in CLUENER_TAGS for e in examples for t in e.tags)
    # Decoding the IOB2 tags gives back the annotated spans, except nested ones.
    nested_lines = []
    for index, (example, spans) in enumerate(zip(examples, raw)):
        decoded = sorted(get_entities(example.tags))
        if decoded != spans:
            nested_lines.append(index + 1)
            assert set(decoded) < set(spans)
            assert all(any(s <= ds and de <= e for _, s, e in decoded) for _, ds, de in set(spans) - set(decoded))
    if split == "dev":
        assert not nested_lines
    else:
        assert len(nested_lines) == 1
        with pytest.raises(DataError, match=rf"train\.json:{nested_lines[0]}: entity .* overlaps another entity"):
            read_cluener(SHARED_DATA / relative, overlap="error")


def test_cluener_test_is_unlabelled_and_errors(tmp_path):
    examples = read_dataset("cluener", SHARED_DATA, "test")
    assert len(examples) == doc("cluener2020/test.json", "records")
    assert all(e.tags is None for e in examples)
    path = tmp_path / "x.json"
    path.write_text('{"text": "北京欢迎你", "label": {"address": {"北京": [[0, 2]]}}}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.json:1: span \[0, 2\] does not match entity '北京'"):
        read_cluener(path)
    path.write_text('{"text": "北京欢迎你", "label": {"city": {"北京": [[0, 1]]}}}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.json:1: unknown entity type 'city'"):
        read_cluener(path)
    path.write_text('{"text": "北京欢迎你", "label": {"address": {"北京": [[0, 1]]}}}\n{"text": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"x\.json:2: invalid JSON"):
        read_cluener(path)


# ----------------------------------------------------------------------------- generic tables


def test_read_table_formats(tmp_path):
    csv_path = tmp_path / "d.csv"
    csv_path.write_text('text,other,score\n"hello, ""world""",x,1.5\n"two\nlines",y,2\n', encoding="utf-8")
    examples = read_table(csv_path, ["text", "other"], "score", label_type=float)
    assert [(e.text_a, e.text_b, e.label) for e in examples] == [
        ('hello, "world"', "x", 1.5),
        ("two\nlines", "y", 2.0),
    ]
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"id": "a", "s": "good", "y": 1}\n\n{"id": "b", "s": "bad", "y": 0}\n', encoding="utf-8")
    examples = read_table(jsonl, ["s"], "y", labels=["0", "1"], guid_column="id")
    assert [(e.guid, e.text_a, e.label) for e in examples] == [("a", "good", "1"), ("b", "bad", "0")]
    tsv = tmp_path / "d.tsv"
    tsv.write_text('s\n"unbalanced quote\nplain\n', encoding="utf-8")
    assert [e.text_a for e in read_table(tsv, ["s"], None)] == ['"unbalanced quote', "plain"]
    assert all(e.label is None for e in read_table(tsv, ["s"], None))


def test_read_table_errors(tmp_path):
    tsv = tmp_path / "d.tsv"
    tsv.write_text("s\tlabel\na\t1\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.tsv: missing column 'text'"):
        read_table(tsv, ["text"], "label")
    with pytest.raises(DataError, match=r"d\.tsv:2: unknown label '1'"):
        read_table(tsv, ["s"], "label", labels=["pos", "neg"])
    with pytest.raises(DataError, match=r"d\.tsv:2: label 'x' is not a number"):
        tsv.write_text("s\tlabel\na\tx\n", encoding="utf-8")
        read_table(tsv, ["s"], "label", label_type=float)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text('{"s": "a"}\n', encoding="utf-8")
    with pytest.raises(DataError, match=r"d\.jsonl:1: missing column 'label'"):
        read_table(jsonl, ["s"], "label")
    empty = tmp_path / "empty.tsv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(DataError, match=r"empty\.tsv: empty file"):
        read_table(empty, ["s"], None)
    header_only = tmp_path / "h.tsv"
    header_only.write_text("s\tlabel\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"h\.tsv: no examples found"):
        read_table(header_only, ["s"], "label")
    with pytest.raises(DataError, match=r"nothere\.tsv: file not found"):
        read_table(tmp_path / "nothere.tsv", ["s"], None)
    with pytest.raises(DataError, match="cannot tell the format"):
        read_table(tmp_path / "d.parquet", ["s"], None)


# ----------------------------------------------------------------------------- registry


def test_registry_reads_every_shared_split():
    available = {
        "cola": ["train", "dev", "test"],
        "sst2": ["dev", "test"],
        "mrpc": ["train", "dev", "test"],
        "stsb": ["train", "dev", "test"],
        "qnli": ["dev"],
        "conll2003": ["train", "dev", "test"],
        "xquad": ["train", "dev", "test"],
        "cmrc2018": ["dev", "trial"],
        "semeval": ["train", "test"],
        "c3": ["dev", "test"],
        "chnsenticorp": ["train", "dev", "test"],
        "cluener": ["dev", "test"],
    }
    for name, splits in available.items():
        info = READERS[name]
        for split in splits:
            files = dataset_files(name, SHARED_DATA, split)
            examples = read_dataset(name, SHARED_DATA, split)
            assert examples, (name, split)
            expected_type = {"text": "TextExample", "token": "TokenExample", "qa": "QAExample"}.get(info.kind)
            if expected_type:
                assert type(examples[0]).__name__ == expected_type
            if name not in ("xquad", "c3"):
                assert examples == info.read(files[0], split)


def test_registry_paths_and_labels():
    # The dataset folder, its parent and the file itself all work.
    by_root = read_dataset("sst2", SHARED_DATA, "dev")
    assert read_dataset("SST-2", GLUE, "dev") == by_root
    assert read_dataset("sst2", GLUE / "SST-2", "dev") == by_root
    assert read_dataset("sst2", GLUE / "SST-2" / "dev.tsv", "dev") == by_root
    assert dataset_files("conll2003", SHARED_DATA / "conll2003" / "original_iob1", "test")[0].name == "eng.testb"
    assert dataset_files("conll2003", SHARED_DATA, "test")[0].name == "test.txt"
    assert label_list("conll2003") == list(CONLL2003_TAGS)
    assert label_list("cola") == ["0", "1"] and label_list("qnli") == ["entailment", "not_entailment"]
    assert label_list("stsb") is None and label_list("xquad") is None and label_list("c3") is None
    assert len(label_list("cluener")) == 21 and label_list("semeval")[0] == "Other"


def test_registry_errors(tmp_path):
    with pytest.raises(DataError, match=r"unknown dataset 'imdb' \(known: cola, sst2, .*cluener, ner, choice\)"):
        read_dataset("imdb", SHARED_DATA, "train")
    with pytest.raises(DataError, match=r"unknown split 'valid' for dataset semeval \(expected one of train, test\)"):
        read_dataset("semeval", SHARED_DATA, "valid")
    with pytest.raises(DataError, match=r"no qnli train file found \(looked for train\.tsv\)"):
        read_dataset("qnli", SHARED_DATA, "train")
    with pytest.raises(DataError, match="missing: no such file or directory"):
        read_dataset("cola", tmp_path / "missing", "train")
    with pytest.raises(ElectraError, match="unknown dataset"):
        label_list("imdb")
