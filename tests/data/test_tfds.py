"""TensorFlow Datasets as a data source (issue 14, section 3).

This machine cannot download, so every dataset here is built locally with TFDS's own builders: the
registered `glue`, `conll2003` and `squad` builder classes, subclassed (unregistered) only to point
their split generators at real files from ../shared/data instead of the download URLs. They write real
TFRecord-backed splits into a temporary data_dir under the official names (glue/sst2/2.0.0, ...),
which the package then reads through the same `tfds.load` a Colab user calls.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from keras_electra.cli import main
from tests.conftest import GLUE, NOVELS, SHARED_DATA, VOCAB_UNCASED

TINY = ["--init", "random", "--preset", "tiny", "--config", "num_layers=1", "--vocab", str(VOCAB_UNCASED),
        "--epochs", "1", "--batch-size", "16", "--jit", "off", "--quiet", "--seq-length", "32"]


def _head(source: Path, target: Path, lines: int) -> Path:
    with open(source, encoding="utf-8-sig") as f:
        target.write_text("".join(next(f) for _ in range(lines)), encoding="utf-8")
    return target


def _conll_head(source: Path, target: Path, sentences: int) -> Path:
    text = source.read_text(encoding="utf-8")
    blocks = text.split("\n\n")
    target.write_text("\n\n".join(blocks[:sentences + 1]) + "\n\n", encoding="utf-8")
    return target


@pytest.fixture(scope="module")
def tfds_dir(tmp_path_factory) -> Path:
    import tensorflow_datasets as tfds
    from tensorflow_datasets.datasets.squad.squad_dataset_builder import Builder as Squad
    from tensorflow_datasets.text.conll2003.conll2003 import Conll2003
    from tensorflow_datasets.text.glue import Glue

    root = tmp_path_factory.mktemp("tfds")
    raw = root / "raw"
    raw.mkdir()
    sst2 = {"train": _head(GLUE / "SST-2" / "train.tsv", raw / "sst2-train.tsv", 201),
            "dev": _head(GLUE / "SST-2" / "dev.tsv", raw / "sst2-dev.tsv", 65)}
    conll = {s: _conll_head(SHARED_DATA / "conll2003" / "iob2" / f"{f}.txt", raw / f"conll-{f}.txt", n)
             for s, f, n in (("train", "train", 96), ("dev", "valid", 32))}
    xquad = json.loads((SHARED_DATA / "xquad" / "xquad.en.json").read_text(encoding="utf-8"))
    squad = {}
    for split, articles in (("train", xquad["data"][:2]), ("dev", xquad["data"][2:3])):
        squad[split] = raw / f"squad-{split}.json"
        squad[split].write_text(json.dumps({"version": "1.1", "data": articles}), encoding="utf-8")

    class LocalGlue(Glue, skip_registration=True):
        name = "glue"  # the registered builder's name: `tfds.load("glue...")` reads what this writes
        code_path = None  # no checksums file to look up (TFDS would need importlib_resources)

        def _split_generators(self, dl_manager):
            return [tfds.core.SplitGenerator(name=tfds.Split.TRAIN,
                                             gen_kwargs={"data_file": str(sst2["train"]), "split": "train"}),
                    tfds.core.SplitGenerator(name=tfds.Split.VALIDATION,
                                             gen_kwargs={"data_file": str(sst2["dev"]), "split": "dev"})]

    class LocalConll2003(Conll2003, skip_registration=True):
        name = "conll2003"  # the registered builder's name: `tfds.load("conll2003...")` reads what this writes
        code_path = None  # no checksums file to look up (TFDS would need importlib_resources)

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples(conll["train"]), "dev": self._generate_examples(conll["dev"])}

    class LocalSquad(Squad, skip_registration=True):
        name = "squad"  # the registered builder's name: `tfds.load("squad...")` reads what this writes
        code_path = None  # no checksums file to look up (TFDS would need importlib_resources)

        def _split_generators(self, dl_manager):
            return [tfds.core.SplitGenerator(name=tfds.Split.TRAIN, gen_kwargs={"filepath": str(squad["train"])}),
                    tfds.core.SplitGenerator(name=tfds.Split.VALIDATION, gen_kwargs={"filepath": str(squad["dev"])})]

    data_dir = root / "tensorflow_datasets"
    for builder in (LocalGlue(config="sst2", data_dir=data_dir), LocalConll2003(data_dir=data_dir),
                    LocalSquad(config="v1.1", data_dir=data_dir)):
        builder.download_and_prepare()
    return data_dir


def _raw(tfds_dir: Path) -> Path:
    return tfds_dir.parent / "raw"


def test_glue_sst2_reads_the_same_examples_as_the_tsv(tfds_dir):
    from keras_electra.data.readers import read_glue
    from keras_electra.tasks.registry import get_task, read_split

    assert list((tfds_dir / "glue" / "sst2").glob("*/glue-train.tfrecord-*"))  # real TFRecord splits
    spec = get_task("sst2")
    for split, file in (("train", "sst2-train.tsv"), ("dev", "sst2-dev.tsv")):
        examples, source = read_split(spec, "tfds:glue/sst2", split, tfds_data_dir=str(tfds_dir))
        expected = read_glue("sst2", _raw(tfds_dir) / file, split)
        assert sorted(examples, key=lambda e: e.guid) == sorted(expected, key=lambda e: e.guid)
        assert {e.label for e in examples} == {"0", "1"}  # GLUE's ids, not TFDS's negative/positive
        assert source == [f"tfds:glue/sst2[{'validation' if split == 'dev' else 'train'}] in {tfds_dir}"]


def test_conll2003_and_squad_map_onto_the_task_examples(tfds_dir):
    from keras_electra.data.readers import read_conll, read_squad
    from keras_electra.tasks.registry import get_task, read_split

    ner = read_split(get_task("conll2003"), "tfds:conll2003", "dev", tfds_data_dir=str(tfds_dir))[0]
    expected = read_conll(_raw(tfds_dir) / "conll-valid.txt")
    assert sorted((e.words, e.tags) for e in ner) == sorted((e.words, e.tags) for e in expected)
    qa = read_split(get_task("squad"), "tfds:squad/v1.1", "dev", tfds_data_dir=str(tfds_dir))[0]
    gold = {e.guid: e for e in read_squad(_raw(tfds_dir) / "squad-dev.json")}
    assert len(qa) == len(gold) > 0
    for e in qa:
        g = gold[e.guid]
        assert (e.question, e.context, e.answers) == (g.question, g.context, g.answers)


def test_names_and_what_does_not_map():
    from keras_electra.data.tfds_data import parse_name, task_for, tfds_split
    from keras_electra.errors import DataError

    assert parse_name("glue:sst2") == parse_name("tfds:glue/sst2") == "glue/sst2"
    assert [task_for(n) for n in ("glue/mrpc", "conll2003", "squad", "squad/v2.0:3.0.0")] == \
        ["mrpc", "conll2003", "squad", "squad2"]
    assert (tfds_split("mnli", "dev"), tfds_split("mnli-mm", "dev"), tfds_split("sst2", "dev")) == \
        ("validation_matched", "validation_mismatched", "validation")
    assert tfds_split("conll2003", "dev") == "dev"  # TFDS's conll2003 calls its dev split "dev"
    with pytest.raises(DataError, match="pass --task"):
        task_for("imdb_reviews")


def test_finetune_evaluate_and_calibrate_with_tfds_from_the_cli(tfds_dir, tmp_path, capsys):
    from keras_electra.export.cli import calibration_inputs

    output = tmp_path / "sst2"
    assert main(["finetune", "--tfds", "glue/sst2", "--tfds-data-dir", str(tfds_dir), "--output", str(output),
                 *TINY]) == 0
    results = json.loads((output / "results.json").read_text())
    assert results["task"] == "sst2" and results["num_examples"] == {"train": 200, "dev": 64}
    assert results["data_files"]["train"] == [f"tfds:glue/sst2[train] in {tfds_dir}"]
    capsys.readouterr()
    assert main(["evaluate", "--model", str(output), "--data", "tfds:glue/sst2", "--tfds-data-dir", str(tfds_dir),
                 "--json"]) == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["accuracy"] == pytest.approx(results["dev"]["accuracy"])
    # int8 calibration reads the recorded TFDS training split.
    assert calibration_inputs(output, None, 8)["token_ids"].shape == (8, 32)


def test_a_missing_tfds_dataset_is_one_line(tmp_path, capsys):
    assert main(["finetune", "--tfds", "glue/rte", "--tfds-data-dir", str(tmp_path / "empty"),
                 "--output", str(tmp_path / "o"), *TINY]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("keras-electra finetune: error: tfds:glue/rte")
    assert not (tmp_path / "o").exists()


@pytest.fixture(scope="module")
def novels_tfds(tmp_path_factory) -> tuple[Path, str]:
    """A registered TFDS text dataset (one feature "text"), built from two real novels: one record per paragraph."""
    import tensorflow_datasets as tfds

    novels = sorted(NOVELS.glob("*.txt"))[:2]

    class KerasElectraTestNovels(tfds.core.GeneratorBasedBuilder):
        code_path = None  # no checksums file to look up (TFDS would need importlib_resources)

        VERSION = tfds.core.Version("1.0.0")

        def _info(self):
            return self.dataset_info_from_configs(features=tfds.features.FeaturesDict({"text": tfds.features.Text()}))

        def _split_generators(self, dl_manager):
            return {"train": self._generate_examples()}

        def _generate_examples(self):
            for novel in novels:
                paragraphs = [p.strip() for p in novel.read_text(encoding="utf-8-sig").splitlines() if p.strip()]
                for i, paragraph in enumerate(paragraphs[:150]):
                    yield f"{novel.stem}-{i}", {"text": paragraph}

    data_dir = tmp_path_factory.mktemp("tfds-novels")
    KerasElectraTestNovels(data_dir=data_dir).download_and_prepare()
    return data_dir, "keras_electra_test_novels"


def test_pretrain_corpus_from_tfds(novels_tfds, tmp_path):
    data_dir, name = novels_tfds
    output = tmp_path / "pretrain"
    assert main(["pretrain", "--corpus", f"tfds:{name}", "--tfds-data-dir", str(data_dir), "--output", str(output),
                 "--vocab", str(VOCAB_UNCASED), "--config", "num_layers=1", "--steps", "2", "--batch-size", "4",
                 "--seq-length", "32", "--eval-batches", "1", "--jit", "off", "--log-every", "1"]) == 0
    corpus = output / "tfds_corpus" / f"{name}-train.txt"
    documents = corpus.read_text(encoding="utf-8").split("\n\n")
    assert len([d for d in documents if d.strip()]) == 300  # one document per TFDS record
    assert (output / "discriminator" / "model.keras").is_file()


def test_tensorflow_datasets_is_imported_only_when_used():
    import subprocess

    code = ("import sys; from keras_electra.tasks.registry import get_task, read_split; "
            "read_split(get_task('sst2'), sys.argv[1], 'dev'); print('tensorflow_datasets' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, str(GLUE / "SST-2")], capture_output=True, text=True,
                         timeout=300, env={"PYTHONPATH": str(Path(__file__).resolve().parents[2]), "PATH": "/usr/bin"})
    assert out.stdout.strip() == "False", out.stderr
