"""ElectraTokenizer on the real BERT vocabularies, and vocabularies learned from novels."""

from __future__ import annotations

import unicodedata

import numpy as np
import pytest
import tensorflow as tf

from keras_electra.data.corpus import iter_sentences, read_lines
from keras_electra.data.tokenizer import (
    REQUIRED_TOKENS,
    ElectraTokenizer,
    load_vocabulary,
    write_vocabulary,
)
from keras_electra.data.vocab_builder import build_vocabulary
from keras_electra.errors import DataError, VocabularyError
from tests.conftest import NOVELS, VOCAB_CASED, VOCAB_UNCASED

NOVEL = NOVELS / "Doyle_Hound_1902.txt"


def novel_lines(path=NOVEL, start=0, count=400) -> list[str]:
    lines = [line.strip() for line in read_lines(path) if line.strip()]
    return lines[start : start + count]


def bert_normalize(text: str) -> str:
    """BERT's uncased normalisation in plain Python: drop control/format characters, strip accents, lower-case."""
    kept = (c for c in text if c in "\t\n\r" or not unicodedata.category(c).startswith("C"))
    stripped = (c for c in unicodedata.normalize("NFD", "".join(kept)) if unicodedata.category(c) != "Mn")
    return "".join(c.lower() for c in stripped)


def test_special_ids_of_the_real_uncased_vocabulary(uncased_tokenizer):
    from transformers import BertTokenizer

    reference = BertTokenizer(vocab=str(VOCAB_UNCASED), do_lower_case=True)
    lines = VOCAB_UNCASED.read_text(encoding="utf-8").split("\n")
    assert uncased_tokenizer.vocabulary_size == len(reference) == len(lines) - 1  # final newline
    assert uncased_tokenizer.pad_id == reference.pad_token_id == lines.index("[PAD]")
    assert uncased_tokenizer.unk_id == reference.unk_token_id == lines.index("[UNK]")
    assert uncased_tokenizer.cls_id == reference.cls_token_id == lines.index("[CLS]")
    assert uncased_tokenizer.sep_id == reference.sep_token_id == lines.index("[SEP]")
    assert uncased_tokenizer.mask_id == reference.mask_token_id == lines.index("[MASK]")
    assert uncased_tokenizer.special_token_ids == {
        "cls": reference.cls_token_id, "sep": reference.sep_token_id,
        "pad": reference.pad_token_id, "mask": reference.mask_token_id,
    }
    for token_id in (0, 999, uncased_tokenizer.vocabulary_size - 1):
        assert uncased_tokenizer.token_to_id(uncased_tokenizer.id_to_token(token_id)) == token_id


def test_tokenize_shapes_scalar_and_detokenize(uncased_tokenizer):
    lines = novel_lines(count=20)
    ids = uncased_tokenizer.tokenize(lines)
    assert isinstance(ids, tf.RaggedTensor) and ids.dtype == tf.int32 and ids.nrows() == len(lines)
    scalar = uncased_tokenizer.tokenize(lines[3])
    np.testing.assert_array_equal(scalar.numpy(), ids[3].numpy())
    text = uncased_tokenizer.detokenize(ids[3:4]).numpy()[0].decode()
    assert text.replace(" ", "") == "".join(lines[3].lower().split()).replace(" ", "")


def test_offsets_point_into_the_original_text(uncased_tokenizer):
    lines = novel_lines(start=200, count=100) + ["Café naïve Ångström, ΟΔΟΣ and a\u200bb\x00c", "ＡＢＣ，２０ 北京"]
    ids, starts, ends = uncased_tokenizer.tokenize_with_offsets(lines)
    np.testing.assert_array_equal(ids.flat_values.numpy(), uncased_tokenizer.tokenize(lines).flat_values.numpy())
    for line, row_ids, row_starts, row_ends in zip(lines, ids.to_list(), starts.to_list(), ends.to_list()):
        raw = line.encode("utf-8")
        for token_id, start, end in zip(row_ids, row_starts, row_ends):
            token = uncased_tokenizer.id_to_token(token_id)
            if token == "[UNK]":
                continue
            # The original slice, normalised as BERT does, is the token (without its "##").
            assert bert_normalize(raw[start:end].decode()) == token.removeprefix("##"), (line, token)


def test_save_and_from_directory_round_trip(tmp_path):
    cased = ElectraTokenizer(VOCAB_CASED, lower_case=False)
    cased.save_to_directory(tmp_path / "cased")
    restored = ElectraTokenizer.from_directory(tmp_path / "cased")
    assert restored.vocabulary == cased.vocabulary
    assert (restored.lower_case, restored.strip_accents) == (False, False)
    lines = novel_lines(count=50)
    assert restored.tokenize(lines).to_list() == cased.tokenize(lines).to_list()
    # The casing changes the ids of a capitalised word, so the restored casing is the real one.
    lowered = ElectraTokenizer(VOCAB_CASED).tokenize("Baskerville").numpy().tolist()
    assert restored.tokenize("Baskerville").numpy().tolist() != lowered

    config = ElectraTokenizer.from_config(cased.get_config())
    assert config.lower_case is False and config.vocabulary == cased.vocabulary


def test_vocabulary_errors_name_the_file_and_token(tmp_path):
    tokens = load_vocabulary(VOCAB_UNCASED)
    for missing in ("[MASK]", "[CLS]"):
        path = tmp_path / f"no_{missing[1:-1].lower()}.txt"
        path.write_text("\n".join(t for t in tokens if t != missing) + "\n", encoding="utf-8")
        with pytest.raises(VocabularyError, match=rf"{path.name}.*\[{missing[1:-1]}\]"):
            ElectraTokenizer(path)
    with pytest.raises(VocabularyError, match="vocabulary file not found: .*absent.txt"):
        ElectraTokenizer(tmp_path / "absent.txt")
    duplicate = tmp_path / "duplicate.txt"
    duplicate.write_text("\n".join([*tokens[:200], tokens[150]]) + "\n", encoding="utf-8")
    with pytest.raises(VocabularyError, match="repeats"):
        load_vocabulary(duplicate)


@pytest.fixture(scope="module")
def learned_vocabulary(tmp_path_factory):
    """A vocabulary of at most 1,500 tokens learned from the first 2,000 lines (~120 kB) of a novel."""
    directory = tmp_path_factory.mktemp("vocab")
    corpus = directory / "slice.txt"
    corpus.write_text("\n".join(novel_lines(count=2000)) + "\n", encoding="utf-8")
    tokens = build_vocabulary([corpus], vocab_size=1500, output=directory / "vocab.txt")
    return corpus, directory / "vocab.txt", tokens


def test_build_vocabulary_gives_a_valid_vocabulary_that_covers_its_text(learned_vocabulary):
    corpus, path, tokens = learned_vocabulary
    assert tokens[: len(REQUIRED_TOKENS)] == list(REQUIRED_TOKENS)
    assert len(set(tokens)) == len(tokens)
    # Never above the limit; below it by at most one step of the learner's count threshold.
    assert 0.8 * 1500 <= len(tokens) <= 1500
    assert load_vocabulary(path) == tokens
    learned = tokens[len(REQUIRED_TOKENS) :]
    assert any(t.startswith("##") for t in learned) and all(t == t.lower() for t in learned)
    tokenizer = ElectraTokenizer(path)
    ids = tokenizer.tokenize(list(iter_sentences([corpus]))).flat_values.numpy()
    assert len(ids) > 15_000
    assert np.mean(ids == tokenizer.unk_id) < 0.001
    # Frequent words are whole tokens, so the text needs far fewer pieces than characters.
    assert len(ids) < 0.3 * corpus.stat().st_size


def test_build_vocabulary_cased_and_accent_options(tmp_path):
    corpus = tmp_path / "mixed.txt"
    lines = novel_lines(count=250) + ["Café résumé naïve Zoë Ångström déjà vu, Müller and Çelik."] * 20
    corpus.write_text("\n".join(lines) + "\n", encoding="utf-8")
    cased = build_vocabulary([corpus], vocab_size=500, lower_case=False)
    assert any(t[:1].isupper() for t in cased)
    assert "é" in cased  # accents kept when cased
    uncased = build_vocabulary([corpus], vocab_size=500)
    assert "é" not in uncased and all(t == t.lower() for t in uncased[len(REQUIRED_TOKENS) :])
    kept = build_vocabulary([corpus], vocab_size=500, lower_case=True, strip_accents=False)
    assert "é" in kept and all(t == t.lower() for t in kept[len(REQUIRED_TOKENS) :])
    tokenizer = ElectraTokenizer(kept, lower_case=True, strip_accents=False)
    ids = tokenizer.tokenize(lines[-1]).numpy()
    assert tokenizer.unk_id not in ids


def test_build_vocabulary_errors(tmp_path):
    with pytest.raises(DataError, match="not found"):
        build_vocabulary([tmp_path / "missing.txt"], vocab_size=100)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n", encoding="utf-8")
    with pytest.raises(DataError, match="empty"):
        build_vocabulary([empty], vocab_size=100)
    with pytest.raises(VocabularyError, match="too small"):
        build_vocabulary([NOVEL], vocab_size=5)


def test_write_vocabulary_is_validated(tmp_path):
    with pytest.raises(VocabularyError, match=r"\[MASK\]"):
        write_vocabulary(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "a"], tmp_path / "vocab.txt")
    assert not (tmp_path / "vocab.txt").exists()
