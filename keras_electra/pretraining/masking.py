"""Static-shape masking, gathering and scattering: the paper's recipe, with its one named
deviation (`mask_sampling`, below).

Everything here runs inside the compiled train step, so every tensor has a shape
known at trace time: `max_predictions` masked slots per sequence, of which the
first `num_to_predict` are used (weight 1) and the rest are padding (weight 0).

`mask_sampling` picks how the positions are drawn among the candidates:

- "without_replacement" (our default): Gumbel top-k, so each sequence gets exactly its
  round(len·p) *distinct* positions, the paper's "mask 15% of the tokens".
- "with_replacement" (the official code: `tf.random.categorical` in
  `pretrain_helpers.mask`): each slot is an independent uniform draw, so a position can be
  drawn twice. At L=128 (19 draws over ~126 candidates) about 1.3 draws per sequence are
  duplicates, so ~13.8% rather than 15% of the tokens are masked, and a duplicated target
  counts twice in the MLM loss. A duplicated position is written once (like the official
  `scatter_update`), with one replacement decision per position.
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops

from keras_electra.layers.random import randint, uniform

MASK_SAMPLING = ("without_replacement", "with_replacement")


class MaskedBatch(NamedTuple):
    token_ids: object  # [B, L] ids fed to the generator ([MASK] or kept tokens at masked slots)
    positions: object  # [B, N] masked positions (0 in unused slots)
    target_ids: object  # [B, N] original ids at those positions
    weights: object  # [B, N] float32: 1 for a used slot, 0 for padding


def gather_positions(sequence, positions):
    """[B, L, ...] gathered at [B, N] positions → [B, N, ...]."""
    positions = ops.cast(positions, "int32")
    if len(sequence.shape) == 3:
        return ops.take_along_axis(sequence, positions[..., None], axis=1)
    return ops.take_along_axis(sequence, positions, axis=1)


def scatter_positions(token_ids, positions, weights, updates):
    """Write `updates` [B, N] into `token_ids` [B, L] at the used `positions`.

    Returns the new ids and a [B, L] int32 flag of the written positions. A one-hot
    product keeps the shapes static (no dynamic scatter), as XLA prefers. A position
    that appears in several used slots (sampling with replacement) takes the first
    slot's update only.
    """
    length = ops.shape(token_ids)[1]
    one_hot = ops.one_hot(ops.cast(positions, "int32"), length, dtype="int32")  # [B, N, L]
    one_hot = one_hot * ops.cast(weights, "int32")[..., None]
    one_hot = one_hot * ops.cast(ops.equal(ops.cumsum(one_hot, axis=1), 1), "int32")  # first use of each position
    written = ops.minimum(ops.sum(one_hot, axis=1), 1)
    new_values = ops.sum(one_hot * ops.cast(updates, "int32")[..., None], axis=1)
    return token_ids * (1 - written) + new_values, written


def candidate_mask(token_ids, padding_mask, special_token_ids):
    """True where a token may be masked: inside the sequence and not a special token."""
    candidates = ops.cast(padding_mask, "bool")
    for special in special_token_ids:
        candidates = ops.logical_and(candidates, ops.not_equal(token_ids, special))
    return candidates


def num_to_predict(padding_mask, candidates, mask_rate: float, max_predictions: int):
    """round(len · p), at least 1 and at most `max_predictions` (and the number of candidates)."""
    length = ops.sum(ops.cast(padding_mask, "float32"), axis=-1)
    count = ops.cast(ops.round(length * mask_rate), "int32")
    count = ops.clip(count, 1, max_predictions)
    return ops.minimum(count, ops.sum(ops.cast(candidates, "int32"), axis=-1))


def mask_tokens(
    token_ids,
    padding_mask,
    *,
    seed,
    mask_rate: float,
    max_predictions: int,
    mask_token_id: int,
    special_token_ids: tuple[int, ...],
    vocab_size: int,
    mask_token_rate: float = 0.85,
    random_token_rate: float = 0.0,
    mask_sampling: str = "without_replacement",
) -> MaskedBatch:
    """Choose positions uniformly among the candidates and replace them.

    `mask_sampling`: "without_replacement" (distinct positions, default) or
    "with_replacement" (the official code; see the module docstring).
    Of the chosen positions, `mask_token_rate` become [MASK], `random_token_rate`
    a uniformly random token (0 in ELECTRA; 0.1 for BERT's 80/10/10) and the
    rest keep the original token.
    """
    if mask_sampling not in MASK_SAMPLING:
        raise ValueError(f"mask_sampling must be one of {MASK_SAMPLING}, got {mask_sampling!r}")
    token_ids = ops.cast(token_ids, "int32")
    candidates = candidate_mask(token_ids, padding_mask, special_token_ids)
    count = num_to_predict(padding_mask, candidates, mask_rate, max_predictions)
    slot = ops.arange(max_predictions, dtype="int32")[None, :]
    used = ops.less(slot, count[:, None])
    weights = ops.cast(used, "float32")

    if mask_sampling == "without_replacement":
        # Gumbel top-k over the candidates = uniform sampling without replacement.
        noise = uniform(ops.shape(token_ids), seed, minval=1e-9, maxval=1.0)
        scores = ops.where(candidates, -ops.log(-ops.log(noise)), -1e9)
        _, positions = ops.top_k(scores, k=max_predictions, sorted=True)
    else:
        positions = _uniform_candidates(candidates, max_predictions, seed)
    positions = ops.where(used, ops.cast(positions, "int32"), 0)
    target_ids = gather_positions(token_ids, positions)

    if mask_sampling == "without_replacement":
        choice = uniform(ops.shape(positions), seed)
        random_ids = randint(ops.shape(positions), seed, 0, vocab_size)
    else:
        # One decision per position, so the copies of a duplicated position agree.
        choice = gather_positions(uniform(ops.shape(token_ids), seed), positions)
        random_ids = gather_positions(randint(ops.shape(token_ids), seed, 0, vocab_size), positions)
    replacement = ops.where(
        ops.less(choice, mask_token_rate),
        mask_token_id,
        ops.where(ops.less(choice, mask_token_rate + random_token_rate), random_ids, target_ids),
    )
    masked_ids, _ = scatter_positions(token_ids, positions, weights, replacement)
    return MaskedBatch(masked_ids, positions, target_ids, weights)


def _uniform_candidates(candidates, num_draws: int, seed):
    """[B, num_draws] positions, each drawn independently and uniformly among the candidates
    (with replacement, like the official `tf.random.categorical`): draw k ~ U{0..n−1} and take
    the position of the (k+1)-th candidate. Rows without candidates get position 0 (unused)."""
    flags = ops.cast(candidates, "int32")
    n = ops.sum(flags, axis=-1)  # [B]
    u = uniform((ops.shape(flags)[0], num_draws), seed)  # [B, N] in [0, 1)
    k = ops.cast(ops.floor(u * ops.cast(n, "float32")[:, None]), "int32")
    k = ops.clip(k, 0, ops.maximum(n - 1, 0)[:, None])
    rank = ops.cumsum(flags, axis=-1)  # [B, L]: candidates up to and including each position
    # The (k+1)-th candidate sits at the number of positions whose running count is <= k.
    return ops.sum(ops.cast(ops.less_equal(rank[:, None, :], k[..., None]), "int32"), axis=-1)


def gumbel_sample(logits, seed, temperature: float = 1.0, disallow_ids=None):
    """Gumbel-max sampling in float32; optionally forbid each slot's `disallow_ids` token."""
    logits = ops.cast(logits, "float32") / temperature
    if disallow_ids is not None:
        logits = logits - 1000.0 * ops.one_hot(disallow_ids, ops.shape(logits)[-1], dtype="float32")
    noise = uniform(ops.shape(logits), seed)
    gumbel = -ops.log(-ops.log(noise + 1e-9) + 1e-9)
    return vocab_argmax(logits + gumbel)


def vocab_argmax(logits):
    """argmax over the last axis as int32.

    On TensorFlow, `keras.ops.argmax` guards against flushed -0.0 with four extra passes
    over its input; over [B, N, vocab] logits those passes took a quarter of the tiny
    pretraining step on CPU, and the sign of a zero logit cannot change a sample.
    """
    import keras

    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return tf.math.argmax(logits, axis=-1, output_type=tf.int32)
    return ops.cast(ops.argmax(logits, axis=-1), "int32")
