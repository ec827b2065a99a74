"""The released ELECTRA checkpoints we know by name, and where each one comes from.

Standard library only: `keras-electra models` prints this table without importing
TensorFlow or Keras. `keras_electra.convert.resolve` turns a name into a local path;
a name not listed here can still be any Hugging Face id (`org/name`) or keras-hub preset.

Sources of the figures:
- G = google-research/electra README (commit 8a46635): TF1 zip URLs, parameter counts,
  GLUE *test* scores, and the "expected results" (GLUE *dev*, median of many fine-tuning
  seeds; ../shared/reference/ELECTRA-NOTES.md section 2.3). The English models are
  uncased (BERT's uncased 30,522-token vocabulary) and Apache-2.0 (its LICENSE).
- KH = keras-hub 0.32 `electra_presets.py`: Kaggle handles and parameter counts.
- CE = ymcui/Chinese-ELECTRA README_EN (commit 3765b2d): Apache-2.0; its TF1 zips are only
  on Baidu Pan behind a password, so they are reached here through their Hugging Face ids.
"""

from __future__ import annotations

import dataclasses

GOOGLE_RELEASES_URL = "https://storage.googleapis.com/electra-data"

# GLUE dev medians from G's "expected results" (CoLA MCC, SST, MRPC, STS Spearman, QQP, MNLI, QNLI, RTE),
# then SQuAD 1.1 / 2.0 dev EM. Generators have no published downstream scores.
_SMALL = "GLUE test 77.4 (G); dev CoLA 57.0 SST 91.2 MRPC 88.0 STS 87.5 QQP 89.0 MNLI 81.3 QNLI 88.4 RTE 66.7; " \
         "SQuAD1.1 EM 75.8, 2.0 EM 70.1"
_BASE = "GLUE test 82.7 (G); dev CoLA 67.7 SST 95.1 MRPC 89.5 STS 91.2 QQP 91.5 MNLI 88.8 QNLI 93.2 RTE 82.7; " \
        "SQuAD1.1 EM 86.8, 2.0 EM 80.5"
_LARGE = "GLUE test 85.2 (G); dev CoLA 69.1 SST 96.9 MRPC 90.8 STS 92.6 QQP 92.4 MNLI 90.9 QNLI 95.0 RTE 88.0; " \
         "SQuAD1.1 EM 89.7, 2.0 EM 88.1"
_GENERATOR = "none published (generator)"
_ENGLISH_VOCAB = "BERT uncased, 30522"


@dataclasses.dataclass(frozen=True)
class KnownCheckpoint:
    name: str  # what the user types
    kind: str  # "hf" (Hugging Face id), "keras-hub" (preset name) or "tf1" (Google zip)
    source: str  # the URL or handle the files come from
    holds: str  # discriminator, generator, both, or backbone
    params: str  # parameter count as published
    vocab: str
    cased: bool
    licence: str
    scores: str  # published scores of this checkpoint (or of the model it is a copy of)


def _hf(name: str, holds: str, params: str, scores: str, vocab: str = _ENGLISH_VOCAB) -> KnownCheckpoint:
    return KnownCheckpoint(name, "hf", f"https://huggingface.co/{name}", holds, params, vocab, False,
                           "Apache-2.0", scores)


def _kh(name: str, holds: str, params: int, scores: str) -> KnownCheckpoint:
    handle = f"kaggle://keras/electra/keras/{name}/2"
    return KnownCheckpoint(name, "keras-hub", handle, holds, f"{params / 1e6:.1f}M", _ENGLISH_VOCAB, False,
                           "Apache-2.0", scores)


def _tf1(name: str, params: str, scores: str) -> KnownCheckpoint:
    return KnownCheckpoint(name, "tf1", f"{GOOGLE_RELEASES_URL}/{name}.zip", "both (discriminator + generator)",
                           params, _ENGLISH_VOCAB, False, "Apache-2.0", scores)


_CHINESE_VOCAB = "Chinese BERT, 21128"

CATALOG: tuple[KnownCheckpoint, ...] = (
    # Google's original TF1 releases: the ++ models (Small++, Base++, ELECTRA-1.75M; G README).
    _tf1("electra_small", "14M", _SMALL),
    _tf1("electra_base", "110M", _BASE),
    _tf1("electra_large", "335M", _LARGE),
    # The same weights on the Hugging Face hub, one repository per net.
    _hf("google/electra-small-discriminator", "discriminator", "14M", _SMALL),
    _hf("google/electra-small-generator", "generator", "14M", _GENERATOR),
    _hf("google/electra-base-discriminator", "discriminator", "110M", _BASE),
    _hf("google/electra-base-generator", "generator", "34M", _GENERATOR),
    _hf("google/electra-large-discriminator", "discriminator", "335M", _LARGE),
    _hf("google/electra-large-generator", "generator", "51M", _GENERATOR),
    # keras-hub presets (Kaggle): the encoder only, no RTD or MLM head (see convert/keras_hub.py).
    _kh("electra_small_discriminator_uncased_en", "backbone", 13548800, _SMALL),
    _kh("electra_small_generator_uncased_en", "backbone", 13548800, _GENERATOR),
    _kh("electra_base_discriminator_uncased_en", "backbone", 109482240, _BASE),
    _kh("electra_base_generator_uncased_en", "backbone", 33576960, _GENERATOR),
    _kh("electra_large_discriminator_uncased_en", "backbone", 335141888, _LARGE),
    _kh("electra_large_generator_uncased_en", "backbone", 51065344, _GENERATOR),
    # Chinese ELECTRA (CE): its TF1 zips are not publicly downloadable (Baidu Pan, password), so by HF id.
    _hf("hfl/chinese-electra-small-discriminator", "discriminator", "12M",
        "CMRC2018 dev EM/F1 63.4/80.8, XNLI dev 73.3, ChnSentiCorp dev 92.8 (CE)", _CHINESE_VOCAB),
    _hf("hfl/chinese-electra-180g-small-discriminator", "discriminator", "12M", "see CE README", _CHINESE_VOCAB),
    _hf("hfl/chinese-electra-180g-small-ex-discriminator", "discriminator", "25M", "see CE README", _CHINESE_VOCAB),
    _hf("hfl/chinese-electra-180g-base-discriminator", "discriminator", "102M", "see CE README", _CHINESE_VOCAB),
    _hf("hfl/chinese-electra-180g-large-discriminator", "discriminator", "324M", "see CE README", _CHINESE_VOCAB),
)
BY_NAME = {entry.name: entry for entry in CATALOG}
TF1_RELEASES = {entry.name: entry for entry in CATALOG if entry.kind == "tf1"}
KERAS_HUB_PRESETS = {entry.name: entry for entry in CATALOG if entry.kind == "keras-hub"}


def lookup(name: str) -> KnownCheckpoint | None:
    return BY_NAME.get(name.split("@", 1)[0])


def format_table(entries: tuple[KnownCheckpoint, ...] = CATALOG, wide: bool = False) -> str:
    """A plain-text table: name, kind, holds, params, vocab, casing, licence, headline score (+ each source
    and every published score when `wide`)."""
    header = ["name", "kind", "holds", "params", "vocab", "casing", "licence", "published"]
    rows = [[e.name, e.kind, e.holds.split(" ")[0], e.params, e.vocab, "cased" if e.cased else "uncased", e.licence,
             e.scores.split(";")[0]] for e in entries]
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]
    if wide:
        lines.append("")
        for e in entries:
            lines.append(f"{e.name}\n    source: {e.source}\n    scores: {e.scores}")
    return "\n".join(lines)
