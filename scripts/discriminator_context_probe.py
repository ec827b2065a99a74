"""How fast can a network learn replaced-token detection from context alone?

The discriminator is trained by itself (no generator) to spot tokens replaced by tokens drawn at random
from the same batch. The replacements follow the corpus' own word frequencies, so a token's identity
says nothing and only context can tell: this is what the ELECTRA discriminator faces once its generator
has learned the unigram distribution. Prints the AUC and loss per 50-step window.

    python scripts/discriminator_context_probe.py --steps 800 --learning-rate 2e-3
    python scripts/discriminator_context_probe.py --steps 200 --corruption fixed      # identity cue: easy
    python scripts/discriminator_context_probe.py --steps 200 --network conv          # a 5-token window

`--network electra` is the tiny preset's discriminator (2 layers, hidden 128); `conv` is an embedding, a
width-5 convolution and a dense layer, a network that sees its neighbours from step one. The batches are
packed novels (32 × 128), masking 15% of the tokens other than [CLS], [SEP] and padding.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KERAS_ELECTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO))
from keras_electra import ElectraConfig, ElectraTokenizer  # noqa: E402
from keras_electra.data.pretraining_data import pretraining_dataset  # noqa: E402
from keras_electra.models.discriminator import ElectraDiscriminator  # noqa: E402
from keras_electra.optimization import create_optimizer  # noqa: E402

BATCH, LENGTH, RATE, WINDOW = 32, 128, 0.15, 50


def conv_network(vocab_size: int) -> keras.Model:
    inputs = {name: keras.Input((LENGTH,), dtype="int32", name=name)
              for name in ("token_ids", "segment_ids", "padding_mask")}
    x = keras.layers.Embedding(vocab_size, 64)(inputs["token_ids"])
    x = keras.layers.Conv1D(128, 5, padding="same", activation="gelu")(x)
    x = keras.layers.Dense(128, activation="gelu")(x)
    return keras.Model(inputs, keras.ops.squeeze(keras.layers.Dense(1)(x), -1))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=800)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--corruption", choices=["batch", "fixed"], default="batch",
                        help="batch: tokens drawn from the batch (context needed); fixed: one rare token")
    parser.add_argument("--network", choices=["electra", "conv"], default="electra")
    args = parser.parse_args()

    keras.utils.set_random_seed(0)
    tokenizer = ElectraTokenizer(SHARED / "vocab" / "bert_uncased_vocab.txt")
    data = pretraining_dataset([SHARED / "english_novels"], tokenizer, seq_length=LENGTH, batch_size=BATCH, seed=3)
    if args.network == "conv":
        network = conv_network(tokenizer.vocabulary_size)
    else:
        config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size)
        network = ElectraDiscriminator.from_electra_config(config)
    optimizer = create_optimizer(args.learning_rate, args.steps, warmup_steps=max(1, args.steps // 20))
    special = [tokenizer.special_token_ids[k] for k in ("cls", "sep", "pad")]
    rare = tokenizer.token_to_id("zebra")

    @tf.function
    def train_step(batch):
        ids = batch["token_ids"]
        maskable = tf.reduce_all(tf.stack([ids != s for s in special]), axis=0)
        chosen = tf.logical_and(tf.random.uniform(tf.shape(ids)) < RATE, maskable)
        if args.corruption == "fixed":
            replacements = tf.fill(tf.shape(ids), rare)
        else:
            flat = tf.reshape(ids, [-1])
            replacements = tf.gather(flat, tf.random.uniform(tf.shape(ids), 0, tf.size(flat), dtype=tf.int32))
        corrupted = tf.where(chosen, replacements, ids)
        labels = tf.cast(corrupted != ids, tf.float32)
        weights = tf.cast(batch["padding_mask"], tf.float32)
        with tf.GradientTape() as tape:
            logits = network({**batch, "token_ids": corrupted}, training=True)
            token_loss = tf.nn.sigmoid_cross_entropy_with_logits(labels, logits)
            loss = tf.reduce_sum(token_loss * weights) / tf.reduce_sum(weights)
        grads, _ = tf.clip_by_global_norm(tape.gradient(loss, network.trainable_variables), 1.0)
        optimizer.apply_gradients(zip(grads, network.trainable_variables))
        return loss, labels, logits, weights

    labels_seen, scores, losses = [], [], []
    for step, batch in enumerate(data.take(args.steps), start=1):
        loss, labels, logits, weights = train_step(
            {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        )
        real = weights.numpy() > 0
        labels_seen.append(labels.numpy()[real])
        scores.append(logits.numpy()[real])
        losses.append(float(loss))
        if step % WINDOW == 0:
            auc = roc_auc_score(np.concatenate(labels_seen), np.concatenate(scores))
            print(f"steps {step - WINDOW + 1}-{step}: AUC {auc:.3f}, loss {np.mean(losses):.3f}", flush=True)
            labels_seen, scores, losses = [], [], []


if __name__ == "__main__":
    main()
