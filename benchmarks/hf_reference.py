"""The reference ELECTRA pretraining step in Hugging Face transformers (PyTorch), with keras_electra's recipe.

Used by `benchmarks/pretrain_throughput.py` (speed) and `scripts/compare_pretraining_with_hf.py`
(training dynamics): generator and discriminator share word, position and type embeddings and the
embedding LayerNorm, the MLM output is tied to the word embeddings; masking takes round(len·0.15)
distinct non-special positions (at most int(0.155·L)), 85% become [MASK]; Gumbel-max sampling without
gradient; loss = MLM + 50 × the discriminator's sigmoid loss over non-padding tokens; AdamW (ε 1e-6,
weight decay 0.01 except LayerNorm and biases), clipping at 1.0, linear warm-up × linear decay.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

BERT_SPECIAL = {"cls": 101, "sep": 102, "pad": 0, "mask": 103}


@dataclass
class StepResult:
    disc_loss: float
    replaced: np.ndarray  # labels of the non-padding tokens
    probabilities: np.ndarray  # the discriminator's P(replaced) for them
    gen_accuracy: float


class TorchElectra:
    def __init__(self, preset: str, learning_rate: float, total_steps: int, warmup_steps: int, seq_length: int,
                 vocab_size: int = 30522, special: dict[str, int] | None = None, seed: int = 0) -> None:
        import torch
        from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

        from keras_electra.config import ElectraConfig as OurConfig

        torch.manual_seed(seed)
        ours = OurConfig.from_preset(preset, vocab_size=vocab_size)

        def hf_config(c):
            return ElectraConfig(vocab_size=c.vocab_size, embedding_size=c.embedding_size,
                                 hidden_size=c.hidden_size, num_hidden_layers=c.num_layers,
                                 num_attention_heads=c.num_heads, intermediate_size=c.intermediate_size,
                                 max_position_embeddings=c.max_position_embeddings)

        self.special = special or BERT_SPECIAL
        self.disc = ElectraForPreTraining(hf_config(ours))
        self.gen = ElectraForMaskedLM(hf_config(ours.generator_config()))
        self.gen.electra.embeddings = self.disc.electra.embeddings  # shared embeddings, LayerNorm included
        self.gen.generator_lm_head.weight = self.disc.electra.embeddings.word_embeddings.weight
        named = {id(p): (n, p) for m in (self.disc, self.gen) for n, p in m.named_parameters()}
        no_decay = [p for n, p in named.values() if "LayerNorm" in n or "bias" in n]
        decay = [p for n, p in named.values() if not ("LayerNorm" in n or "bias" in n)]
        self.params = decay + no_decay
        self.optimizer = torch.optim.AdamW(
            [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
            lr=learning_rate, eps=1e-6)
        self.schedule = torch.optim.lr_scheduler.LambdaLR(
            self.optimizer, lambda s: min(1.0, s / max(warmup_steps, 1)) * max(0.0, 1 - s / total_steps))
        self.max_predictions = int((0.15 + 0.005) * seq_length)
        self.disc.train()
        self.gen.train()

    def step(self, batch: dict[str, np.ndarray]) -> StepResult:
        import torch

        special = self.special
        ids = torch.from_numpy(batch["token_ids"]).long()
        attention = torch.from_numpy(batch["padding_mask"]).long()
        types = torch.from_numpy(batch["segment_ids"]).long()
        candidates = (attention == 1) & (ids != special["cls"]) & (ids != special["sep"])
        scores = torch.where(candidates, torch.rand(ids.shape), torch.full(ids.shape, -1.0))
        positions = scores.topk(self.max_predictions, dim=1).indices
        count = (attention.sum(1).float() * 0.15).round().clamp(1, self.max_predictions).long()
        used = torch.arange(self.max_predictions)[None, :] < count[:, None]
        masked = torch.zeros_like(ids, dtype=torch.bool).scatter(1, positions, used)
        to_mask = masked & (torch.rand(ids.shape) < 0.85)
        gen_ids = torch.where(to_mask, torch.full_like(ids, special["mask"]), ids)
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        out = self.gen(input_ids=gen_ids, attention_mask=attention, token_type_ids=types, labels=labels)
        with torch.no_grad():
            logits = out.logits.float()
            gumbel = -torch.log(-torch.log(torch.rand(logits.shape) + 1e-9) + 1e-9)
            sampled = (logits + gumbel).argmax(-1)
            gen_accuracy = (logits.argmax(-1)[masked] == ids[masked]).float().mean().item()
        fake = torch.where(masked, sampled, ids)
        replaced = (fake != ids).float()
        disc_logits = self.disc(input_ids=fake, attention_mask=attention, token_type_ids=types).logits
        weights = attention.float()
        token_loss = torch.nn.functional.binary_cross_entropy_with_logits(disc_logits, replaced, reduction="none")
        disc_loss = (token_loss * weights).sum() / weights.sum()
        self.optimizer.zero_grad()
        (out.loss + 50.0 * disc_loss).backward()
        torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        self.optimizer.step()
        self.schedule.step()
        real = attention.bool()
        return StepResult(disc_loss.item(), replaced[real].numpy(),
                          torch.sigmoid(disc_logits[real]).detach().numpy(), gen_accuracy)
