"""The bugs a new user hit (issue 14, section 1), each on real data: a two-column MRPC table, GLUE files in
the official layouts, Weibo-style NER, generic multiple choice. Each test failed before its fix."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from keras_electra.cli import main
from tests.conftest import GLUE, SHARED_DATA, VOCAB_UNCASED

MRPC_COLUMNS = ["--text-columns", "#1 String", "#2 String", "--label-column", "Quality"]
TINY = ["--init", "random", "--preset", "tiny", "--config", "num_layers=1", "--vocab", str(VOCAB_UNCASED),
        "--epochs", "1", "--batch-size", "16", "--jit", "off", "--quiet"]


def _finetune(*args: str) -> int:
    return main(["finetune", *args, *TINY])


@pytest.fixture(scope="module")
def mrpc_table(tmp_path_factory) -> Path:
    """A two-column table model trained from ONE file, given by a path relative to the working directory."""
    output = tmp_path_factory.mktemp("newuser") / "mrpc-table"
    cwd = os.getcwd()
    os.chdir(GLUE)
    try:
        rc = _finetune("--task", "table", "--data", "MRPC/train.tsv", *MRPC_COLUMNS, "--max-train-examples", "64",
                       "--max-eval-examples", "32", "--seq-length", "32", "--output", str(output))
    finally:
        os.chdir(cwd)
    assert rc == 0
    return output


# ----------------------------------------------------------------- bug 1: pair tables export as pairs
def test_bug01_two_column_table_exports_as_a_pair_model(mrpc_table, tmp_path):
    import tensorflow as tf

    from keras_electra.data.readers import read_glue
    from keras_electra.export.common import load_for_export
    from keras_electra.export.saved_model import export_saved_model

    task = json.loads((mrpc_table / "task.json").read_text())
    assert task["text_columns"] == ["#1 String", "#2 String"] and task["label_column"] == "Quality"
    model, info = load_for_export(mrpc_table)
    assert info.pair and info.text_inputs == ("text_a", "text_b")
    pairs = read_glue("mrpc", GLUE / "MRPC", "dev")[:8]
    a, b = tf.constant([e.text_a for e in pairs]), tf.constant([e.text_b for e in pairs])
    expected = np.asarray(model.predict(model.preprocessor((a, b)), verbose=0))
    loaded = tf.saved_model.load(str(export_saved_model(mrpc_table, tmp_path / "serving")))
    serving = loaded.signatures["serving_default"]
    assert sorted(serving.structured_input_signature[1]) == ["text_a", "text_b"]
    np.testing.assert_allclose(serving(text_a=a, text_b=b)["logits"].numpy(), expected, atol=1e-4)


# ------------------------------------------------------- bug 2: --data FILE never scores on training rows
def test_bug02_one_file_holds_out_a_seeded_dev_split(mrpc_table):
    from keras_electra.tasks.recipe import FinetuneConfig
    from keras_electra.tasks.registry import get_task
    from keras_electra.tasks.task_data import load_task_data

    results = json.loads((mrpc_table / "results.json").read_text())
    assert "held out 367 of 3668" in results["dev_source"] and "seed 0" in results["dev_source"]
    config = FinetuneConfig(task="table", data=str(GLUE / "MRPC" / "train.tsv"), init="random", output="-",
                            text_columns=["#1 String", "#2 String"], label_column="Quality")
    data = load_task_data(config, get_task("table"))
    train, dev = {e.guid for e in data.train}, {e.guid for e in data.dev}
    assert (len(train), len(dev)) == (3301, 367) and not train & dev
    again = load_task_data(config, get_task("table"))
    assert [e.guid for e in again.dev] == [e.guid for e in data.dev]  # the same seed, the same split
    # A GLUE training file given alone is held out too; XQuAD's own by-article split of one file is kept.
    sst2 = load_task_data(FinetuneConfig(task="sst2", data=str(GLUE / "SST-2" / "train.tsv"), init="random",
                                         output="-"), get_task("sst2"))
    assert sst2.dev_source and len(sst2.dev) == 6735 and not {e.guid for e in sst2.dev} & {e.guid for e in sst2.train}
    xquad = load_task_data(FinetuneConfig(task="xquad", data=str(SHARED_DATA / "xquad"), init="random", output="-"),
                           get_task("xquad"))
    assert xquad.dev_source is None and (len(xquad.train), len(xquad.dev)) == (885, 305)


# --------------------------------------------------- bug 3: int8 calibration from any working directory
def test_bug03_calibration_reads_the_recorded_files_and_columns_from_elsewhere(mrpc_table, tmp_path, monkeypatch):
    from keras_electra.export.cli import calibration_inputs

    results = json.loads((mrpc_table / "results.json").read_text())
    assert Path(results["data_files"]["train"][0]).is_absolute()
    monkeypatch.chdir(tmp_path)
    recorded = calibration_inputs(mrpc_table, None, 8)
    from_dir = calibration_inputs(mrpc_table, str(GLUE / "MRPC"), 8)  # --calibration-data DIR: same columns
    for inputs in (recorded, from_dir):
        assert inputs["token_ids"].shape == (8, 32)
        assert (inputs["segment_ids"] == 1).any(axis=1).all()  # every row packed as a sentence pair


# ---------------------------------------------------------------- bug 4: evaluate keeps the columns
def test_bug04_evaluate_reuses_the_training_columns(mrpc_table, capsys):
    from keras_electra.data.readers import read_glue

    dev = GLUE / "MRPC" / "dev.tsv"
    assert main(["evaluate", "--model", str(mrpc_table), "--data", str(dev), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["num_examples"] == len(read_glue("mrpc", dev, "dev")) == 408
    # An override of one column keeps the other from training.
    assert main(["evaluate", "--model", str(mrpc_table), "--data", str(dev), "--label-column", "Quality",
                 "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scores"] == result["scores"]


# ------------------------------------------------------ bug 7: a pair model refuses one sentence
def test_bug07_pair_model_refuses_a_single_sentence_in_every_format(mrpc_table, tmp_path, capsys):
    from keras_electra.export.onnx import export_onnx
    from keras_electra.export.saved_model import export_saved_model
    from keras_electra.export.tflite import export_tflite

    saved = export_saved_model(mrpc_table, tmp_path / "serving")
    formats = [mrpc_table, saved, export_tflite(saved, tmp_path / "m.tflite"), export_onnx(saved, tmp_path / "m.onnx")]
    for path in formats:
        assert main(["predict", "--model", str(path), "one sentence alone"]) == 2, path
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and "sentence pairs" in err and "text 1 is one sentence" in err
        assert main(["predict", "--model", str(path), "--json", "the cat sat ||| a cat was sitting"]) == 0
        assert json.loads(capsys.readouterr().out)[0]["label"] in ("0", "1")


# ----------------------------------------------------------- bug 9: predict on raw strings
def test_bug09_task_predict_takes_raw_text(mrpc_table):
    import keras

    model = keras.saving.load_model(mrpc_table / "model.keras", compile=False)
    a, b = "The cat sat on the mat.", "A cat was sitting on the mat."
    expected = model.predict(model.preprocessor((np.array([a]), np.array([b]))), verbose=0)
    np.testing.assert_allclose(model.predict(([a], [b]), verbose=0), expected, atol=1e-5)
    np.testing.assert_allclose(model.predict((a, b), verbose=0), expected, atol=1e-5)
    assert model.predict(["just one text", "and another"], verbose=0).shape == (2, 2)


# ------------------------------------------------- bug 11: no empty outputs, no silent overwrite
def test_bug11_an_existing_output_needs_overwrite(mrpc_table, capsys):
    before = (mrpc_table / "model.keras").stat().st_mtime_ns
    args = ["--task", "table", "--data", str(GLUE / "MRPC" / "dev.tsv"), *MRPC_COLUMNS, "--max-train-examples", "32",
            "--seq-length", "32", "--output", str(mrpc_table)]
    assert _finetune(*args) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "already exists" in err and "--overwrite" in err
    assert (mrpc_table / "model.keras").stat().st_mtime_ns == before


def test_bug11_a_failed_run_leaves_no_output_directory(tmp_path, capsys):
    output = tmp_path / "failed"
    # Fails after the output directory is made: the sequence is longer than the model's positions.
    assert _finetune("--task", "sst2", "--data", str(GLUE / "SST-2"), "--max-train-examples", "32",
                     "--seq-length", "128", "--config", "max_position_embeddings=64", "--output", str(output)) == 2
    assert "exceeds" in capsys.readouterr().err
    assert not output.exists()


# ------------------------------------------------------------------- bug 8: a wrong path says so
@pytest.mark.parametrize("task", ["table", "sst2", "ner"])
def test_bug08_a_missing_data_path_says_it_does_not_exist(task, tmp_path, capsys):
    missing = GLUE / "RTEE"
    assert _finetune("--task", task, "--data", str(missing), "--output", str(tmp_path / "o")) == 2
    err = capsys.readouterr().err
    assert f"{missing}: no such file or directory" in err and "suffix" not in err


# -------------------------------------------- bug 10: GLUE RTE, WNLI, QQP, MNLI in their official layouts
# The shared data has no RTE/WNLI/QQP/MNLI, so the test writes files in the exact layouts of the GLUE
# download (headers, column order, label values, MNLI's dev_matched/dev_mismatched names), filled with
# real MRPC sentence pairs.
def _mrpc_pairs(split: str, n: int):
    from keras_electra.data.readers import read_glue

    return read_glue("mrpc", GLUE / "MRPC", split)[:n]


def _write_glue(root: Path, task: str, n_train: int = 48, n_dev: int = 24) -> Path:
    folder = {"rte": "RTE", "wnli": "WNLI", "qqp": "QQP", "mnli": "MNLI"}[task]
    directory = root / folder
    directory.mkdir(parents=True)
    nli = ("contradiction", "entailment", "neutral")

    def rows(split: str, n: int, labelled: bool = True):
        out = []
        for i, e in enumerate(_mrpc_pairs(split, n)):
            if task == "rte":
                label = "entailment" if e.label == "1" else "not_entailment"
                out.append([str(i), e.text_a, e.text_b, *([label] if labelled else [])])
            elif task == "wnli":
                out.append([str(i), e.text_a, e.text_b, *([e.label] if labelled else [])])
            elif task == "qqp":
                ids = [str(2 * i + 1), str(2 * i + 2)] if labelled else []
                out.append([str(i), *ids, e.text_a, e.text_b, *([e.label] if labelled else [])])
            else:
                parses = ["(ROOT)"] * 4
                extra = [nli[i % 3]] * (1 if split == "train" else 5) if labelled else []
                out.append([str(i), str(1000 + i), f"{1000 + i}n", "fiction", *parses, e.text_a, e.text_b, *extra,
                            *([nli[i % 3]] if labelled else [])])
        return out

    if task in ("rte", "wnli"):
        header = ["index", "sentence1", "sentence2", "label"]
    elif task == "qqp":
        header = ["id", "qid1", "qid2", "question1", "question2", "is_duplicate"]
    else:
        base = ["index", "promptID", "pairID", "genre", "sentence1_binary_parse", "sentence2_binary_parse",
                "sentence1_parse", "sentence2_parse", "sentence1", "sentence2"]
        header = [*base, "label1", "gold_label"]
    files = {"train.tsv": (header, rows("train", n_train))}
    if task == "mnli":
        dev_header = [*base, "label1", "label2", "label3", "label4", "label5", "gold_label"]
        files["dev_matched.tsv"] = (dev_header, rows("dev", n_dev))
        files["dev_mismatched.tsv"] = (dev_header, rows("dev", n_dev)[::-1])
        files["test_matched.tsv"] = (base, rows("test", 4, labelled=False))
        files["test_mismatched.tsv"] = (base, rows("test", 4, labelled=False))
    else:
        files["dev.tsv"] = (header, rows("dev", n_dev))
        test_header = {"rte": header[:3], "wnli": header[:3], "qqp": ["id", "question1", "question2"]}[task]
        files["test.tsv"] = (test_header, rows("test", 4, labelled=False))
    for name, (head, body) in files.items():
        (directory / name).write_text("\n".join("\t".join(r) for r in [head, *body]) + "\n", encoding="utf-8")
    return directory


@pytest.mark.parametrize("task,labels,metrics", [
    ("rte", ["entailment", "not_entailment"], {"accuracy"}),
    ("wnli", ["0", "1"], {"accuracy"}),
    ("qqp", ["0", "1"], {"accuracy", "f1"}),
    ("mnli", ["contradiction", "entailment", "neutral"], {"accuracy"}),
    ("mnli-mm", ["contradiction", "entailment", "neutral"], {"accuracy"}),
])
def test_bug10_glue_task_names_read_the_official_layouts(task, labels, metrics, tmp_path):
    from keras_electra.tasks.registry import get_task, read_split

    _write_glue(tmp_path, task.split("-")[0])
    spec = get_task(task)
    train, files = read_split(spec, tmp_path, "train")
    dev, dev_files = read_split(spec, tmp_path, "dev")
    test, _ = read_split(spec, tmp_path, "test")
    assert spec.labels == labels and len(train) == 48 and len(dev) == 24 and len(test) == 4
    assert all(e.text_b for e in train) and {e.label for e in train} <= set(labels) and test[0].label is None
    assert dev_files[0].name == {"mnli": "dev_matched.tsv", "mnli-mm": "dev_mismatched.tsv"}.get(task, "dev.tsv")
    if task == "mnli-mm":
        assert [e.text_a for e in dev] == [e.text_a for e in read_split(get_task("mnli"), tmp_path, "dev")[0]][::-1]
    assert spec.epochs == (10 if task == "rte" else 3)

    class _Model:
        label_names = labels

    # The official metrics: accuracy (and F1 for QQP), through the classification runner.
    ids = np.array([labels.index(e.label) for e in dev])
    scores = spec.runner.score(spec.name, dev, {"scores": np.eye(len(labels))[ids]}, _Model())
    assert {k for k in scores if k != "score"} == metrics and scores["accuracy"] == 1.0


def test_bug10_rte_and_wnli_fine_tune_from_the_cli(tmp_path):
    for task in ("rte", "wnli"):
        _write_glue(tmp_path, task)
        output = tmp_path / f"{task}-model"
        assert _finetune("--task", task, "--data", str(tmp_path), "--seq-length", "32", "--output", str(output)) == 0
        results = json.loads((output / "results.json").read_text())
        assert results["task"] == task and results["num_examples"] == {"train": 48, "dev": 24}
        assert json.loads((output / "task.json").read_text())["task"] == task


# ------------------------------------------------------------- bug 5: NER with any tag set (Weibo)
def _weibo_file(path: Path, source: Path, n: int) -> list[list[tuple[str, str]]]:
    """Real CoNLL-2003 sentences in Weibo NER's layout: one character per line followed by its position in
    the word ("E0", "U1"), a TAB, and a Weibo-style tag (B-PER.NAM; MISC becomes PER.NOM), with a full-width
    space line between words tagged O as Weibo has."""
    from keras_electra.data.readers import read_conll

    kind = {"PER": "PER.NAM", "ORG": "ORG.NAM", "LOC": "LOC.NAM", "MISC": "PER.NOM"}
    sentences, lines = [], []
    for example in read_conll(source)[:n]:
        chars = []
        for w, word in enumerate(example.words):
            tag = example.tags[w]
            for c, char in enumerate(word):
                t = "O" if tag == "O" else f"{'B' if tag[0] == 'B' and c == 0 else 'I'}-{kind[tag[2:]]}"
                chars.append((char, t))
                lines.append(f"{char}{c}\t{t}")
            if w == 0:
                lines.append("\u30000\tO")
        sentences.append(chars)
        lines.append("")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return sentences


def test_bug05_weibo_style_ner_reads_its_layout_and_tags(tmp_path):
    from keras_electra.data.readers import read_conll

    expected = _weibo_file(tmp_path / "weiboNER_2nd_conll.dev", SHARED_DATA / "conll2003" / "iob2" / "valid.txt", 30)
    examples = read_conll(tmp_path / "weiboNER_2nd_conll.dev")
    assert [list(zip(e.words, e.tags)) for e in examples] == expected  # digits and full-width spaces dropped
    assert any(t.startswith("B-PER.NOM") for e in examples for t in e.tags)


def test_bug05_bioes_tags_become_iob2(tmp_path):
    from keras_electra.data.readers import read_conll

    (tmp_path / "train.bmes").write_text("张\tB-PER.NAM\n三\tE-PER.NAM\n在\tO\n京\tS-GPE.NAM\n大\tB-ORG.NOM\n"
                                         "学\tM-ORG.NOM\n校\tE-ORG.NOM\n", encoding="utf-8")
    tags = read_conll(tmp_path / "train.bmes")[0].tags
    assert tags == ["B-PER.NAM", "I-PER.NAM", "O", "B-GPE.NAM", "B-ORG.NOM", "I-ORG.NOM", "I-ORG.NOM"]


def test_bug05_ner_labels_come_from_the_data_or_from_labels(tmp_path):
    from keras_electra.tasks.recipe import FinetuneConfig
    from keras_electra.tasks.registry import detect_language, get_task, read_split
    from keras_electra.tasks.task_data import load_task_data

    iob2 = SHARED_DATA / "conll2003" / "iob2"
    _weibo_file(tmp_path / "weiboNER_2nd_conll.train", iob2 / "train.txt", 60)
    _weibo_file(tmp_path / "weiboNER_2nd_conll.dev", iob2 / "valid.txt", 20)
    config = FinetuneConfig(task="ner", data=str(tmp_path), init="random", output="-")
    data = load_task_data(config, get_task("ner"))
    assert data.labels[0] == "O" and {"B-PER.NOM", "I-PER.NOM", "B-ORG.NAM"} <= set(data.labels)
    assert data.files["dev"][0].endswith("weiboNER_2nd_conll.dev")
    # --labels is honoured, for conll2003 too (its fixed tag set no longer wins).
    given = ["O", "B-PER.NAM", "I-PER.NAM", "B-ORG.NAM", "I-ORG.NAM", "B-LOC.NAM", "I-LOC.NAM", "B-PER.NOM",
             "I-PER.NOM"]
    for task in ("ner", "conll2003"):
        config = FinetuneConfig(task=task, data=str(tmp_path / "weiboNER_2nd_conll.train"), init="random",
                                output="-", dev_split="train", labels=given)
        assert load_task_data(config, get_task(task)).labels == given
    cluener = read_split(get_task("cluener"), SHARED_DATA / "cluener2020", "dev")[0]
    assert detect_language(cluener) == "zh" and detect_language(data.train) == "en"


def test_bug05_weibo_style_ner_fine_tunes_from_the_cli(tmp_path, capsys):
    import keras

    iob2 = SHARED_DATA / "conll2003" / "iob2"
    data = tmp_path / "weibo"
    data.mkdir()
    _weibo_file(data / "weiboNER_2nd_conll.train", iob2 / "train.txt", 64)
    _weibo_file(data / "weiboNER_2nd_conll.dev", iob2 / "valid.txt", 16)
    output = tmp_path / "model"
    assert _finetune("--task", "ner", "--data", str(data), "--seq-length", "48", "--output", str(output)) == 0
    results = json.loads((output / "results.json").read_text())
    task = json.loads((output / "task.json").read_text())
    assert results["task"] == task["task"] == "ner" and task["language"] == "en"
    assert "B-ORG.NAM" in task["labels"] and "f1" in results["dev"]
    # bug 9 for a tagger: raw text straight into the loaded model.
    model = keras.saving.load_model(output / "model.keras", compile=False)
    assert model.predict(["EU rejects German call"], verbose=0).shape == (1, 48, len(task["labels"]))


# ------------------------------------------------------- bug 6: generic multiple choice (JSONL / CSV)
def _c3_questions(n: int):
    from keras_electra.data.readers import read_c3

    return read_c3(SHARED_DATA / "c3" / "c3-m-dev.json")[:n]


def test_bug06_multiple_choice_from_jsonl_and_csv(tmp_path):
    import csv

    from keras_electra.data.readers import read_choice_table

    examples = _c3_questions(40)
    with open(tmp_path / "train.jsonl", "w", encoding="utf-8") as f:
        for e in examples:
            f.write(json.dumps({"id": e.guid, "context": e.context, "question": e.question, "choices": e.choices,
                                "label": e.choices[e.label]}, ensure_ascii=False) + "\n")
    with open(tmp_path / "dev.csv", "w", encoding="utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["id", "context", "question", "choice0", "choice1", "choice2", "choice3", "label"])
        for e in examples:
            writer.writerow([e.guid, e.context, e.question, *(e.choices + [""] * 4)[:4], "ABCD"[e.label]])
    for name in ("train.jsonl", "dev.csv"):
        assert read_choice_table(tmp_path / name) == examples


def test_bug06_generic_multiple_choice_fine_tunes_from_the_cli(tmp_path):
    examples = _c3_questions(48)
    for split, rows in (("train", examples[:32]), ("dev", examples[32:])):
        with open(tmp_path / f"{split}.jsonl", "w", encoding="utf-8") as f:
            for e in rows:
                f.write(json.dumps({"context": e.context, "question": e.question, "choices": e.choices,
                                    "label": e.label}, ensure_ascii=False) + "\n")
    output = tmp_path / "model"
    vocab = SHARED_DATA / "vocab" / "bert_chinese_vocab.txt"
    assert main(["finetune", "--task", "multiple-choice", "--data", str(tmp_path), "--seq-length", "64",
                 "--output", str(output), *TINY, "--vocab", str(vocab)]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["task"] == "multiple-choice" and results["num_examples"] == {"train": 32, "dev": 16}
    assert results["config"]["task_options"]["num_choices"] == max(len(e.choices) for e in examples)
    assert json.loads((output / "task.json").read_text())["language"] == "zh"
