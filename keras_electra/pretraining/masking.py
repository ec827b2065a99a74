"""Static-shape masking, gathering and scattering: the paper's recipe and nothing else.

Everything here runs inside the compiled train step, so every tensor has a shape
known at trace time: `max_predictions` masked slots per sequence, of which the
first `num_to_predict` are used (weight 1) and the rest are padding (weight 0).
"""

from __future__ import annotations

from typing import NamedTuple

from keras import ops

from keras_electra.layers.random import randint, uniform


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
    product keeps the shapes static (no dynamic scatter), as XLA prefers.
    """
    length = ops.shape(token_ids)[1]
    one_hot = ops.one_hot(ops.cast(positions, "int32"), length, dtype="int32")  # [B, N, L]
    one_hot = one_hot * ops.cast(weights, "int32")[..., None]
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
) -> MaskedBatch:
    """Choose positions uniformly without replacement and replace them.

    Of the chosen positions, `mask_token_rate` become [MASK], `random_token_rate`
    a uniformly random token (0 in ELECTRA; 0.1 for BERT's 80/10/10) and the
    rest keep the original token.
    """
    token_ids = ops.cast(token_ids, "int32")
    candidates = candidate_mask(token_ids, padding_mask, special_token_ids)
    count = num_to_predict(padding_mask, candidates, mask_rate, max_predictions)

    # Gumbel top-k over the candidates = uniform sampling without replacement.
    noise = uniform(ops.shape(token_ids), seed, minval=1e-9, maxval=1.0)
    scores = ops.where(candidates, -ops.log(-ops.log(noise)), -1e9)
    _, positions = ops.top_k(scores, k=max_predictions, sorted=True)
    slot = ops.arange(max_predictions, dtype="int32")[None, :]
    used = ops.less(slot, count[:, None])
    weights = ops.cast(used, "float32")
    positions = ops.where(used, ops.cast(positions, "int32"), 0)
    target_ids = gather_positions(token_ids, positions)

    choice = uniform(ops.shape(positions), seed)
    random_ids = randint(ops.shape(positions), seed, 0, vocab_size)
    replacement = ops.where(
        ops.less(choice, mask_token_rate),
        mask_token_id,
        ops.where(ops.less(choice, mask_token_rate + random_token_rate), random_ids, target_ids),
    )
    masked_ids, _ = scatter_positions(token_ids, positions, weights, replacement)
    return MaskedBatch(masked_ids, positions, target_ids, weights)


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
