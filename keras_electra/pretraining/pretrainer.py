"""`ElectraPretrainer`: generator and discriminator trained jointly by one `train_step`.

Read top to bottom, `_forward` is the whole method of the paper:
mask → generator MLM loss on the masked slots → Gumbel-max sample → "replaced"
labels → discriminator sigmoid loss over every real token → gen + 50 · disc.

The objective is written once, here, in `keras.ops`. What differs per backend is only how a
step turns it into gradients, and that lives in `pretraining/steps.py` (imported lazily, so this
module needs no TensorFlow): a `tf.GradientTape` step under `tf.distribute` on TensorFlow, and a
stateless `jax.value_and_grad` step (Keras' `train_step(state, data)` signature) on JAX.
We drive the objective with thin custom steps rather than Keras' own trainers (`compute_loss`,
`compute_metrics`) because the objective is not a function of `call`'s output: the masks and the
generator's samples are drawn inside the step and must advance the RNG state of
`self.seed_generator` on every backend. Keras' JAX trainer runs `compute_loss` in a scope that
keeps only the metric variables' updates, so the seed state would never move there; and the
metrics need the masks, samples and labels, which `compute_metrics` never sees.
"""

from __future__ import annotations

from typing import Any

import keras
from keras import ops

from keras_electra.config import ElectraConfig, max_predictions_for
from keras_electra.layers.heads import SentencePairHead
from keras_electra.layers.random import FixedNoise
from keras_electra.models.discriminator import ElectraDiscriminator
from keras_electra.models.generator import ElectraGenerator
from keras_electra.pretraining.masking import (
    MASK_SAMPLING,
    gumbel_sample,
    mask_tokens,
    scatter_positions,
    vocab_argmax,
)

OBJECTIVES = ("electra", "mlm")
SENTENCE_OBJECTIVES = (None, "nsp", "sop")


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraPretrainer(keras.Model):
    """Joint ELECTRA pretraining. Every deviation from the paper is a named option.

    Args:
        config: the discriminator's `ElectraConfig` (dict or instance); the generator
            is derived from it (`config.generator_config()`).
        special_token_ids: ids of [CLS], [SEP], [PAD], [MASK] (keys `cls`, `sep`, `pad`, `mask`).
        seq_length: the static sequence length of every batch.
        mask_rate: fraction of tokens to mask (0.15; 0.25 for Large).
        max_predictions: static bound on masked slots; default int((p + 0.005) · L).
        mask_token_rate / random_token_rate: of the masked tokens, the share that
            becomes [MASK] / a random token; the rest stay unchanged (0.85 / 0.0).
        mask_sampling: "without_replacement" (distinct positions; default) or
            "with_replacement" (the official code); see `pretraining.masking`.
        temperature: Gumbel-max sampling temperature (1.0).
        disallow_correct: forbid the generator from sampling the original token.
        generator_weight / discriminator_weight: loss weights (1 and 50).
        untied_generator_embeddings: give the generator its own embeddings.
        train_generator: False freezes the generator (no dropout, no updates, its loss
            only reported): stage 2 of the paper's two-stage training (section 3.2).
        objective: "electra" or "mlm" (a BERT-style baseline at the discriminator's size).
        sentence_objective: None, "nsp" or "sop": an extra two-way head on [CLS].
    """

    def __init__(
        self,
        config: ElectraConfig | dict,
        special_token_ids: dict[str, int],
        seq_length: int = 128,
        mask_rate: float = 0.15,
        max_predictions: int | None = None,
        mask_token_rate: float = 0.85,
        random_token_rate: float = 0.0,
        temperature: float = 1.0,
        disallow_correct: bool = False,
        generator_weight: float = 1.0,
        discriminator_weight: float = 50.0,
        untied_generator_embeddings: bool = False,
        train_generator: bool = True,
        objective: str = "electra",
        sentence_objective: str | None = None,
        seed: int | None = None,
        mask_sampling: str = "without_replacement",
        **kwargs,
    ) -> None:
        super().__init__(**kwargs)
        self.config = config if isinstance(config, ElectraConfig) else ElectraConfig.from_dict(config)
        _check_options(objective, sentence_objective, mask_rate, mask_token_rate, random_token_rate,
                       temperature, seq_length, self.config)
        if objective == "mlm" and not train_generator:
            raise ValueError("objective='mlm' trains only the generator; train_generator=False leaves nothing to train")
        missing = {"cls", "sep", "pad", "mask"} - set(special_token_ids)
        if missing:
            raise ValueError(f"special_token_ids lacks {sorted(missing)}")
        self.special_token_ids = {k: int(v) for k, v in special_token_ids.items()}
        self.seq_length = seq_length
        self.mask_rate = mask_rate
        self.max_predictions = max_predictions or max_predictions_for(seq_length, mask_rate)
        self.mask_token_rate = mask_token_rate
        self.random_token_rate = random_token_rate
        if mask_sampling not in MASK_SAMPLING:
            raise ValueError(f"mask_sampling must be one of {MASK_SAMPLING}, got {mask_sampling!r}")
        self.mask_sampling = mask_sampling
        self.temperature = temperature
        self.disallow_correct = disallow_correct
        self.generator_weight = generator_weight
        self.discriminator_weight = discriminator_weight
        self.untied_generator_embeddings = untied_generator_embeddings
        self.train_generator = train_generator
        self.objective = objective
        self.sentence_objective = sentence_objective
        self.seed = seed
        self.seed_generator = keras.random.SeedGenerator(seed)
        self._fixed_noise: FixedNoise | None = None

        policy = self.dtype_policy
        if objective == "electra":
            self.discriminator = ElectraDiscriminator.from_electra_config(
                self.config, name="discriminator", dtype=policy
            )
            shared = None if untied_generator_embeddings else self.discriminator.backbone.embeddings
            self.generator = ElectraGenerator.from_electra_config(
                self.config, embeddings=shared, name="generator", dtype=policy
            )
            if not train_generator:
                if shared is not None:
                    raise ValueError("train_generator=False needs untied_generator_embeddings=True "
                                     "(a frozen generator cannot share the discriminator's embeddings)")
                self.generator.trainable = False
        else:  # MLM baseline: one masked LM as large as the discriminator.
            self.discriminator = None
            self.generator = ElectraGenerator.from_electra_config(
                self.config.replace(generator_fraction=1.0), name="generator", dtype=policy
            )
        self.sentence_head = None
        if sentence_objective:
            self.sentence_head = SentencePairHead(
                self.encoder.hidden_size, self.config.initializer_range,
                name="sentence_predictions", dtype=policy,
            )
            self.sentence_head.build((None, self.encoder.hidden_size))
        self._build_metrics()

    # ------------------------------------------------------------------ structure
    @property
    def encoder(self):
        """The backbone that fine-tuning starts from."""
        model = self.discriminator if self.discriminator is not None else self.generator
        return model.backbone

    def _build_metrics(self) -> None:
        M = keras.metrics
        self.loss_tracker = M.Mean(name="loss")
        self.gen_loss = M.Mean(name="gen_loss")
        self.gen_accuracy = M.Mean(name="gen_accuracy")
        self.tracked_metrics = [self.loss_tracker, self.gen_loss, self.gen_accuracy]
        if self.objective == "electra":
            self.disc_loss = M.Mean(name="disc_loss")
            self.disc_accuracy = M.BinaryAccuracy(name="disc_accuracy", threshold=0.5)
            self.disc_precision = M.Precision(name="disc_precision", thresholds=0.5)
            self.disc_recall = M.Recall(name="disc_recall", thresholds=0.5)
            self.disc_auc = M.AUC(name="disc_auc", num_thresholds=200)
            self.sampled_equals_original = M.Mean(name="sampled_equals_original")
            self.tracked_metrics += [
                self.disc_loss, self.disc_accuracy, self.disc_precision, self.disc_recall,
                self.disc_auc, self.sampled_equals_original,
            ]
        if self.sentence_objective:
            self.sentence_loss = M.Mean(name="sentence_loss")
            self.sentence_accuracy = M.Mean(name="sentence_accuracy")
            self.tracked_metrics += [self.sentence_loss, self.sentence_accuracy]

    @property
    def metrics(self):
        return list(self.tracked_metrics)

    def build(self, input_shape=None) -> None:
        ids = self.special_token_ids
        dummy = dummy_batch(2, self.seq_length, ids["cls"], ids["sep"], ids["pad"],
                            with_sentence_label=bool(self.sentence_objective))
        self._forward(dummy, training=False)
        self.built = True

    def _maybe_symbolic_build(self, iterator=None, data_batch=None):
        # Keras' TensorFlow trainer all-reduces a first batch to build the model before fit/evaluate;
        # MultiWorkerMirroredStrategy cannot reduce a dict of per-replica tensors (ValueError), and
        # `build()` has already run the real forward pass, so a built model skips it.
        unbuilt = not all(layer.built for layer in self._flatten_layers())
        if unbuilt or (self.optimizer is not None and not self.optimizer.built):
            super()._maybe_symbolic_build(iterator=iterator, data_batch=data_batch)

    def fix_noise(self, noise: FixedNoise | None) -> None:
        """Tests only: draw the masks and the generator's samples from `noise` (numpy, the same on
        every backend) instead of `seed_generator`; None restores the seed generator. Dropout is not
        covered (give the config dropout 0)."""
        self._fixed_noise = noise
        # A compiled step has the noise baked in: trace it again.
        self.train_function = self.test_function = self.predict_function = None

    def _random_source(self):
        if self._fixed_noise is None:
            return self.seed_generator
        self._fixed_noise.restart()
        return self._fixed_noise

    # -------------------------------------------------------------------- forward
    def call(self, inputs, training=None):
        """Discriminator logits for given inputs (no masking); handy for inspection."""
        model = self.discriminator if self.discriminator is not None else self.generator
        return model(_model_inputs(inputs), training=training)

    def _forward(self, batch: dict, training: bool) -> tuple[dict[str, Any], dict[str, Any]]:
        inputs = _model_inputs(batch)
        token_ids = ops.cast(inputs["token_ids"], "int32")
        padding_mask = ops.cast(inputs["padding_mask"], "int32")
        ids = self.special_token_ids
        rng = self._random_source()  # self.seed_generator (stateful on every backend)

        # 1. Mask dynamically, inside the graph.
        masked = mask_tokens(
            token_ids, padding_mask, seed=rng,
            mask_rate=self.mask_rate, max_predictions=self.max_predictions,
            mask_token_id=ids["mask"], special_token_ids=(ids["cls"], ids["sep"], ids["pad"]),
            vocab_size=self.config.vocab_size, mask_token_rate=self.mask_token_rate,
            random_token_rate=self.random_token_rate, mask_sampling=self.mask_sampling,
        )

        # 2. Generator: MLM loss on the gathered masked slots only.
        gen_inputs = {**inputs, "token_ids": masked.token_ids}
        gen_logits = self.generator(
            gen_inputs, mask_positions=masked.positions, training=training and self.train_generator
        )
        gen_logits = ops.cast(gen_logits, "float32")
        token_loss = keras.losses.sparse_categorical_crossentropy(
            masked.target_ids, gen_logits, from_logits=True
        )
        gen_loss = _weighted_mean(token_loss, masked.weights)
        gen_correct = ops.cast(ops.equal(vocab_argmax(gen_logits), masked.target_ids), "float32")
        # A frozen generator's loss is only reported.
        gen_weight = self.generator_weight if self.train_generator else 0.0
        losses = {"gen_loss": gen_loss, "loss": gen_weight * gen_loss}
        outputs = {"masked": masked, "gen_correct": gen_correct}
        if self.objective == "electra":
            # 3. Sample replacements (float32, no gradient) and label what changed.
            sampled = gumbel_sample(
                ops.stop_gradient(gen_logits), rng, self.temperature,
                disallow_ids=masked.target_ids if self.disallow_correct else None,
            )
            fake_ids, written = scatter_positions(token_ids, masked.positions, masked.weights, sampled)
            replaced = ops.cast(written * ops.cast(ops.not_equal(fake_ids, token_ids), "int32"), "float32")
            # 4. Discriminator: sigmoid loss averaged over every non-padding token.
            disc_inputs = {**inputs, "token_ids": fake_ids}
            hidden = self.discriminator.backbone(disc_inputs, training=training)
            disc_logits = ops.cast(self.discriminator.rtd_head(hidden), "float32")
            token_weights = ops.cast(padding_mask, "float32")
            disc_token_loss = ops.binary_crossentropy(replaced, disc_logits, from_logits=True)
            disc_loss = _weighted_mean(disc_token_loss, token_weights)
            losses["disc_loss"] = disc_loss
            losses["loss"] = losses["loss"] + self.discriminator_weight * disc_loss
            outputs.update(
                replaced=replaced, disc_probs=ops.sigmoid(disc_logits), token_weights=token_weights,
                sampled_equal=ops.cast(ops.equal(sampled, masked.target_ids), "float32"),
            )
        else:
            hidden = self.generator.backbone(inputs, training=training) if self.sentence_head else None
        if self.sentence_head is not None:
            logits = ops.cast(self.sentence_head(hidden[:, 0, :], training=training), "float32")
            labels = ops.cast(batch["sentence_label"], "int32")
            sentence_loss = ops.mean(
                keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True)
            )
            losses["sentence_loss"] = sentence_loss
            losses["loss"] = losses["loss"] + sentence_loss
            outputs["sentence_correct"] = ops.cast(ops.equal(ops.argmax(logits, -1), labels), "float32")
        return losses, outputs

    # ------------------------------------------------------------- train / test
    # `_forward` + `_update_metrics` are the step; steps.py differentiates them per backend
    # (TensorFlow: train_step(data); JAX: train_step(state, data) -> (logs, state)).
    def train_step(self, *args):
        from keras_electra.pretraining import steps

        return steps.train_step(self, *args)

    def test_step(self, *args):
        from keras_electra.pretraining import steps

        return steps.test_step(self, *args)

    def _update_metrics(self, losses, outputs) -> dict:
        masked = outputs["masked"]
        self.loss_tracker.update_state(losses["loss"])
        self.gen_loss.update_state(losses["gen_loss"])
        self.gen_accuracy.update_state(outputs["gen_correct"], sample_weight=masked.weights)
        if self.objective == "electra":
            weights = outputs["token_weights"]
            self.disc_loss.update_state(losses["disc_loss"])
            for metric in (self.disc_accuracy, self.disc_precision, self.disc_recall, self.disc_auc):
                metric.update_state(outputs["replaced"], outputs["disc_probs"], sample_weight=weights)
            self.sampled_equals_original.update_state(outputs["sampled_equal"], sample_weight=masked.weights)
        if self.sentence_head is not None:
            self.sentence_loss.update_state(losses["sentence_loss"])
            self.sentence_accuracy.update_state(outputs["sentence_correct"])
        return {m.name: m.result() for m in self.metrics}

    # --------------------------------------------------------------- serialise
    def get_config(self) -> dict:
        return {
            **super().get_config(),
            "config": self.config.to_dict(),
            "special_token_ids": self.special_token_ids,
            "seq_length": self.seq_length,
            "mask_rate": self.mask_rate,
            "max_predictions": self.max_predictions,
            "mask_token_rate": self.mask_token_rate,
            "random_token_rate": self.random_token_rate,
            "mask_sampling": self.mask_sampling,
            "temperature": self.temperature,
            "disallow_correct": self.disallow_correct,
            "generator_weight": self.generator_weight,
            "discriminator_weight": self.discriminator_weight,
            "untied_generator_embeddings": self.untied_generator_embeddings,
            "train_generator": self.train_generator,
            "objective": self.objective,
            "sentence_objective": self.sentence_objective,
            "seed": self.seed,
        }


def _check_options(objective, sentence_objective, mask_rate, mask_token_rate, random_token_rate,
                   temperature, seq_length, config: ElectraConfig) -> None:
    if objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r}")
    if sentence_objective not in SENTENCE_OBJECTIVES:
        raise ValueError(f"sentence_objective must be one of {SENTENCE_OBJECTIVES}, got {sentence_objective!r}")
    if not 0.0 < mask_rate < 1.0:
        raise ValueError(f"mask_rate must be in (0, 1), got {mask_rate}")
    if mask_token_rate < 0 or random_token_rate < 0 or mask_token_rate + random_token_rate > 1.0:
        raise ValueError(
            f"mask_token_rate ({mask_token_rate}) + random_token_rate ({random_token_rate}) must be within [0, 1]"
        )
    if temperature <= 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    if not 8 <= seq_length <= config.max_position_embeddings:
        raise ValueError(
            f"seq_length must be between 8 and max_position_embeddings ({config.max_position_embeddings}), "
            f"got {seq_length}"
        )


def _unpack(data):
    if isinstance(data, tuple):  # (x,) or (x, y, sample_weight) from keras adapters
        data = data[0]
    return data


def _model_inputs(batch: dict) -> dict:
    return {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}


def _weighted_mean(values, weights):
    weights = ops.cast(weights, "float32")
    return ops.sum(ops.cast(values, "float32") * weights) / (ops.sum(weights) + 1e-6)


def dummy_batch(batch_size: int, seq_length: int, cls_id: int, sep_id: int, pad_id: int,
                with_sentence_label: bool = False) -> dict:
    """A tiny valid batch ([CLS] tokens [SEP] padding) used to build variables."""
    filler = max(cls_id, sep_id, pad_id) + 1
    token_ids = ops.concatenate(
        [ops.full((batch_size, 1), cls_id), ops.full((batch_size, seq_length - 3), filler),
         ops.full((batch_size, 1), sep_id), ops.full((batch_size, 1), pad_id)], axis=1,
    )
    padding = ops.concatenate([ops.ones((batch_size, seq_length - 1)), ops.zeros((batch_size, 1))], axis=1)
    batch = {
        "token_ids": ops.cast(token_ids, "int32"),
        "segment_ids": ops.zeros((batch_size, seq_length), "int32"),
        "padding_mask": ops.cast(padding, "int32"),
    }
    if with_sentence_label:
        batch["sentence_label"] = ops.zeros((batch_size,), "int32")
    return batch
