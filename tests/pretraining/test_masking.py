"""Masking statistics over more than 10,000 real packed sequences (novels, uncased vocabulary, L=128).

The recipe (DEVELOPERS.md): mask round(len · 0.15) tokens per sequence (len = non-padding
length, computed in float32 as the official code does), at least 1 and at most
int((0.15 + 0.005) · L); never [CLS], [SEP] or padding; 85% of them become [MASK], 15%
stay, none random unless asked.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

from keras_electra.data.pretraining_data import pretraining_dataset
from keras_electra.pretraining.masking import gather_positions, mask_tokens, scatter_positions
from tests.conftest import NOVELS

pytestmark = pytest.mark.backend_sensitive  # also run under KERAS_BACKEND=jax in CI (tests/conftest.py)

SEQ = 128
MASK_RATE = 0.15
MAX_PREDICTIONS = int((MASK_RATE + 0.005) * SEQ)
NUM_SEQUENCES = 10_240
BATCH = 512


@pytest.fixture(scope="module")
def sequences(uncased_tokenizer) -> dict[str, np.ndarray]:
    """One pass over five novels (7.9 MB): about 13,000 packed sequences, of which 10,240 are used."""
    names = ("Dickens_Bleak_1853", "Eliot_Daniel_1876", "Bennet_Imperial_1930", "Blackmore_Lorna_1869",
             "Cbronte_Shirley_1849")
    files = [NOVELS / f"{name}.txt" for name in names]
    dataset = pretraining_dataset(files, uncased_tokenizer, seq_length=SEQ, batch_size=BATCH, seed=0,
                                  shuffle_buffer=2000, repeat=False)
    batches = [{k: v.numpy() for k, v in b.items()} for b in dataset.take(NUM_SEQUENCES // BATCH)]
    return {key: np.concatenate([b[key] for b in batches]) for key in batches[0]}


def run_masking(sequences, tokenizer, seed: int, **rates) -> dict[str, np.ndarray]:
    generator = keras.random.SeedGenerator(seed)
    special = (tokenizer.cls_id, tokenizer.sep_id, tokenizer.pad_id)
    parts = []
    for start in range(0, len(sequences["token_ids"]), 2048):
        ids = sequences["token_ids"][start : start + 2048]
        mask = sequences["padding_mask"][start : start + 2048]
        out = mask_tokens(ids, mask, seed=generator, mask_rate=MASK_RATE, max_predictions=MAX_PREDICTIONS,
                          mask_token_id=tokenizer.mask_id, special_token_ids=special,
                          vocab_size=tokenizer.vocabulary_size, **rates)
        parts.append({k: keras.ops.convert_to_numpy(getattr(out, k)) for k in out._fields})
    return {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}


@pytest.fixture(scope="module")
def masked(sequences, uncased_tokenizer):
    return run_masking(sequences, uncased_tokenizer, seed=1)


def used_positions(result):
    used = result["weights"] > 0
    rows = np.repeat(np.arange(len(used)), used.sum(axis=1))
    return used, rows, result["positions"][used]


def test_enough_real_sequences(sequences, uncased_tokenizer):
    assert sequences["token_ids"].shape == (NUM_SEQUENCES, SEQ)
    assert len(np.unique(sequences["token_ids"], axis=0)) > 0.99 * NUM_SEQUENCES
    assert MAX_PREDICTIONS == 19


def test_number_masked_per_sequence(sequences, masked):
    lengths = sequences["padding_mask"].sum(axis=1).astype(np.float32)
    expected = np.clip(np.round(lengths * np.float32(MASK_RATE)), 1, MAX_PREDICTIONS).astype(int)
    counts = (masked["weights"] > 0).sum(axis=1)
    np.testing.assert_array_equal(counts, expected)
    # Used slots come first; the rest are padding with weight 0 and position 0.
    assert np.all(np.diff(masked["weights"], axis=1) <= 0)
    assert np.all(masked["positions"][masked["weights"] == 0] == 0)
    # Most real sequences are full, so most reach the upper bound.
    assert np.mean(counts == MAX_PREDICTIONS) > 0.8


def test_masked_positions_are_distinct_real_ordinary_tokens(sequences, masked, uncased_tokenizer):
    used, rows, positions = used_positions(masked)
    original = sequences["token_ids"][rows, positions]
    assert np.all(sequences["padding_mask"][rows, positions] == 1)
    assert not np.isin(original, [uncased_tokenizer.cls_id, uncased_tokenizer.sep_id, uncased_tokenizer.pad_id]).any()
    np.testing.assert_array_equal(masked["target_ids"][used], original)
    for row in range(0, NUM_SEQUENCES, 97):
        chosen = masked["positions"][row][used[row]]
        assert len(set(chosen.tolist())) == len(chosen)
    # Unmasked positions are untouched.
    changed = masked["token_ids"] != sequences["token_ids"]
    written = np.zeros_like(changed)
    written[rows, positions] = True
    assert not np.any(changed & ~written)


def test_positions_are_uniform_over_the_sequence(sequences, masked):
    _, rows, positions = used_positions(masked)
    lengths = sequences["padding_mask"].sum(axis=1)[rows]
    relative = (positions - 1) / np.maximum(lengths - 2, 1)
    histogram = np.histogram(relative, bins=4, range=(0, 1))[0] / len(relative)
    assert np.all(np.abs(histogram - 0.25) < 0.01), histogram


def test_mask_kept_split_is_85_15_with_no_random_tokens(sequences, masked, uncased_tokenizer):
    used, rows, positions = used_positions(masked)
    new = masked["token_ids"][rows, positions]
    original = sequences["token_ids"][rows, positions]
    is_mask = new == uncased_tokenizer.mask_id
    kept = new == original
    assert np.all(is_mask | kept)  # no random replacements by default
    n = len(new)
    tolerance = 4 * np.sqrt(0.85 * 0.15 / n)
    assert n > 150_000
    assert abs(is_mask.mean() - 0.85) < tolerance, is_mask.mean()


def test_bert_style_random_replacements(sequences, uncased_tokenizer):
    result = run_masking(sequences, uncased_tokenizer, seed=2, mask_token_rate=0.8, random_token_rate=0.1)
    used, rows, positions = used_positions(result)
    new = result["token_ids"][rows, positions]
    original = sequences["token_ids"][rows, positions]
    is_mask = new == uncased_tokenizer.mask_id
    other = ~is_mask & (new != original)
    tolerance = 4 * np.sqrt(0.1 * 0.9 / len(new))
    assert abs(is_mask.mean() - 0.8) < 4 * np.sqrt(0.8 * 0.2 / len(new))
    assert abs(other.mean() - 0.1) < tolerance, other.mean()
    # Random tokens are spread over the vocabulary, not a handful of ids.
    assert len(np.unique(new[other])) > 0.5 * other.sum() and new[other].max() < uncased_tokenizer.vocabulary_size


def test_masking_depends_on_the_seed(sequences, masked, uncased_tokenizer):
    subset = {k: v[:512] for k, v in sequences.items()}
    again = run_masking(subset, uncased_tokenizer, seed=1)
    other = run_masking(subset, uncased_tokenizer, seed=3)
    np.testing.assert_array_equal(again["positions"], masked["positions"][:512])
    assert not np.array_equal(other["positions"], again["positions"])


def test_scatter_and_gather_round_trip(sequences, masked):
    ids = sequences["token_ids"][:256]
    positions, weights = masked["positions"][:256], masked["weights"][:256]
    gathered = keras.ops.convert_to_numpy(gather_positions(ids, positions))
    np.testing.assert_array_equal(gathered, np.take_along_axis(ids, positions, axis=1))
    # Writing the gathered values back changes nothing; writing new ones changes exactly the used slots.
    same, written = scatter_positions(ids, positions, weights, gathered)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(same), ids)
    expected_written = np.zeros_like(ids)
    used = weights > 0
    expected_written[np.repeat(np.arange(len(ids)), used.sum(axis=1)), positions[used]] = 1
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(written), expected_written)
    updates = gathered + 7
    changed, _ = scatter_positions(ids, positions, weights, updates)
    changed = keras.ops.convert_to_numpy(changed)
    back = keras.ops.convert_to_numpy(gather_positions(changed, positions))
    np.testing.assert_array_equal(back[used], updates[used])
    np.testing.assert_array_equal(changed[expected_written == 0], ids[expected_written == 0])
    # A [B, L, H] sequence gathers whole vectors.
    vectors = np.random.default_rng(0).normal(size=(*ids.shape, 8)).astype(np.float32)
    picked = keras.ops.convert_to_numpy(gather_positions(vectors, positions))
    np.testing.assert_array_equal(picked, np.take_along_axis(vectors, positions[..., None], axis=1))


# ------------------------------------------------ the official sampling: positions drawn with replacement
@pytest.fixture(scope="module")
def masked_with_replacement(sequences, uncased_tokenizer):
    return run_masking(sequences, uncased_tokenizer, seed=4, mask_sampling="with_replacement")


def test_with_replacement_keeps_the_counts_and_never_picks_specials(sequences, masked_with_replacement,
                                                                     uncased_tokenizer):
    result = masked_with_replacement
    lengths = sequences["padding_mask"].sum(axis=1).astype(np.float32)
    expected = np.clip(np.round(lengths * np.float32(MASK_RATE)), 1, MAX_PREDICTIONS).astype(int)
    np.testing.assert_array_equal((result["weights"] > 0).sum(axis=1), expected)  # slots, as officially
    assert np.all(result["positions"][result["weights"] == 0] == 0)
    used, rows, positions = used_positions(result)
    assert np.all(sequences["padding_mask"][rows, positions] == 1)
    original = sequences["token_ids"][rows, positions]
    assert not np.isin(original, [uncased_tokenizer.cls_id, uncased_tokenizer.sep_id, uncased_tokenizer.pad_id]).any()
    np.testing.assert_array_equal(result["target_ids"][used], original)
    changed = result["token_ids"] != sequences["token_ids"]
    written = np.zeros_like(changed)
    written[rows, positions] = True
    assert not np.any(changed & ~written)


def test_with_replacement_draws_duplicates_at_the_expected_rate(sequences, masked_with_replacement):
    used = masked_with_replacement["weights"] > 0
    full = sequences["padding_mask"].sum(axis=1) == SEQ
    distinct = np.array([len(set(p[u].tolist())) for p, u in zip(masked_with_replacement["positions"], used)])
    # 19 uniform draws among the 126 ordinary tokens of a full row: 126·(1 − (125/126)^19) distinct on average.
    expected = 126 * (1 - (125 / 126) ** 19)
    assert abs(distinct[full].mean() - expected) < 0.05, distinct[full].mean()
    assert distinct[full].mean() < MAX_PREDICTIONS - 1  # duplicates really happen
    _, rows, positions = used_positions(masked_with_replacement)
    lengths = sequences["padding_mask"].sum(axis=1)[rows]
    histogram = np.histogram((positions - 1) / np.maximum(lengths - 2, 1), bins=4, range=(0, 1))[0] / len(rows)
    assert np.all(np.abs(histogram - 0.25) < 0.01), histogram


def test_with_replacement_decides_each_position_once(sequences, masked_with_replacement, uncased_tokenizer):
    used, rows, positions = used_positions(masked_with_replacement)
    new = masked_with_replacement["token_ids"][rows, positions]
    original = sequences["token_ids"][rows, positions]
    assert np.all((new == uncased_tokenizer.mask_id) | (new == original))
    # Over distinct positions, 85% become [MASK].
    flat = np.unique(rows * SEQ + positions)
    is_mask = masked_with_replacement["token_ids"].reshape(-1)[flat] == uncased_tokenizer.mask_id
    assert abs(is_mask.mean() - 0.85) < 4 * np.sqrt(0.85 * 0.15 / len(flat)), is_mask.mean()


def test_scatter_writes_a_duplicated_position_once():
    ids = np.array([[5, 6, 7, 8, 9]], np.int32)
    positions = np.array([[2, 3, 2, 0]], np.int32)
    weights = np.array([[1, 1, 1, 0]], np.float32)
    new, written = scatter_positions(ids, positions, weights, np.array([[100, 200, 300, 400]], np.int32))
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(new), [[5, 6, 100, 200, 9]])
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(written), [[0, 0, 1, 1, 0]])
