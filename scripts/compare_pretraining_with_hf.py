"""Training dynamics against the reference: the same ELECTRA recipe, data and sizes in keras_electra and in
Hugging Face transformers (PyTorch), reported per 100-step window (discriminator loss and AUC, generator
accuracy). Run each side as its own process:

    python scripts/compare_pretraining_with_hf.py keras 600
    python scripts/compare_pretraining_with_hf.py torch 600

Both use the tiny preset, batch 16, length 64, LR 2e-3 with 50 warm-up steps and linear decay, AdamW
(ε 1e-6, weight decay 0.01 except LayerNorm and biases), clipping at 1.0, 85/15 masking, Gumbel sampling
and 50 × the discriminator loss, on the same packed novels batches. The random streams differ, so the two
agree statistically, not bit for bit.
"""
import os
import sys
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("KERAS_ELECTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
sys.path.insert(0, str(REPO))
from keras_electra.data.pretraining_data import pretraining_dataset  # noqa: E402
from keras_electra.data.tokenizer import ElectraTokenizer  # noqa: E402

STEPS, BATCH, LENGTH, LR, WARMUP = int(sys.argv[2]), 16, 64, 2e-3, 50
SPECIAL = {"cls": 101, "sep": 102, "pad": 0, "mask": 103}


def novel_batches() -> list[dict]:
    tokenizer = ElectraTokenizer(SHARED / "vocab" / "bert_uncased_vocab.txt")
    ds = pretraining_dataset([SHARED / "english_novels"], tokenizer, seq_length=LENGTH, batch_size=BATCH, seed=0)
    return [{k: v.numpy() for k, v in b.items()} for b in ds.take(STEPS)]


def report(side: str, start: int, disc_loss: float, auc: float, gen_acc: float) -> None:
    print(f"{side} steps {start}-{start + 99}: disc_loss {disc_loss:.4f} auc {auc:.3f} gen_acc {gen_acc:.3f}")


def run_keras(batches: list[dict]) -> None:
    import keras
    import tensorflow as tf

    from keras_electra.config import ElectraConfig
    from keras_electra.pretraining.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    keras.utils.set_random_seed(0)
    pretrainer = ElectraPretrainer(ElectraConfig.from_preset("tiny", vocab_size=30522), SPECIAL,
                                   seq_length=LENGTH, seed=0)
    pretrainer.build()
    pretrainer.compile(optimizer=create_optimizer(LR, STEPS, WARMUP), jit_compile=False)
    columns = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    data = tf.data.Dataset.from_tensor_slices(columns).batch(BATCH)
    history = pretrainer.fit(data, steps_per_epoch=100, epochs=STEPS // 100, verbose=0).history
    for i in range(STEPS // 100):  # Keras resets the metrics every epoch: one window each
        report("keras", 100 * i, history["disc_loss"][i], history["disc_auc"][i], history["gen_accuracy"][i])


def run_torch(batches: list[dict]) -> None:
    import torch
    from sklearn.metrics import roc_auc_score
    from transformers import ElectraConfig, ElectraForMaskedLM, ElectraForPreTraining

    from keras_electra.config import ElectraConfig as OurConfig

    torch.manual_seed(0)
    ours = OurConfig.from_preset("tiny", vocab_size=30522)

    def hf_config(c):
        return ElectraConfig(vocab_size=c.vocab_size, embedding_size=c.embedding_size, hidden_size=c.hidden_size,
                             num_hidden_layers=c.num_layers, num_attention_heads=c.num_heads,
                             intermediate_size=c.intermediate_size, max_position_embeddings=c.max_position_embeddings)

    disc = ElectraForPreTraining(hf_config(ours))
    gen = ElectraForMaskedLM(hf_config(ours.generator_config()))
    gen.electra.embeddings = disc.electra.embeddings  # shared embeddings, LayerNorm included
    gen.generator_lm_head.weight = disc.electra.embeddings.word_embeddings.weight
    named = {id(p): (n, p) for m in (disc, gen) for n, p in m.named_parameters()}
    no_decay = [p for n, p in named.values() if "LayerNorm" in n or "bias" in n]
    decay = [p for n, p in named.values() if not ("LayerNorm" in n or "bias" in n)]
    params = decay + no_decay
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
                                  lr=LR, eps=1e-6)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: min(1.0, s / WARMUP) * max(0.0, 1 - s / STEPS))
    max_predictions = int((0.15 + 0.005) * LENGTH)
    window: dict[str, list] = {"loss": [], "labels": [], "probs": [], "acc": []}
    for step, batch in enumerate(batches):
        ids = torch.from_numpy(batch["token_ids"]).long()
        attention = torch.from_numpy(batch["padding_mask"]).long()
        types = torch.from_numpy(batch["segment_ids"]).long()
        candidates = (attention == 1) & (ids != SPECIAL["cls"]) & (ids != SPECIAL["sep"])
        scores = torch.where(candidates, torch.rand(ids.shape), torch.full(ids.shape, -1.0))
        positions = scores.topk(max_predictions, dim=1).indices
        count = (attention.sum(1).float() * 0.15).round().clamp(1, max_predictions).long()
        used = torch.arange(max_predictions)[None, :] < count[:, None]
        masked = torch.zeros_like(ids, dtype=torch.bool).scatter(1, positions, used)
        to_mask = masked & (torch.rand(ids.shape) < 0.85)
        gen_ids = torch.where(to_mask, torch.full_like(ids, SPECIAL["mask"]), ids)
        labels = torch.where(masked, ids, torch.full_like(ids, -100))
        out = gen(input_ids=gen_ids, attention_mask=attention, token_type_ids=types, labels=labels)
        with torch.no_grad():
            logits = out.logits.float()
            gumbel = -torch.log(-torch.log(torch.rand(logits.shape) + 1e-9) + 1e-9)
            sampled = (logits + gumbel).argmax(-1)
            window["acc"].append((logits.argmax(-1)[masked] == ids[masked]).float().mean().item())
        fake = torch.where(masked, sampled, ids)
        replaced = (fake != ids).float()
        disc_logits = disc(input_ids=fake, attention_mask=attention, token_type_ids=types).logits
        weights = attention.float()
        token_loss = torch.nn.functional.binary_cross_entropy_with_logits(disc_logits, replaced, reduction="none")
        disc_loss = (token_loss * weights).sum() / weights.sum()
        optimizer.zero_grad()
        (out.loss + 50.0 * disc_loss).backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        schedule.step()
        real = attention.bool()
        window["loss"].append(disc_loss.item())
        window["labels"].append(replaced[real].numpy())
        window["probs"].append(torch.sigmoid(disc_logits[real]).detach().numpy())
        if step % 100 == 99:
            auc = roc_auc_score(np.concatenate(window["labels"]), np.concatenate(window["probs"]))
            report("torch", step - 99, float(np.mean(window["loss"])), auc, float(np.mean(window["acc"])))
            window = {k: [] for k in window}


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("keras", "torch"):
        sys.exit("usage: compare_pretraining_with_hf.py keras|torch STEPS")
    (run_keras if sys.argv[1] == "keras" else run_torch)(novel_batches())
