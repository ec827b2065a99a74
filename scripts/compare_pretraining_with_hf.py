"""Training dynamics against the reference: the same ELECTRA recipe, data and sizes in keras_electra and in
Hugging Face transformers (PyTorch), reported per 100-step window (discriminator loss and AUC, generator
accuracy). Run each side as its own process:

    python scripts/compare_pretraining_with_hf.py keras 600
    python scripts/compare_pretraining_with_hf.py torch 600

Both use the tiny preset, batch 16, length 64, LR 2e-3 with 50 warm-up steps and linear decay, AdamW
(ε 1e-6, weight decay 0.01 except LayerNorm and biases, bias-corrected like torch.optim.AdamW), clipping at
1.0, 85/15 masking, Gumbel sampling
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
sys.path.insert(0, str(REPO / "benchmarks"))  # hf_reference
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
    from keras_electra.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    keras.utils.set_random_seed(0)
    pretrainer = ElectraPretrainer(ElectraConfig.from_preset("tiny", vocab_size=30522), SPECIAL,
                                   seq_length=LENGTH, seed=0)
    pretrainer.build()
    pretrainer.compile(optimizer=create_optimizer(LR, STEPS, WARMUP, bias_correction=True), jit_compile=False)
    columns = {k: np.concatenate([b[k] for b in batches]) for k in batches[0]}
    data = tf.data.Dataset.from_tensor_slices(columns).batch(BATCH)
    history = pretrainer.fit(data, steps_per_epoch=100, epochs=STEPS // 100, verbose=0).history
    for i in range(STEPS // 100):  # Keras resets the metrics every epoch: one window each
        report("keras", 100 * i, history["disc_loss"][i], history["disc_auc"][i], history["gen_accuracy"][i])


def run_torch(batches: list[dict]) -> None:
    from hf_reference import TorchElectra
    from sklearn.metrics import roc_auc_score

    reference = TorchElectra("tiny", LR, STEPS, WARMUP, LENGTH, special=SPECIAL)
    window: list = []
    for step, batch in enumerate(batches):
        window.append(reference.step(batch))
        if step % 100 == 99:
            auc = roc_auc_score(np.concatenate([r.replaced for r in window]),
                                np.concatenate([r.probabilities for r in window]))
            report("torch", step - 99, float(np.mean([r.disc_loss for r in window])), auc,
                   float(np.mean([r.gen_accuracy for r in window])))
            window = []


if __name__ == "__main__":
    if len(sys.argv) != 3 or sys.argv[1] not in ("keras", "torch"):
        sys.exit("usage: compare_pretraining_with_hf.py keras|torch STEPS")
    (run_keras if sys.argv[1] == "keras" else run_torch)(novel_batches())
