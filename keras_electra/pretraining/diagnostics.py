"""Collapse signals of a pretraining run, measured on held-out batches of original (unmasked) text.

- `token_cosine`: mean pairwise cosine of the discriminator's final-layer token vectors (real
  tokens of one sequence, averaged over sequences). A healthy encoder sits near 0.2-0.4; a
  collapsed one, whose vectors all point one way, near 1.
- `attention_entropy`: per layer, the attention distribution's entropy as a fraction of its
  maximum (log of the number of real keys), averaged over heads and real query tokens. 1.0 means
  uniform attention: the layer reads no context.
- the generator's MLM accuracy comes from the pretrainer's own `gen_accuracy` metric.
"""

from __future__ import annotations

import numpy as np
from keras import ops

from keras_electra.layers.transformer import attention_bias_from_padding_mask


def _attention_entropy(attention, hidden, bias, real) -> np.ndarray:
    """Normalised entropy per sequence of one SelfAttention layer's probabilities."""
    batch, length = hidden.shape[0], hidden.shape[1]
    q = attention._split_heads(attention.query(hidden), batch, length)
    k = attention._split_heads(attention.key(hidden), batch, length)
    scores = ops.matmul(q, ops.transpose(k, (0, 1, 3, 2)))
    scores = ops.cast(scores, "float32") * (1.0 / attention.head_size**0.5) + ops.cast(bias, "float32")
    probs = np.asarray(ops.softmax(scores, axis=-1))  # [B, heads, L, L]
    entropy = -(probs * np.log(np.clip(probs, 1e-12, 1.0))).sum(-1).mean(1)  # [B, L]
    keys = real.sum(-1, keepdims=True)  # [B, 1]
    normalised = entropy / np.log(np.maximum(keys, 2))
    return (normalised * real).sum(-1) / np.maximum(real.sum(-1), 1)  # [B]


def collapse_signals(backbone, batches) -> dict[str, float | list[float]]:
    """Token cosine and per-layer attention entropy of `backbone` (inference mode) over `batches`."""
    cosines: list[np.ndarray] = []
    entropies: list[list[np.ndarray]] = [[] for _ in backbone.transformer_layers]
    for batch in batches:
        token_ids = ops.convert_to_tensor(np.asarray(batch["token_ids"]), "int32")
        segment_ids = ops.convert_to_tensor(np.asarray(batch["segment_ids"]), "int32")
        mask = np.asarray(batch["padding_mask"]).astype("float32")
        hidden = backbone.embeddings(token_ids, segment_ids, training=False)
        if backbone.embeddings_project is not None:
            hidden = backbone.embeddings_project(hidden)
        bias = attention_bias_from_padding_mask(ops.convert_to_tensor(mask, "int32"))
        for i, block in enumerate(backbone.transformer_layers):
            entropies[i].append(_attention_entropy(block.attention, hidden, bias, mask))
            hidden = block(hidden, bias, training=False)
        vectors = np.asarray(ops.cast(hidden, "float32"))
        vectors = vectors / np.maximum(np.linalg.norm(vectors, axis=-1, keepdims=True), 1e-12)
        for row, real in zip(vectors, mask.astype(bool)):
            n = int(real.sum())
            if n < 2:
                continue
            total = row[real].sum(0)
            # Mean over ordered pairs i != j: (|sum u|^2 - n) / (n (n - 1)).
            cosines.append((float(total @ total) - n) / (n * (n - 1)))
    return {
        "token_cosine": float(np.mean(cosines)) if cosines else float("nan"),
        "attention_entropy": [float(np.mean(np.concatenate(e))) for e in entropies],
    }
