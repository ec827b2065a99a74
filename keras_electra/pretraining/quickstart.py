"""The quickstart: vocabulary → tiny ELECTRA pretraining → metrics → replaced-token detection demo.

With no corpus given it uses real English text that Python itself ships: the language
reference topics of `pydoc_data` (about 65,000 words), written out as paragraphs.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.pretraining.trainer import PretrainingOptions, run_pretraining

DEMO_SENTENCE = "the assert statement is a convenient way to insert debugging assertions into a program ."
DEMO_WORD = "convenient"
DEMO_REPLACEMENTS = ("green", "simple", "different", "small", "new", "large", "same")
METRIC_ROWS = (
    ("gen_accuracy", "generator MLM accuracy"),
    ("gen_loss", "generator MLM loss"),
    ("disc_accuracy", "discriminator accuracy"),
    ("disc_precision", "discriminator precision"),
    ("disc_recall", "discriminator recall"),
    ("disc_auc", "discriminator AUC"),
    ("disc_loss", "discriminator loss"),
)


def write_builtin_corpus(path: Path) -> Path:
    """Python's reference-manual topics as one paragraph per line (hard wraps joined)."""
    from pydoc_data.topics import topics

    paragraphs = []
    for text in topics.values():
        for block in re.split(r"\n\s*\n", text):
            lines = [line.strip() for line in block.splitlines()]
            # Skip code samples, grammar rules and underlines: keep prose.
            if not lines or block.startswith(("   ", "\t")) or set(lines[-1]) <= set("*=-^~"):
                continue
            paragraph = " ".join(line for line in lines if line)
            if len(paragraph.split()) >= 5:
                paragraphs.append(paragraph)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(paragraphs) + "\n", encoding="utf-8")
    return path


def pick_replacement(tokenizer: ElectraTokenizer, original: str) -> str:
    """The first demo replacement that is one whole token in this vocabulary (clearer to read)."""
    for word in DEMO_REPLACEMENTS:
        if word != original and len(tokenizer.tokenize([word]).to_list()[0]) == 1:
            return word
    return DEMO_REPLACEMENTS[0]


def replaced_token_demo(discriminator, tokenizer: ElectraTokenizer, sentence: str, swap: tuple[str, str],
                        seq_length: int) -> list[tuple[str, float]]:
    """Per-token probability, from the discriminator, that each token of `sentence` was replaced."""
    original, replacement = swap
    corrupted = re.sub(rf"\b{original}\b", replacement, sentence, count=1)
    ids = [tokenizer.cls_id, *tokenizer.tokenize([corrupted]).to_list()[0], tokenizer.sep_id][:seq_length]
    length = len(ids)
    token_ids = np.full((1, seq_length), tokenizer.pad_id, dtype="int32")
    token_ids[0, :length] = ids
    mask = np.zeros((1, seq_length), dtype="int32")
    mask[0, :length] = 1
    logits = discriminator.predict(
        {"token_ids": token_ids, "segment_ids": np.zeros_like(token_ids), "padding_mask": mask}, verbose=0
    )
    probs = 1.0 / (1.0 + np.exp(-logits[0, :length]))
    return [(tokenizer.id_to_token(i), float(p)) for i, p in zip(ids, probs)]


def run_quickstart(corpus: list[str] | None, output_dir: str | Path, steps: int = 300, batch_size: int = 32,
                   seq_length: int = 128, vocab_size: int = 4000, seed: int = 0) -> dict:
    from keras_electra.data.vocab_builder import build_vocabulary

    output_dir = Path(output_dir)
    if not corpus:
        corpus = [str(write_builtin_corpus(output_dir / "corpus" / "python_reference.txt"))]
        print(f"Corpus: Python's language reference (pydoc_data), written to {corpus[0]}")
    else:
        print(f"Corpus: {', '.join(corpus)}")

    vocab_path = output_dir / "vocab.txt"
    if not vocab_path.is_file():
        print(f"[1/5] Building a {vocab_size}-token WordPiece vocabulary ...")
        tokens = build_vocabulary(corpus, vocab_size=vocab_size, output=vocab_path)
        print(f"      {len(tokens)} tokens written to {vocab_path}")
    else:
        print(f"[1/5] Reusing the vocabulary in {vocab_path}")

    print(f"[2/5] Pretraining a tiny ELECTRA for {steps} steps (batch {batch_size}, length {seq_length}) ...")
    options = PretrainingOptions(
        preset="tiny", sources=corpus, vocab=str(vocab_path), steps=steps, batch_size=batch_size,
        seq_length=seq_length, warmup_steps=max(1, steps // 10), seed=seed, log_every=25,
        checkpoint_every=100, eval_batches=8,
    )
    result = run_pretraining(options, output_dir)

    print("[3/5] Metrics on fixed evaluation batches (same masks), before and after pretraining:")
    print(f"      {'metric':<28}{'before':>10}{'after':>10}")
    for key, label in METRIC_ROWS:
        print(f"      {label:<28}{result['before'][key]:>10.4f}{result['after'][key]:>10.4f}")

    import keras

    discriminator = keras.saving.load_model(output_dir / "discriminator" / "model.keras")
    tokenizer = ElectraTokenizer.from_directory(output_dir / "discriminator")
    swap = (DEMO_WORD, pick_replacement(tokenizer, DEMO_WORD))
    print(f"[4/5] Replaced-token detection: '{swap[0]}' swapped for '{swap[1]}' in")
    print(f"      \"{DEMO_SENTENCE}\"")
    for token, prob in replaced_token_demo(discriminator, tokenizer, DEMO_SENTENCE, swap, seq_length):
        bar = "#" * round(prob * 30)
        print(f"      {token:<16}{prob:6.3f} {bar}")

    print(f"[5/5] Saved: {output_dir / 'discriminator'} (fine-tune this), {output_dir / 'generator'},")
    print(f"      metrics in {output_dir / 'metrics.json'}, TensorBoard logs in {output_dir / 'logs'}")
    return result
