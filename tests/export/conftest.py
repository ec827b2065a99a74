"""Fine-tuned tiny models and their exports, built once per test session.

Conversion is slow, so every artefact is a session fixture: a 2-layer classifier fine-tuned
on 4,000 real SST-2 sentences (it must clearly beat chance for the int8 checks to mean
anything), a 1-layer CoNLL-2003 tagger fine-tuned on real sentences, and random-init QA
models with either head (for the in-graph span decoding, where only parity matters).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import GLUE, SHARED_DATA, VOCAB_UNCASED

SST2 = GLUE / "SST-2"
CONLL = SHARED_DATA / "conll2003" / "iob2"
XQUAD = SHARED_DATA / "xquad" / "xquad.en.json"
CLF_SEQ = 48
NER_SEQ = 48
QA_SEQ = 64


def _save(model, tokenizer, directory: Path, task: str, train_files: list[Path]) -> Path:
    from keras_electra.tasks.outputs import save_task_model
    from keras_electra.tasks.registry import get_task
    from keras_electra.utils.io import write_json

    save_task_model(model, tokenizer, directory, get_task(task))
    # What `keras-electra finetune` records beside the model: the calibration source of int8 export.
    write_json(directory / "results.json", {"task": task, "data_files": {"train": [str(f) for f in train_files]}})
    return directory


def _fit(model, runner, examples, epochs: int, learning_rate: float) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.AdamW(learning_rate, weight_decay=0.0), **runner.compile_args(model, {}))
    model.fit(runner.train_dataset(model, examples, 32, seed=0), epochs=epochs, verbose=0)


# Set to a directory to reuse the fine-tuned models between runs while developing (exports are
# always rebuilt); unset, everything lives in pytest's temporary directory.
MODEL_CACHE = os.environ.get("KERAS_ELECTRA_EXPORT_TEST_MODELS")


@pytest.fixture(scope="session")
def export_root(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("export")


def _model_dir(export_root: Path, name: str) -> tuple[Path, bool]:
    """(directory for a fine-tuned model, whether it already holds one from an earlier run)."""
    base = Path(MODEL_CACHE) if MODEL_CACHE else export_root
    directory = base / name
    return directory, bool(MODEL_CACHE) and (directory / "model.keras").is_file()


@pytest.fixture(scope="session")
def sst2_dir(export_root) -> Path:
    directory, cached = _model_dir(export_root, "sst2-model")
    if cached:
        return directory
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.data.readers.glue import read_glue
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.registry import get_task

    keras.utils.set_random_seed(0)
    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=2)
    runner = get_task("sst2").runner
    model = runner.build_model(ElectraBackbone.from_electra_config(config, name="backbone"), tokenizer, CLF_SEQ,
                               ["0", "1"], {})
    _fit(model, runner, read_glue("sst2", SST2, "train")[:4000], epochs=2, learning_rate=1e-3)
    return _save(model, tokenizer, directory, "sst2", [SST2 / "train.tsv"])


@pytest.fixture(scope="session")
def conll_dir(export_root) -> Path:
    directory, cached = _model_dir(export_root, "conll-model")
    if cached:
        return directory
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.data.readers.conll import CONLL2003_TAGS, read_conll
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.registry import get_task

    keras.utils.set_random_seed(0)
    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=1)
    runner = get_task("conll2003").runner
    model = runner.build_model(ElectraBackbone.from_electra_config(config, name="backbone"), tokenizer, NER_SEQ,
                               list(CONLL2003_TAGS), {})
    _fit(model, runner, read_conll(CONLL / "train.txt")[:1000], epochs=1, learning_rate=2e-3)
    return _save(model, tokenizer, directory, "conll2003", [CONLL / "train.txt"])


def _random_qa(export_root: Path, name: str, head: str, tune=None, **kwargs) -> Path:
    """A random-init QA model with `head`: the span decoding parity needs no training.
    `tune(model)` may adjust it before it is saved."""
    directory, cached = _model_dir(export_root, name)
    if cached:
        return directory
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.question_answerer import ElectraQuestionAnswerer

    keras.utils.set_random_seed(3)
    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=1)
    model = ElectraQuestionAnswerer.from_backbone(
        ElectraBackbone.from_electra_config(config, name="backbone"), tokenizer, QA_SEQ,
        preprocessor_kwargs={"doc_stride": 16, "max_query_length": 16}, max_answer_length=12, head=head, **kwargs)
    if tune is not None:
        tune(model)
    return _save(model, tokenizer, directory, "xquad", [XQUAD])


@pytest.fixture(scope="session")
def qa_dir(export_root) -> Path:
    """The Hugging Face QA head (converted `ElectraForQuestionAnswering` models)."""
    return _random_qa(export_root, "qa-model", "huggingface")


@pytest.fixture(scope="session")
def qa_electra_dir(export_root, xquad_examples) -> Path:
    """The official ELECTRA QA head (beam decoding, answerability classifier), SQuAD 2.0 decoding
    on, its no-answer threshold between the random answerability logits of `xquad_examples`
    (so that the decoding tests see answered and unanswered questions)."""

    def split_nulls(model) -> None:
        model.allow_no_answer = False
        nulls = sorted({a["null_score_diff"] for a in model.answer(*zip(*xquad_examples))})
        model.allow_no_answer = True
        model.null_score_threshold = float(np.mean(nulls[len(nulls) // 2 - 1:len(nulls) // 2 + 1]))

    return _random_qa(export_root, "qa-electra-model", "electra", tune=split_nulls)


# ----------------------------------------------------------------- real inputs
@pytest.fixture(scope="session")
def sst2_dev():
    from keras_electra.data.readers.glue import read_glue

    return read_glue("sst2", SST2, "dev")


@pytest.fixture(scope="session")
def conll_sentences() -> list[str]:
    """Real CoNLL-2003 dev sentences as raw text."""
    from keras_electra.data.readers.conll import read_conll

    return [" ".join(e.words) for e in read_conll(CONLL / "valid.txt")[:64] if len(e.words) > 3][:32]


@pytest.fixture(scope="session")
def xquad_examples() -> list[tuple[str, str]]:
    """(question, context) pairs from the first XQuAD-en articles, several contexts longer than one window."""
    data = json.loads(XQUAD.read_text(encoding="utf-8"))["data"]
    pairs = []
    for article in data[:2]:
        for paragraph in article["paragraphs"][:3]:
            pairs += [(qa["question"], paragraph["context"]) for qa in paragraph["qas"][:2]]
    return pairs


@pytest.fixture(scope="session")
def clf_model(sst2_dir):
    from keras_electra.export.common import load_for_export

    return load_for_export(sst2_dir)


@pytest.fixture(scope="session")
def ner_model(conll_dir):
    from keras_electra.export.common import load_for_export

    return load_for_export(conll_dir)


@pytest.fixture(scope="session")
def sst2_dev_inputs(clf_model, sst2_dev):
    """SST-2 dev packed by the model's own preprocessor, its Keras logits and the gold labels."""
    from keras_electra.export.encoding import encode_examples

    model, info = clf_model
    inputs = encode_examples(model.preprocessor, info, sst2_dev)
    logits = np.asarray(model.predict(inputs, batch_size=128, verbose=0))
    labels = np.array([int(e.label) for e in sst2_dev])
    return inputs, logits, labels


@pytest.fixture(scope="session")
def conll_inputs(ner_model, conll_sentences):
    from keras_electra.export.encoding import encode_texts

    model, info = ner_model
    inputs = encode_texts(model.preprocessor, info, conll_sentences)
    return inputs, np.asarray(model.predict(inputs, verbose=0))


# ----------------------------------------------------------------- exports
@pytest.fixture(scope="session")
def clf_saved_model(sst2_dir, export_root) -> Path:
    from keras_electra.export.saved_model import export_saved_model

    return export_saved_model(sst2_dir, export_root / "serving" / "sst2")


@pytest.fixture(scope="session")
def ner_saved_model(conll_dir, export_root) -> Path:
    from keras_electra.export.saved_model import export_saved_model

    return export_saved_model(conll_dir, export_root / "serving" / "conll")


@pytest.fixture(scope="session")
def qa_saved_model(qa_dir, export_root) -> Path:
    from keras_electra.export.saved_model import export_saved_model

    return export_saved_model(qa_dir, export_root / "serving" / "xquad")


@pytest.fixture(scope="session")
def qa_electra_saved_model(qa_electra_dir, export_root) -> Path:
    from keras_electra.export.saved_model import export_saved_model

    return export_saved_model(qa_electra_dir, export_root / "serving" / "xquad-electra")


@pytest.fixture(scope="session")
def clf_calibration(sst2_dir):
    """200 SST-2 training sentences (read from the data files recorded beside the model)."""
    from keras_electra.export.cli import calibration_inputs

    return calibration_inputs(sst2_dir, None, 200)


@pytest.fixture(scope="session")
def clf_tflite(clf_saved_model, clf_calibration, export_root):
    """quantize → .tflite of the classifier, converted from its SavedModel, built on first use."""
    from keras_electra.export.tflite import export_tflite

    cache: dict[str, Path] = {}

    def get(quantize: str) -> Path:
        if quantize not in cache:
            cache[quantize] = export_tflite(clf_saved_model, export_root / f"sst2-{quantize}.tflite", quantize,
                                            calibration_inputs=clf_calibration if quantize == "int8" else None)
        return cache[quantize]

    return get


@pytest.fixture(scope="session")
def ner_tflite(ner_saved_model, export_root):
    from keras_electra.export.tflite import export_tflite

    cache: dict[str, Path] = {}

    def get(quantize: str) -> Path:
        if quantize not in cache:
            cache[quantize] = export_tflite(ner_saved_model, export_root / f"conll-{quantize}.tflite", quantize)
        return cache[quantize]

    return get


@pytest.fixture(scope="session")
def clf_onnx(clf_saved_model, export_root) -> Path:
    from keras_electra.export.onnx import export_onnx

    return export_onnx(clf_saved_model.parent, export_root / "sst2.onnx")


@pytest.fixture(scope="session")
def ner_onnx(ner_saved_model, export_root) -> Path:
    from keras_electra.export.onnx import export_onnx

    return export_onnx(ner_saved_model, export_root / "conll.onnx")
