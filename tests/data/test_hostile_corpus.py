"""A corpus that packs into almost no examples (issue 18): warned about, and the first batch comes
without waiting on thousands of passes to fill the shuffle buffer."""

from __future__ import annotations

import random
import time

from keras_electra.data.pretraining_data import pretraining_dataset
from keras_electra.data.tokenizer import ElectraTokenizer
from tests.conftest import VOCAB_UNCASED


def test_one_long_line_without_spaces_warns_and_does_not_stall(tmp_path, capsys):
    corpus = tmp_path / "one_line.txt"
    rng = random.Random(0)
    corpus.write_text("".join(rng.choice("abcdefghij") for _ in range(1_000_000)) + "\n")
    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    started = time.perf_counter()
    batch = next(iter(pretraining_dataset([corpus], tokenizer, seq_length=32, batch_size=4)))
    elapsed = time.perf_counter() - started
    # Before: the 10,000-example shuffle buffer needed 10,000 passes over the file (minutes, silent).
    assert elapsed < 30, elapsed
    assert batch["token_ids"].shape == (4, 32)
    assert list(batch["token_ids"][0, :3]) == [tokenizer.cls_id, tokenizer.unk_id, tokenizer.sep_id]
    err = capsys.readouterr().err
    assert "warning:" in err and "one_line.txt" in err and "at most 1 example" in err


def test_an_ordinary_corpus_gets_no_warning(capsys):
    from tests.conftest import NOVELS

    dataset = pretraining_dataset([NOVELS / "Burnett_Lord_1886.txt"], ElectraTokenizer(VOCAB_UNCASED),
                                  seq_length=32, batch_size=4, shuffle_buffer=64)
    next(iter(dataset))
    assert "warning" not in capsys.readouterr().err
