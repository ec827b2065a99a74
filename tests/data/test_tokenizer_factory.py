"""One tokenizer factory (`build_tokenizer`): every path that makes a tokenizer from a vocabulary
honours the casing `build-vocab` recorded in tokenizer.json, unless told otherwise."""

from __future__ import annotations

import json

import pytest

from keras_electra.cli import main
from keras_electra.data.tokenizer import build_tokenizer, resolve_casing
from keras_electra.errors import VocabularyError
from tests.conftest import NOVELS, VOCAB_UNCASED

SENTENCE = "Watson said Holmes"


@pytest.fixture(scope="module")
def cased_vocab(tmp_path_factory):
    """A vocabulary learnt by `keras-electra build-vocab --cased` (vocab.txt + tokenizer.json)."""
    directory = tmp_path_factory.mktemp("cased")
    lines = [line for line in (NOVELS / "Doyle_Hound_1902.txt").read_text(encoding="utf-8").splitlines()
             if line.strip()][:500]
    corpus = directory / "corpus.txt"
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    assert main(["build-vocab", "--corpus", str(corpus), "--vocab-size", "600", "--cased",
                 "--output", str(directory / "vocab" / "vocab.txt")]) == 0
    assert json.loads((directory / "vocab" / "tokenizer.json").read_text()) == {"lower_case": False,
                                                                                 "strip_accents": False}
    return directory / "vocab"


def _pieces(tokenizer, text: str = SENTENCE) -> list[str]:
    return [tokenizer.id_to_token(i) for i in tokenizer.tokenize(text).numpy()]


def test_the_factory_reads_tokenizer_json_and_explicit_casing_wins(cased_vocab):
    for vocab in (cased_vocab, cased_vocab / "vocab.txt"):  # the directory, or its vocab.txt
        tokenizer = build_tokenizer(vocab)
        assert (tokenizer.lower_case, tokenizer.strip_accents) == (False, False)
        assert any(c.isupper() for piece in _pieces(tokenizer) for c in piece)
    assert build_tokenizer(cased_vocab, lower_case=True).lower_case is True
    assert resolve_casing(VOCAB_UNCASED) == (True, True)  # no tokenizer.json: BERT's uncased default
    assert resolve_casing(["[PAD]"], lower_case=False) == (False, False)


def test_a_malformed_tokenizer_json_is_one_line(tmp_path):
    (tmp_path / "vocab.txt").write_text(VOCAB_UNCASED.read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "tokenizer.json").write_text('{"lower_case": "no"}')
    with pytest.raises(VocabularyError, match=r"tokenizer\.json: expected"):
        build_tokenizer(tmp_path)


def test_pretrain_vocab_keeps_the_casing_build_vocab_wrote(cased_vocab, tmp_path, monkeypatch):
    from keras_electra.pretraining import trainer

    captured = {}

    class Stop(Exception):
        pass

    def capture(options, output_dir, *args, **kwargs):
        captured["options"] = options
        raise Stop

    monkeypatch.setattr(trainer, "run_pretraining", capture)
    with pytest.raises(Stop):
        main(["pretrain", "--corpus", str(NOVELS / "Doyle_Hound_1902.txt"), "--vocab", str(cased_vocab),
              "--output", str(tmp_path / "run")])
    tokenizer = trainer._load_tokenizer(captured["options"], tmp_path / "run")
    assert tokenizer.lower_case is False
    assert _pieces(tokenizer) == _pieces(build_tokenizer(cased_vocab))
    with pytest.raises(Stop):  # --uncased overrides tokenizer.json
        main(["pretrain", "--corpus", str(NOVELS / "Doyle_Hound_1902.txt"), "--vocab", str(cased_vocab),
              "--uncased", "--output", str(tmp_path / "run")])
    assert captured["options"].lower_case is True


def test_finetune_random_init_keeps_the_casing_build_vocab_wrote(cased_vocab, tmp_path, monkeypatch):
    from keras_electra.tasks import finetune as finetune_module
    from keras_electra.tasks.registry import get_task

    captured = {}

    class Stop(Exception):
        pass

    def capture(config):
        captured["config"] = config
        raise Stop

    monkeypatch.setattr(finetune_module, "finetune", capture)
    with pytest.raises(Stop):
        main(["finetune", "--task", "sst2", "--data", str(tmp_path), "--init", "random", "--preset", "tiny",
              "--config", "num_layers=1", "--vocab", str(cased_vocab / "vocab.txt"), "--output",
              str(tmp_path / "out")])
    config = captured["config"]
    spec = get_task("sst2")
    model, tokenizer = finetune_module.build_task_model(config, spec, list(spec.labels), 0, 32)
    assert tokenizer.lower_case is False and model.preprocessor.tokenizer.lower_case is False
    assert _pieces(tokenizer) == _pieces(build_tokenizer(cased_vocab))
    assert _pieces(tokenizer) != _pieces(build_tokenizer(cased_vocab, lower_case=True))


def test_finetune_refuses_a_vocabulary_or_casing_for_a_pretrained_init(cased_vocab, tmp_path, capsys):
    for extra in (["--vocab", str(cased_vocab)], ["--cased"]):
        assert main(["finetune", "--task", "sst2", "--data", str(tmp_path), "--init", str(cased_vocab),
                     "--output", str(tmp_path / "out"), *extra]) != 0
        assert "make the tokenizer of --init random only" in capsys.readouterr().err
