"""Fine-tuning against a reference: the same real weights fine-tuned by keras_electra (its CLI,
`keras-electra finetune`) and by Hugging Face transformers on PyTorch CPU, on SST-2, MRPC and CoNLL-2003.

    python scripts/compare_finetune_with_hf.py --tasks sst2 mrpc conll2003 --seeds 0 1 2 \\
        --output compare_finetune.json

or one side per process (a core each), merged afterwards:

    python scripts/compare_finetune_with_hf.py --tasks sst2 --threads 1 --side keras --output keras.json
    python scripts/compare_finetune_with_hf.py --tasks sst2 --threads 1 --side hf --output hf.json
    python scripts/compare_finetune_with_hf.py --combine keras.json hf.json --output compare_finetune.json

What is shared, so that only the framework differs:
- Weights: the MiniLM `BertModel` (~/.cache/keras_electra/minilm/hf) is saved once in ELECTRA layout
  (`ElectraModel`, embedding_size = hidden_size, pooler dropped; every tensor checked equal to the BERT one).
  transformers loads that directory as `ElectraForSequenceClassification` / `ElectraForTokenClassification`;
  keras_electra converts the same directory (`keras-electra convert --from hf`) and fine-tunes from it.
  The keras_electra model's encoder is checked equal, tensor by tensor, to the one transformers loaded.
- Head: `--head huggingface` (default) is `ElectraClassificationHead` on both sides (dropout, dense H, GELU,
  dropout, out_proj on [CLS]); `--head electra` is the paper's dropout + dense on [CLS] on both sides (the
  transformers model gets that head swapped in). NER is dropout + dense per token on both sides.
  Biases start at zero. Kernels: `ElectraClassificationHead` a truncated normal (std 0.02, cut at 2 std) on
  both sides, as keras_electra always gives it; the paper's head and the NER head `--head-init`
  (glorot_uniform, the official `tf.layers.dense` default, or truncated_normal), passed to keras_electra
  as `--default-initializer` and drawn on the torch side with `xavier_uniform_` / `trunc_normal_`.
- Data: both sides read the task with keras_electra's reader and sampler (`load_task_data`), so the
  training and dev examples are the same list, including the official `double_unordered` for MRPC
  (every training pair also in the (b, a) order; `--no-double-unordered` turns it off on both sides).
  transformers tokenises with its own `BertTokenizerFast`
  on the same vocab.txt (built with `vocab=`: `vocab_file=` maps every word to [UNK] in transformers 5);
  pairs are cut with the official `_truncate_seq_pair` rule; NER tags sit on each word's first sub-word.
  Before training, every packed training and dev row (ids, segments, mask, NER labels) is checked equal to
  what keras_electra's preprocessor makes of it.
- Recipe: sequence length, batch size, epochs, peak LR, warm-up fraction, layer-wise LR decay, dropout
  (`--dropout`, default 0.1, in the encoder and the head on both sides),
  the official AdamW (eps 1e-6, no weight decay, no bias correction: a small torch optimizer,
  `OfficialAdamW`, does the same update as keras_electra's `ElectraAdamW`; `--adam-bias-correction` turns
  the correction on on both sides), global-norm clipping 1.0, the same LR schedule
  (peak * (1 - t/T) * min(1, t/warm-up), t from 0) and the same seeds. Layer-wise decay is a torch parameter
  group per multiplier; each parameter's multiplier is checked equal to the one keras_electra's
  `layerwise_lr_multipliers` gives the same weight (matched by checkpoint name).
- Selection: `--protocol paper` (default, the official one): a fixed number of epochs and the last
  checkpoint on both sides; `--protocol best-dev`: both keep the epoch with the best dev score (accuracy
  for SST-2 and MRPC, entity F1 for CoNLL) and stop after `--patience` epochs without a better one.
  keras_electra's results.json must record the same protocol, double_unordered, bias correction and head
  init, or the script stops. Scores: accuracy (SST-2, MRPC), F1 of class "1" (MRPC), entity
  micro-F1 with seqeval's default (conlleval) chunking (CoNLL).

Random streams (head init, dropout, shuffling) are each side's own, so each side takes the median over
its seeds. The difference printed is keras_electra minus transformers, in points. To tell a framework
difference from the luck of the draw, `--keras-streams head order` gives the torch side keras_electra's
draws for a seed: `head`, the fresh head's initial numbers (built by `build_task_model` with that seed, as
`keras-electra finetune` builds it); `order`, the batches of the seed's first shuffle of keras_electra's
training dataset, the ones its `fit` trains on (sentence tasks, one epoch). Dropout masks stay torch's.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
# Idle OpenMP threads sleep instead of spinning: on a shared CPU, spinning doubled torch's step time
# (MiniLM, batch 32 x 64, 2 threads: 10-12 s per step against 5-6 s with PASSIVE). Results are unchanged.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

DEFAULT_MODEL = Path.home() / ".cache" / "keras_electra" / "minilm" / "hf"
DEFAULT_DATA = Path(os.environ.get("KERAS_ELECTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
# Task name -> its folder under the shared data.
TASK_DATA = {"sst2": "glue/SST-2", "mrpc": "glue/MRPC", "conll2003": "conll2003"}
# Metrics compared per task (the first one selects the best epoch, as keras_electra's registry does).
TOKEN_TASKS = ("conll2003",)
TASK_METRICS = {"sst2": ("accuracy",), "mrpc": ("accuracy", "f1"), "conll2003": ("f1", "precision", "recall")}
IGNORE_INDEX = -100
HEAD_INITS = ("glorot_uniform", "truncated_normal")
KERAS_STREAMS = ("head", "order")


class ComparisonError(Exception):
    """A check between the two sides failed: printed as one line."""


# ---------------------------------------------------------------------------------------------------- weights
def electra_layout(model_dir: Path, target: Path) -> Path:
    """The BERT checkpoint saved as an `ElectraModel` (no pooler) with its vocab and tokenizer config."""
    import torch
    from transformers import BertModel, ElectraConfig, ElectraModel

    bert = BertModel.from_pretrained(model_dir)
    c = bert.config
    config = ElectraConfig(
        vocab_size=c.vocab_size, embedding_size=c.hidden_size, hidden_size=c.hidden_size,
        num_hidden_layers=c.num_hidden_layers, num_attention_heads=c.num_attention_heads,
        intermediate_size=c.intermediate_size, hidden_act=c.hidden_act, hidden_dropout_prob=c.hidden_dropout_prob,
        attention_probs_dropout_prob=c.attention_probs_dropout_prob,
        max_position_embeddings=c.max_position_embeddings, type_vocab_size=c.type_vocab_size,
        initializer_range=c.initializer_range, layer_norm_eps=c.layer_norm_eps, pad_token_id=c.pad_token_id,
    )
    electra = ElectraModel(config)
    source = {k: v for k, v in bert.state_dict().items() if not k.startswith("pooler.")}
    electra.load_state_dict(source, strict=True)  # same module names: a missing or extra key raises
    for key, value in electra.state_dict().items():
        if not torch.equal(value, source[key]):
            raise ComparisonError(f"{key} changed on the way to ELECTRA layout")
    electra.save_pretrained(target)
    for name in ("vocab.txt", "tokenizer_config.json"):
        if (model_dir / name).is_file():
            shutil.copy(model_dir / name, target / name)
    check_same_tensors(target / "model.safetensors", model_dir / "model.safetensors")
    return target


def check_same_tensors(electra_file: Path, bert_file: Path) -> int:
    """Every tensor of the ELECTRA-layout file is bit for bit the BERT file's (keys with or without `bert.`)."""
    import numpy as np
    from safetensors.numpy import load_file

    bert = {k.removeprefix("bert."): v for k, v in load_file(bert_file).items()}
    electra = load_file(electra_file)
    for key, value in electra.items():
        if key not in bert or value.dtype != bert[key].dtype or not np.array_equal(value, bert[key]):
            raise ComparisonError(f"{electra_file}: {key} differs from {bert_file}")
    return len(electra)


def convert_for_keras(electra_dir: Path, target: Path, env: dict) -> Path:
    """`keras-electra convert --from hf`: the converted backbone directory that `finetune --init` takes."""
    command = [sys.executable, "-m", "keras_electra", "convert", str(electra_dir), "--from", "hf",
               "--output", str(target), "--overwrite"]
    run_logged(command, target.parent / "convert.log", env)
    backbone = target / "backbone"
    if not (backbone / "model.keras").is_file():
        raise ComparisonError(f"convert wrote no {backbone / 'model.keras'}")
    ours = json.loads((backbone / "config.json").read_text())
    theirs = json.loads((electra_dir / "config.json").read_text())
    pairs = {"hidden_dropout": "hidden_dropout_prob", "attention_dropout": "attention_probs_dropout_prob",
             "layer_norm_eps": "layer_norm_eps", "hidden_act": "hidden_act", "num_layers": "num_hidden_layers",
             "hidden_size": "hidden_size", "embedding_size": "embedding_size"}
    for mine, key in pairs.items():
        if ours[mine] != theirs[key]:
            raise ComparisonError(f"converted {mine} {ours[mine]!r} but transformers' {key} is {theirs[key]!r}")
    return backbone


def run_logged(command: list[str], log: Path, env: dict) -> float:
    """Run a CLI command with its output in `log`; its wall time in seconds."""
    start = time.perf_counter()
    with open(log, "w") as handle:
        code = subprocess.run(command, stdout=handle, stderr=subprocess.STDOUT, env=env, cwd=REPO).returncode
    if code:
        tail = log.read_text(errors="replace").strip().splitlines()[-5:]
        raise ComparisonError(f"{' '.join(command[2:5])} failed ({code}); see {log}: {' | '.join(tail)}")
    return time.perf_counter() - start


# ------------------------------------------------------------------------------------------------ data and ids
def task_data(task: str, args: argparse.Namespace):
    """(spec, TaskData) exactly as `keras-electra finetune` reads and samples it (MRPC's training pairs in
    both orders unless `args.double_unordered` is False, as `--no-double-unordered` does there)."""
    from keras_electra.tasks.recipe import FinetuneConfig
    from keras_electra.tasks.registry import get_task
    from keras_electra.tasks.task_data import load_task_data

    spec = get_task(task)
    config = FinetuneConfig(task=task, data=str(args.data / TASK_DATA[task]), init="", output="",
                            seed=args.data_seed, max_train_examples=args.max_train_examples,
                            max_eval_examples=args.max_eval_examples,
                            double_unordered=getattr(args, "double_unordered", True))
    return spec, load_task_data(config, spec)


def hf_tokenizer(vocab_file: Path, lower_case: bool):
    from transformers import BertTokenizerFast

    with open(vocab_file, encoding="utf-8") as handle:
        vocab = {line.rstrip("\n"): i for i, line in enumerate(handle)}
    # `vocab=`, never `vocab_file=`: in transformers 5 the latter yields a tokenizer that maps every word to [UNK].
    return BertTokenizerFast(vocab=vocab, do_lower_case=lower_case, strip_accents=None)


def truncate_seq_pair(a: list[int], b: list[int], budget: int) -> tuple[list[int], list[int]]:
    """The official `_truncate_seq_pair`: drop the last token of the longer segment (b on ties) until it fits."""
    a, b = list(a), list(b)
    while len(a) + len(b) > budget:
        if len(a) > len(b):
            a.pop()
        else:
            b.pop()
    return a, b


def encode_classification(tokenizer, examples, seq_length: int, labels: list[str]) -> dict:
    """[CLS] a [SEP] (b [SEP]) padded to `seq_length`, as numpy int64 arrays."""
    import numpy as np

    pair = any(e.text_b is not None for e in examples)
    first = tokenizer([e.text_a for e in examples], add_special_tokens=False)["input_ids"]
    second = tokenizer([e.text_b or "" for e in examples], add_special_tokens=False)["input_ids"] if pair else None
    n = len(examples)
    ids, segments, mask = (np.zeros((n, seq_length), np.int64) for _ in range(3))
    cls, sep, pad = tokenizer.cls_token_id, tokenizer.sep_token_id, tokenizer.pad_token_id
    ids[:] = pad
    for i in range(n):
        if pair:
            a, b = truncate_seq_pair(first[i], second[i], seq_length - 3)
            row = [cls, *a, sep, *b, sep]
            segment = [0] * (len(a) + 2) + [1] * (len(b) + 1)
        else:
            row = [cls, *first[i][: seq_length - 2], sep]
            segment = [0] * len(row)
        ids[i, : len(row)] = row
        segments[i, : len(row)] = segment
        mask[i, : len(row)] = 1
    index = {name: k for k, name in enumerate(labels)}
    return {"input_ids": ids, "token_type_ids": segments, "attention_mask": mask,
            "labels": np.array([index[str(e.label)] for e in examples], np.int64)}


def encode_tokens(tokenizer, examples, seq_length: int, labels: list[str]) -> dict:
    """Words tokenised one by one; each word's tag on its first sub-word, IGNORE_INDEX elsewhere."""
    import numpy as np

    n = len(examples)
    ids, segments, mask = (np.zeros((n, seq_length), np.int64) for _ in range(3))
    tags = np.full((n, seq_length), IGNORE_INDEX, np.int64)
    word_ids = np.full((n, seq_length), -1, np.int64)
    ids[:] = tokenizer.pad_token_id
    index = {name: k for k, name in enumerate(labels)}
    encoded = tokenizer([list(e.words) for e in examples], is_split_into_words=True, add_special_tokens=False)
    for i, e in enumerate(examples):
        pieces = encoded["input_ids"][i][: seq_length - 2]
        words = encoded.word_ids(i)[: seq_length - 2]
        row = [tokenizer.cls_token_id, *pieces, tokenizer.sep_token_id]
        ids[i, : len(row)] = row
        mask[i, : len(row)] = 1
        previous = None
        for position, word in enumerate(words, start=1):
            word_ids[i, position] = word
            if word != previous:
                tags[i, position] = index[e.tags[word]]
            previous = word
    return {"input_ids": ids, "token_type_ids": segments, "attention_mask": mask, "labels": tags,
            "word_ids": word_ids}


def encode(kind: str, tokenizer, examples, seq_length: int, labels: list[str]) -> dict:
    fn = encode_tokens if kind == "token" else encode_classification
    return fn(tokenizer, examples, seq_length, labels)


def keras_encoding(kind: str, tokenizer, examples, seq_length: int, labels: list[str],
                   batch_size: int = 1024) -> dict:
    """What keras_electra's task preprocessor makes of the same examples (ids, segments, mask, NER labels)."""
    import numpy as np
    import tensorflow as tf

    from keras_electra.tasks.preprocessors import (
        ElectraTextClassifierPreprocessor,
        ElectraTokenClassifierPreprocessor,
    )

    parts = []
    index = {name: k for k, name in enumerate(labels)}
    if kind == "token":
        preprocessor = ElectraTokenClassifierPreprocessor(tokenizer, seq_length=seq_length)
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            words = tf.ragged.constant([list(e.words) for e in chunk], tf.string, ragged_rank=1)
            tags = tf.ragged.constant([[index[t] for t in e.tags] for e in chunk], tf.int32, ragged_rank=1)
            parts.append({k: v.numpy() for k, v in preprocessor.encode_words(words, tags).items()})
    else:
        preprocessor = ElectraTextClassifierPreprocessor(tokenizer, seq_length=seq_length)
        pair = any(e.text_b is not None for e in examples)
        for start in range(0, len(examples), batch_size):
            chunk = examples[start:start + batch_size]
            a = tf.constant([e.text_a for e in chunk])
            x = (a, tf.constant([e.text_b or "" for e in chunk])) if pair else a
            parts.append({k: v.numpy() for k, v in preprocessor(x).items()})
    return {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}


KEY_PAIRS = (("input_ids", "token_ids"), ("token_type_ids", "segment_ids"), ("attention_mask", "padding_mask"),
             ("labels", "labels"), ("word_ids", "word_ids"))


def check_agreement(hf: dict, ours: dict, where: str, unk_id: int) -> dict:
    """Every packed row equal on both sides; also that the words are not all [UNK]."""
    import numpy as np

    for theirs, mine in KEY_PAIRS:
        if mine not in ours or theirs not in hf or hf[theirs].ndim != 2:
            continue
        diff = np.argwhere(hf[theirs] != ours[mine])
        if len(diff):
            row = int(diff[0][0])
            raise ComparisonError(f"{where}: {len(np.unique(diff[:, 0]))} rows differ in {theirs} (first: row "
                                  f"{row}, transformers {hf[theirs][row].tolist()} vs keras_electra "
                                  f"{ours[mine][row].tolist()})")
    real = hf["attention_mask"].astype(bool)
    unk_rate = float((hf["input_ids"][real] == unk_id).mean())
    if unk_rate > 0.05:
        raise ComparisonError(f"{where}: {unk_rate:.1%} of the tokens are [UNK]; the tokenizer lost its vocabulary")
    return {"rows": int(len(hf["input_ids"])), "unk_rate": unk_rate}


# ---------------------------------------------------------------------------------------- transformers side
def paper_head(hidden_size: int, num_labels: int, dropout: float):
    """The paper's head for `ElectraForSequenceClassification`: dropout + dense on [CLS]."""
    import torch

    class PaperHead(torch.nn.Linear):
        def __init__(self) -> None:
            super().__init__(hidden_size, num_labels)
            self.dropout = torch.nn.Dropout(dropout)

        def forward(self, features):
            return super().forward(self.dropout(features[:, 0, :]))

    return PaperHead()


def build_hf_model(kind: str, electra_dir: Path, num_labels: int, head: str, dropout: float, seed: int,
                   head_init: str = "glorot_uniform"):
    """The transformers model with keras_electra's fresh-head init: `ElectraClassificationHead` always a
    truncated normal (keras_electra's `HuggingFaceClassificationHead`), the paper's head and the NER head
    `head_init` (keras_electra's `--default-initializer`); zero biases."""
    import torch
    from transformers import ElectraForSequenceClassification, ElectraForTokenClassification

    torch.manual_seed(seed)
    cls = ElectraForTokenClassification if kind == "token" else ElectraForSequenceClassification
    # `keras-electra finetune --dropout` sets the encoder's dropout too, so the torch side does the same.
    model = cls.from_pretrained(electra_dir, num_labels=num_labels, classifier_dropout=dropout,
                                hidden_dropout_prob=dropout, attention_probs_dropout_prob=dropout)
    loaded = {k.removeprefix("electra."): v for k, v in model.state_dict().items() if k.startswith("electra.")}
    from safetensors.torch import load_file

    for key, value in load_file(electra_dir / "model.safetensors").items():
        if not torch.equal(loaded[key], value):
            raise ComparisonError(f"transformers loaded {key} differently from {electra_dir}")
    if kind != "token" and head == "electra":
        model.classifier = paper_head(model.config.hidden_size, num_labels, dropout)
    if head_init not in HEAD_INITS:
        raise ComparisonError(f"unknown head init {head_init!r}; choose from {', '.join(HEAD_INITS)}")
    std = model.config.initializer_range
    glorot = head_init == "glorot_uniform" and (kind == "token" or head == "electra")
    for module in model.classifier.modules():
        if isinstance(module, torch.nn.Linear):
            if glorot:  # Keras' GlorotUniform: U(±sqrt(6 / (fan_in + fan_out))), as xavier_uniform_ with gain 1
                torch.nn.init.xavier_uniform_(module.weight)
            else:  # keras_electra's TruncatedNormal(0.02): cut at 2 std
                torch.nn.init.trunc_normal_(module.weight, std=std, a=-2 * std, b=2 * std)
            torch.nn.init.zeros_(module.bias)
    return model


def official_adamw():
    """The torch class of `OfficialAdamW` (built lazily: torch is imported only when needed)."""
    import torch

    class OfficialAdamW(torch.optim.Optimizer):
        """keras_electra's `ElectraAdamW` (the official `AdamWeightDecayOptimizer`) in torch:
        m += (g - m)(1 - b1); v += (g^2 - v)(1 - b2); p -= lr * (m / (sqrt(v) + eps) + wd * p),
        with no bias correction unless `bias_correction` (then m / (1 - b1^t), v / (1 - b2^t), which is
        torch's AdamW). Each group's `lr` already holds its layer-wise multiplier, which scales the
        weight decay too, as in `ElectraAdamW`."""

        def __init__(self, params, lr: float, betas=(0.9, 0.999), eps: float = 1e-6, weight_decay: float = 0.0,
                     bias_correction: bool = False) -> None:
            super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                      "bias_correction": bias_correction})

        @torch.no_grad()
        def step(self, closure=None):
            for group in self.param_groups:
                beta_1, beta_2 = group["betas"]
                for param in group["params"]:
                    if param.grad is None:
                        continue
                    state = self.state[param]
                    if not state:
                        state["step"] = 0
                        state["m"] = torch.zeros_like(param)
                        state["v"] = torch.zeros_like(param)
                    state["step"] += 1
                    grad, m, v = param.grad, state["m"], state["v"]
                    m.add_((grad - m) * (1 - beta_1))
                    v.add_((grad * grad - v) * (1 - beta_2))
                    if group["bias_correction"]:
                        m_hat = m / (1 - beta_1 ** state["step"])
                        v_hat = v / (1 - beta_2 ** state["step"])
                    else:
                        m_hat, v_hat = m, v
                    update = m_hat / (v_hat.sqrt() + group["eps"])
                    if group["weight_decay"]:
                        update = update + group["weight_decay"] * param
                    param.sub_(group["lr"] * update)

    return OfficialAdamW


def make_optimizer(model, multipliers: dict[str, float], lr: float, bias_correction: bool):
    """`OfficialAdamW` with one parameter group per layer-wise multiplier (eps 1e-6, no weight decay)."""
    groups: dict[float, list] = {}
    for name, param in model.named_parameters():
        groups.setdefault(multipliers[name], []).append(param)
    return official_adamw()([{"params": params, "lr": lr * m} for m, params in sorted(groups.items())],
                            lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0, bias_correction=bias_correction)


def torch_multiplier(name: str, num_layers: int, decay: float) -> float:
    """keras_electra's rule: embeddings (and their projection) decay^(L+1), block i decay^(L-i), the head 1."""
    parts = name.split(".")
    if "embeddings" in name:  # a substring, as in `layer_depth`: embeddings_project counts as embeddings
        depth = 0
    elif "layer" in parts and parts[parts.index("layer") + 1].isdigit():
        depth = int(parts[parts.index("layer") + 1]) + 1
    else:
        depth = num_layers + 1
    return decay ** (num_layers + 1 - depth)


def check_same_start(hf_model, keras_model) -> int:
    """Every encoder parameter of the transformers model equals, bit for bit, keras_electra's weight of the
    same checkpoint name (the heads are fresh on both sides); the number of tensors compared."""
    import numpy as np

    from keras_electra.convert.huggingface import hf_to_canonical

    ours = keras_model.canonical_weights()
    params = {k: v for k, v in hf_model.named_parameters() if not k.startswith("classifier")}
    ndim = {k: v.ndim for k, v in params.items()}
    for key, param in params.items():
        mapped = hf_to_canonical(key, False, ndim)
        if mapped is None or mapped[0] not in ours:
            raise ComparisonError(f"transformers parameter {key} has no keras_electra counterpart")
        theirs = param.detach().numpy()
        theirs = theirs.T if mapped[1] == "transpose" else theirs
        start = np.asarray(ours[mapped[0]].numpy())
        if start.shape != theirs.shape or not np.array_equal(start, theirs):
            raise ComparisonError(f"{key}: keras_electra starts from other numbers than transformers")
    return len(params)


def head_name(key: str) -> tuple[str, str] | None:
    """keras_electra's checkpoint name of a torch head parameter (`classifier.dense.weight` ->
    `classifier/dense/kernel`, transposed) and how to move it; None for an encoder parameter."""
    if not key.startswith("classifier."):
        return None
    stem, kind = key.rsplit(".", 1)
    return (f"{stem.replace('.', '/')}/{'kernel' if kind == 'weight' else 'bias'}",
            "transpose" if kind == "weight" else "copy")


def copy_keras_head(hf_model, keras_model) -> int:
    """Give the torch model's fresh head keras_electra's initial numbers; the number of tensors copied."""
    import keras
    import numpy as np
    import torch

    ours = keras_model.head_weights()
    params = {k: v for k, v in hf_model.named_parameters() if head_name(k) is not None}
    if len(params) != len(ours):
        raise ComparisonError(f"the torch head has {len(params)} tensors, keras_electra's {len(ours)}")
    values = {}
    for key, param in params.items():  # every tensor checked before any is copied
        name, move = head_name(key)
        if name not in ours:
            raise ComparisonError(f"torch head parameter {key} has no keras_electra counterpart {name}")
        value = np.asarray(keras.ops.convert_to_numpy(ours[name]))
        values[key] = np.ascontiguousarray(value.T if move == "transpose" else value)
        if values[key].shape != tuple(param.shape):
            raise ComparisonError(f"{key}: shape {tuple(param.shape)} here, {values[key].shape} in keras_electra")
    with torch.no_grad():
        for key, param in params.items():
            param.copy_(torch.from_numpy(values[key]))
    return len(params)


def keras_batches(spec, keras_model, examples, batch_size: int, seed: int, hf_train: dict) -> list[dict]:
    """The batches keras_electra's first epoch trains on for `seed` (the first pass over the shuffled dataset
    `train_one_seed` builds right after `build_task_model` set the seed), as torch inputs. Each row is
    checked to be one of the rows the torch side packed."""
    import numpy as np

    if spec.runner.kind == "token":
        raise ComparisonError("--keras-streams order: sentence tasks only")
    packed = {row.tobytes() for row in np.concatenate(
        [hf_train["input_ids"], hf_train["token_type_ids"], hf_train["labels"][:, None]], axis=1)}
    batches = []
    for x, y in spec.runner.train_dataset(keras_model, examples, batch_size, seed):
        batch = {"input_ids": x["token_ids"].numpy().astype(np.int64),
                 "token_type_ids": x["segment_ids"].numpy().astype(np.int64),
                 "attention_mask": x["padding_mask"].numpy().astype(np.int64),
                 "labels": y.numpy().astype(np.int64)}
        rows = np.concatenate([batch["input_ids"], batch["token_type_ids"], batch["labels"][:, None]], axis=1)
        if any(row.astype(hf_train["input_ids"].dtype).tobytes() not in packed for row in rows):
            raise ComparisonError("a keras_electra training row is not among the torch side's rows")
        batches.append(batch)
    return batches


def check_multipliers(hf_model, keras_model, decay: float) -> dict[str, float]:
    """Each torch parameter's multiplier equals keras_electra's for the same weight (by checkpoint name)."""
    from keras_electra.convert.huggingface import hf_to_canonical
    from keras_electra.optimization import layerwise_lr_multipliers

    num_layers = hf_model.config.num_hidden_layers
    ours_by_path = layerwise_lr_multipliers(keras_model.trainable_variables, keras_model.backbone.num_layers, decay)
    ours = {name: ours_by_path[var.path] for name, var in keras_model.canonical_weights().items()}
    params = dict(hf_model.named_parameters())
    ndim = {k: v.ndim for k, v in params.items()}
    multipliers = {}
    for key in params:
        mapped = hf_to_canonical(key, False, ndim)
        if mapped is None or mapped[0] not in ours:
            raise ComparisonError(f"transformers parameter {key} has no keras_electra counterpart")
        expected, mine = ours[mapped[0]], torch_multiplier(key, num_layers, decay)
        if not math.isclose(expected, mine, rel_tol=1e-9):
            raise ComparisonError(f"{key}: layer-wise LR multiplier {mine} here, {expected} in keras_electra")
        multipliers[key] = mine
    if len(multipliers) != len(ours):
        raise ComparisonError(f"{len(multipliers)} transformers parameters vs {len(ours)} keras_electra weights")
    return multipliers


def lr_lambda(total_steps: int, warmup_steps: int):
    """keras_electra's `WarmupLinearDecay` as a LambdaLR factor: (1 - t/T)+ * min(1, t/warm-up)."""
    def factor(step: int) -> float:
        value = 1.0 - min(step, total_steps) / total_steps
        return value * min(1.0, step / warmup_steps) if warmup_steps > 0 else value
    return factor


def hf_scores(kind: str, logits, data: dict, examples, labels: list[str]) -> dict[str, float]:
    if kind == "token":
        from seqeval.metrics import f1_score, precision_score, recall_score

        predicted = logits.argmax(-1)
        gold, pred = [], []
        for i, e in enumerate(examples):
            tags = ["O"] * len(e.words)  # truncated words count as "O", as in keras_electra
            seen = set()
            for position, word in enumerate(data["word_ids"][i]):
                if word >= 0 and word not in seen:
                    seen.add(word)
                    tags[word] = labels[predicted[i, position]]
            gold.append(list(e.tags))
            pred.append(tags)
        return {"f1": float(f1_score(gold, pred)), "precision": float(precision_score(gold, pred)),
                "recall": float(recall_score(gold, pred))}
    from sklearn.metrics import accuracy_score, f1_score

    y, p = data["labels"], logits.argmax(-1)
    scores = {"accuracy": float(accuracy_score(y, p))}
    if "1" in labels and len(labels) == 2:
        scores["f1"] = float(f1_score(y, p, pos_label=labels.index("1")))
    return scores


def predict_logits(model, data: dict, batch_size: int):
    import numpy as np
    import torch

    model.eval()
    out = []
    with torch.no_grad():
        for start in range(0, len(data["input_ids"]), batch_size):
            batch = {k: torch.from_numpy(data[k][start:start + batch_size])
                     for k in ("input_ids", "token_type_ids", "attention_mask")}
            out.append(model(**batch).logits.float().numpy())
    return np.concatenate(out)


def train_hf(kind: str, electra_dir: Path, train: dict, dev: dict, dev_examples, labels: list[str], metric: str,
             seed: int, args: argparse.Namespace, keras_model=None, batches: list[dict] | None = None
             ) -> dict[str, Any]:
    """One seed on the torch side; `batches` (keras_electra's, `--keras-streams order`) replace its own
    shuffle, and with `--keras-streams head` the head starts from `keras_model`'s numbers."""
    import torch

    model = build_hf_model(kind, electra_dir, len(labels), args.head, args.dropout, seed, args.head_init)
    if keras_model is not None:
        check_same_start(model, keras_model)
    if "head" in args.keras_streams:
        copy_keras_head(model, keras_model)
    multipliers = (check_multipliers(model, keras_model, args.layerwise_decay) if keras_model is not None else
                   {k: torch_multiplier(k, model.config.num_hidden_layers, args.layerwise_decay)
                    for k, _ in model.named_parameters()})
    optimizer = make_optimizer(model, multipliers, args.lr, args.adam_bias_correction)
    n = len(train["input_ids"])
    drop_last = n >= args.batch_size  # as keras_electra: a last partial batch only when there is no full one
    steps_per_epoch = n // args.batch_size if drop_last else 1
    total = steps_per_epoch * args.epochs
    if batches is not None and len(batches) != total:
        raise ComparisonError(f"keras_electra makes {len(batches)} batches, the torch side {total} steps")
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lr_lambda(total, int(args.warmup_fraction * total)))
    generator = torch.Generator().manual_seed(seed)
    tensors = {k: torch.from_numpy(train[k]) for k in ("input_ids", "token_type_ids", "attention_mask", "labels")}
    history, train_loss, best, wait = [], [], None, 0
    eval_seconds, step_seconds = 0.0, []
    start = time.perf_counter()
    for epoch in range(args.epochs):
        model.train()
        order = torch.randperm(n, generator=generator)
        losses = []
        for step in range(steps_per_epoch):
            step_start = time.perf_counter()
            if batches is not None:
                inputs = {k: torch.from_numpy(v) for k, v in batches[step].items()}
            else:
                inputs = {k: v[order[step * args.batch_size:(step + 1) * args.batch_size]]
                          for k, v in tensors.items()}
            loss = model(**inputs).loss
            loss.backward()
            losses.append(loss.item())
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step_seconds.append(time.perf_counter() - step_start)
        eval_start = time.perf_counter()
        scores = hf_scores(kind, predict_logits(model, dev, max(args.batch_size, 32)), dev, dev_examples, labels)
        eval_seconds += time.perf_counter() - eval_start
        history.append({"epoch": epoch + 1, **scores})
        train_loss.append(statistics.fmean(losses))
        if args.protocol == "paper":  # fixed epochs, the last checkpoint
            best = history[-1]
        elif best is None or scores[metric] > best[metric]:
            best, wait = history[-1], 0
        else:  # keras_electra's early stopping: `patience` epochs without a better dev score
            wait += 1
            if args.patience and wait >= args.patience:
                break
    seconds = time.perf_counter() - start
    return {"seed": seed, "best_epoch": best["epoch"], "dev": {k: v for k, v in best.items() if k != "epoch"},
            "dev_history": history, "train_loss": train_loss, "steps_per_epoch": steps_per_epoch,
            "train_seconds": seconds, "eval_seconds": eval_seconds,
            "median_step_seconds": float(statistics.median(step_seconds[1:] or step_seconds))}


# ------------------------------------------------------------------------------------------ keras_electra side
def keras_head(task: str, args: argparse.Namespace) -> str:
    """keras_electra's head for `task`: `--head` for sentence tasks; for NER always `huggingface`."""
    return "huggingface" if task in TOKEN_TASKS else args.head


def keras_command(task: str, init: Path, output: Path, args: argparse.Namespace) -> list[str]:
    """The `keras-electra finetune` command of one task with the torch side's recipe. The head: `--head`
    for sentence tasks; NER has one head per tagger, `--tagging-head huggingface` (dropout + dense, loss
    averaged over the batch's labelled words), which is `ElectraForTokenClassification`'s."""
    head = ["--tagging-head" if task in TOKEN_TASKS else "--head", keras_head(task, args)]
    command = [sys.executable, "-m", "keras_electra", "finetune", "--task", task,
               "--data", str(args.data / TASK_DATA[task]), "--init", str(init), "--output", str(output),
               *head, "--seq-length", str(args.seq_length[task]), "--epochs", str(args.epochs),
               "--batch-size", str(args.batch_size), "--learning-rate", str(args.lr),
               "--layerwise-lr-decay", str(args.layerwise_decay), "--warmup-fraction", str(args.warmup_fraction),
               "--weight-decay", "0", "--dropout", str(args.dropout), "--seed", str(args.data_seed),
               "--seeds", *map(str, args.seeds), "--protocol", args.protocol,
               "--default-initializer", args.head_init, "--overwrite", "--quiet"]
    if args.protocol == "best-dev":
        command += ["--patience", str(args.patience)]
    if args.adam_bias_correction:
        command.append("--adam-bias-correction")
    if not args.double_unordered:
        command.append("--no-double-unordered")
    if args.max_train_examples:
        command += ["--max-train-examples", str(args.max_train_examples)]
    if args.max_eval_examples:
        command += ["--max-eval-examples", str(args.max_eval_examples)]
    return command


def run_keras(task: str, init: Path, output: Path, args: argparse.Namespace, env: dict) -> dict[str, Any]:
    command = keras_command(task, init, output, args)
    output.parent.mkdir(parents=True, exist_ok=True)  # finetune makes --output itself
    wall = run_logged(command, output.parent / f"{output.name}.log", env)
    results = json.loads((output / "results.json").read_text())
    check_keras_recipe(results["hyperparameters"], task, args)
    runs = [{"seed": r["seed"], "best_epoch": r["best_epoch"], "dev": r["dev"], "dev_history": r["dev_history"],
             "train_loss": r["train_history"].get("loss", []),
             "steps_per_epoch": r["steps_per_epoch"], "train_seconds": r["train_seconds"],
             "median_step_seconds": r["median_step_seconds"]} for r in results["runs"]]
    return {"runs": runs, "wall_seconds": wall, "num_examples": results["num_examples"],
            "hyperparameters": results["hyperparameters"], "command": " ".join(command[1:])}


def check_keras_recipe(hp: dict, task: str, args: argparse.Namespace) -> None:
    """What keras_electra recorded it did is the recipe the torch side follows."""
    from keras_electra.tasks.recipe import DOUBLE_UNORDERED_TASKS

    expected = {"protocol": args.protocol, "adam_bias_correction": args.adam_bias_correction,
                "double_unordered": args.double_unordered and task in DOUBLE_UNORDERED_TASKS,
                "default_initializer": args.head_init, "epochs": args.epochs, "batch_size": args.batch_size,
                "learning_rate": args.lr, "layerwise_lr_decay": args.layerwise_decay,
                "legacy_layerwise_decay": False, "warmup_fraction": args.warmup_fraction, "weight_decay": 0.0,
                "adam_epsilon": 1e-6, "clip_norm": 1.0, "dropout": args.dropout,
                "seq_length": args.seq_length[task], "head": keras_head(task, args)}
    for key, value in expected.items():
        if key not in hp or hp[key] != value:
            raise ComparisonError(f"{task}: keras_electra ran with {key}={hp.get(key)!r}, the torch side with "
                                  f"{value!r}")


# --------------------------------------------------------------------------------------------------- summary
def medians(runs: list[dict], metrics: tuple[str, ...]) -> dict[str, float]:
    return {m: float(statistics.median(r["dev"][m] for r in runs)) for m in metrics if all(m in r["dev"] for r in runs)}


def difference_points(entry: dict) -> dict[str, float]:
    """keras_electra's median minus transformers', in points, per metric."""
    return {m: 100 * (entry["keras"]["median"][m] - entry["hf"]["median"][m]) for m in entry["metrics"]}


def timing(runs: list[dict], examples: int, epochs: int, batch_size: int) -> dict[str, float]:
    """Seconds per 1000 training examples: from the median step (first step left out), and from the
    whole fit (dev scoring after each epoch included)."""
    step = statistics.median(r["median_step_seconds"] for r in runs)
    fit = statistics.median(r["train_seconds"] for r in runs)
    return {"median_step_seconds": float(step), "train_seconds_per_1000_examples": float(step / batch_size * 1000),
            "fit_seconds": float(fit), "fit_seconds_per_1000_examples": float(fit / max(examples * epochs, 1) * 1000)}


def combine(paths: list[Path], output: Path) -> int:
    """One report from `--side keras` and `--side hf` runs (two processes, a core each): per task, each
    side's runs from the file that has them, checked to share the model, head, recipe and examples, and
    the difference printed as a `--side both` run prints it."""
    from keras_electra.utils.io import write_json

    merged: dict[str, Any] = {"tasks": {}}
    for path in paths:
        try:
            report = json.loads(path.read_text())
        except (OSError, ValueError) as err:
            raise ComparisonError(f"{path}: not a report of this script ({err})") from err
        if "tasks" not in report or "recipe" not in report:
            raise ComparisonError(f"{path}: not a report of this script (no tasks or recipe)")
        for key in ("model", "head", "versions"):
            merged.setdefault(key, report[key])
            if report[key] != merged[key]:
                raise ComparisonError(f"{path}: {key} {report[key]!r}, another file {merged[key]!r}")
        for task, entry in report["tasks"].items():
            target = merged["tasks"].setdefault(task, {
                **{k: v for k, v in entry.items() if k not in ("keras", "hf", "difference_points")},
                "recipe": report["recipe"]})
            for key in ("recipe", "num_examples", "seq_length"):
                theirs = report["recipe"] if key == "recipe" else entry[key]
                if theirs != target[key]:
                    raise ComparisonError(f"{path}: {task} {key} {theirs!r}, another file {target[key]!r}")
            for side in ("keras", "hf"):
                if side in entry:
                    if side in target:
                        raise ComparisonError(f"{path}: a second {side} run of {task}")
                    target[side] = entry[side]
    for task, entry in merged["tasks"].items():
        if "keras" in entry and "hf" in entry:
            entry["difference_points"] = difference_points(entry)
        print_task(task, entry, len(entry["recipe"]["seeds"]))
    write_json(output, merged)
    print(f"wrote {output}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tasks", nargs="+", choices=tuple(TASK_DATA), default=list(TASK_DATA))
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="training seeds (median over them)")
    p.add_argument("--data-seed", type=int, default=0, help="seed of the --max-*-examples samples (both sides)")
    p.add_argument("--max-train-examples", type=int, metavar="N", help="train on N sampled examples")
    p.add_argument("--max-eval-examples", type=int, metavar="N", help="score N sampled dev examples")
    p.add_argument("--epochs", type=int, default=3, help="default 3, the paper's")
    p.add_argument("--seq-length", nargs="+", default=["128"], metavar="L|TASK=L",
                   help="tokens per example: one length for all tasks, or TASK=L each (default 128)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=3e-4, help="peak LR (default 3e-4, the recipe's for this size)")
    p.add_argument("--layerwise-decay", type=float, default=0.8, help="layer-wise LR decay (default 0.8)")
    p.add_argument("--warmup-fraction", type=float, default=0.1)
    p.add_argument("--protocol", choices=("paper", "best-dev"), default="paper",
                   help="paper (default, official): fixed epochs, the last checkpoint; best-dev: the best dev "
                        "epoch with early stopping (--patience), on both sides")
    p.add_argument("--patience", type=int, default=3,
                   help="--protocol best-dev: stop after N epochs without a better dev score, on both sides "
                        "(0: never; default 3)")
    p.add_argument("--adam-bias-correction", action="store_true",
                   help="Adam with bias correction on both sides (default: none, the official optimizer)")
    p.add_argument("--no-double-unordered", dest="double_unordered", action="store_false",
                   help="MRPC: train on each pair in its given order only, on both sides (default: both orders, "
                        "the official double_unordered)")
    p.add_argument("--head-init", choices=HEAD_INITS, default="glorot_uniform",
                   help="init of the paper's head and the NER head on both sides: glorot_uniform (default, "
                        "official) or truncated_normal; ElectraClassificationHead is always truncated normal")
    p.add_argument("--dropout", type=float, default=0.1,
                   help="dropout of the encoder and the head on both sides (keras-electra finetune's --dropout)")
    p.add_argument("--head", choices=("huggingface", "electra"), default="huggingface",
                   help="classification head on both sides: ElectraForSequenceClassification's (default) "
                        "or the paper's dropout + dense")
    p.add_argument("--keras-streams", nargs="+", choices=KERAS_STREAMS, default=[], metavar="STREAM",
                   help="give the torch side keras_electra's random draws for each seed: head (the fresh "
                        "head's initial numbers), order (its first epoch's batches; sentence tasks, --epochs 1). "
                        "Dropout stays torch's. Default: none, each side its own")
    p.add_argument("--threads", type=int, help="CPU threads for each side (torch, TensorFlow); default: all")
    p.add_argument("--side", choices=("both", "keras", "hf"), default="both", help="run one side only")
    p.add_argument("--model", type=Path, default=DEFAULT_MODEL, help="Hugging Face BERT directory (MiniLM)")
    p.add_argument("--data", type=Path, default=DEFAULT_DATA, help="the shared data folder")
    p.add_argument("--workdir", type=Path, help="keep the converted weights, logs and models here")
    p.add_argument("--output", type=Path, default=Path("compare_finetune_with_hf.json"), help="results JSON")
    p.add_argument("--combine", type=Path, nargs="+", metavar="JSON",
                   help="run nothing: merge the reports of --side keras and --side hf runs into --output and "
                        "print the difference")
    args = p.parse_args(argv)
    lengths = {}
    for item in args.seq_length:
        task, _, value = item.rpartition("=")
        for name in ([task] if task else args.tasks):
            lengths[name] = int(value)
    args.seq_length = {t: lengths.get(t, 128) for t in args.tasks}
    if "order" in args.keras_streams and args.epochs != 1:
        p.error("--keras-streams order replays one epoch (Keras' fit reshuffles on its own schedule): --epochs 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.combine:
        try:
            return combine(args.combine, args.output)
        except ComparisonError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]).rstrip(os.pathsep))
    if args.threads:
        env.update(TF_NUM_INTRAOP_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
        os.environ.update(TF_NUM_INTRAOP_THREADS=str(args.threads), OMP_NUM_THREADS=str(args.threads))
    import numpy as np  # noqa: F401  (after the thread settings)
    import torch
    import transformers

    if args.threads:
        torch.set_num_threads(args.threads)
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="compare_finetune_"))
    workdir.mkdir(parents=True, exist_ok=True)
    try:
        return compare(args, workdir, env, torch.__version__, transformers.__version__)
    except ComparisonError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    finally:
        if args.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)


def compare(args: argparse.Namespace, workdir: Path, env: dict, torch_version: str, hf_version: str) -> int:
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.tasks.finetune import FinetuneConfig, build_task_model
    from keras_electra.utils.io import write_json

    if not (args.model / "config.json").is_file() or not (args.model / "model.safetensors").is_file():
        raise ComparisonError(f"{args.model}: no config.json + model.safetensors (the MiniLM weights; --model DIR)")
    electra_dir = electra_layout(args.model, workdir / "electra_layout")
    keras_dir = convert_for_keras(electra_dir, workdir / "converted", env)
    ours_tokenizer = ElectraTokenizer.from_directory(keras_dir)
    theirs_tokenizer = hf_tokenizer(electra_dir / "vocab.txt", ours_tokenizer.lower_case)
    head = {"huggingface": "ElectraClassificationHead: dropout, dense(H), GELU, dropout, out_proj on [CLS]",
            "electra": "the paper's: dropout, dense on [CLS]"}[args.head]
    report: dict[str, Any] = {
        "model": str(args.model), "head": args.head, "head_description": head,
        "ner_head": "dropout, dense per token (ElectraForTokenClassification)",
        "recipe": {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
                   "layerwise_lr_decay": args.layerwise_decay, "warmup_fraction": args.warmup_fraction,
                   "dropout": args.dropout, "protocol": args.protocol,
                   "patience": args.patience if args.protocol == "best-dev" else None,
                   "adam_epsilon": 1e-6, "adam_bias_correction": args.adam_bias_correction,
                   "double_unordered": args.double_unordered, "head_init": args.head_init,
                   "weight_decay": 0.0, "clip_norm": 1.0,
                   "seq_length": args.seq_length, "seeds": args.seeds, "data_seed": args.data_seed,
                   "max_train_examples": args.max_train_examples, "max_eval_examples": args.max_eval_examples,
                   "threads": args.threads},
        "versions": {"torch": torch_version, "transformers": hf_version}, "tasks": {},
    }
    print(f"head: {head}; NER: {report['ner_head']}")
    for task in args.tasks:
        spec, data = task_data(task, args)
        labels, kind, length = list(data.labels), spec.runner.kind, args.seq_length[task]
        metrics = TASK_METRICS[task]
        entry: dict[str, Any] = {"metric": spec.metric, "metrics": list(metrics), "seq_length": length,
                                 "num_examples": {"train": len(data.train), "dev": len(data.dev)}}
        hf_train = encode(kind, theirs_tokenizer, data.train, length, labels)
        hf_dev = encode(kind, theirs_tokenizer, data.dev, length, labels)
        entry["agreement"] = {
            split: check_agreement(hf, keras_encoding(kind, ours_tokenizer, examples, length, labels),
                                   f"{task} {split}", theirs_tokenizer.unk_token_id)
            for split, hf, examples in (("train", hf_train, data.train), ("dev", hf_dev, data.dev))}
        print(f"{task}: {len(data.train)} train / {len(data.dev)} dev examples, length {length}: token ids, "
              f"segments, masks{' and tags' if kind == 'token' else ''} agree on every row")
        if args.side in ("both", "keras"):
            entry["keras"] = run_keras(task, keras_dir, workdir / "keras" / task, args, env)
            for run in entry["keras"]["runs"]:
                print(f"  keras_electra seed {run['seed']}: {run['dev']}, training loss by epoch "
                      f"{[round(x, 4) for x in run['train_loss']]} ({run['train_seconds']:.0f} s)")
            if entry["keras"]["num_examples"] != entry["num_examples"]:
                raise ComparisonError(f"{task}: keras_electra trained on {entry['keras']['num_examples']}, "
                                      f"the reference on {entry['num_examples']}")
        if args.side in ("both", "hf"):
            config = FinetuneConfig(task=task, data="", init=str(keras_dir), output="", head=args.head,
                                    dropout=args.dropout, default_initializer=args.head_init)
            runs = []
            for seed in args.seeds:
                # For its LR multipliers, and with --keras-streams the draws `keras-electra finetune` makes
                # for this seed.
                keras_model, _ = build_task_model(config, spec, labels, seed, length)
                batches = (keras_batches(spec, keras_model, data.train, args.batch_size, seed, hf_train)
                           if "order" in args.keras_streams else None)
                runs.append(train_hf(kind, electra_dir, hf_train, hf_dev, data.dev, labels, spec.metric, seed, args,
                                     keras_model, batches))
                print(f"  transformers seed {seed}: {runs[-1]['dev']}, training loss by epoch "
                      f"{[round(x, 4) for x in runs[-1]['train_loss']]} ({runs[-1]['train_seconds']:.0f} s)")
            del keras_model
            entry["hf"] = {"runs": runs, "keras_streams": list(args.keras_streams)}
        for side in ("keras", "hf"):
            if side in entry:
                entry[side]["median"] = medians(entry[side]["runs"], metrics)
                entry[side]["timing"] = timing(entry[side]["runs"], len(data.train), args.epochs, args.batch_size)
        if "keras" in entry and "hf" in entry:
            entry["difference_points"] = difference_points(entry)
        report["tasks"][task] = entry
        print_task(task, entry, len(args.seeds))
    write_json(args.output, report)
    print(f"wrote {args.output}")
    return 0


def hf_name(entry: dict) -> str:
    streams = entry.get("hf", {}).get("keras_streams")
    return f"transformers (keras_electra's {' and '.join(streams)})" if streams else "transformers"


def print_task(task: str, entry: dict, seeds: int) -> None:
    for metric in entry["metrics"]:
        parts = [f"{task} dev {metric} (median of {seeds} seed{'s' if seeds > 1 else ''}):"]
        for side, name in (("keras", "keras_electra"), ("hf", hf_name(entry))):
            if side in entry:
                parts.append(f"{name} {100 * entry[side]['median'][metric]:.2f}")
        if "difference_points" in entry:
            parts.append(f"difference {entry['difference_points'][metric]:+.2f} points")
        print("  ".join(parts))
    for side, name in (("keras", "keras_electra"), ("hf", "transformers")):
        if side in entry:
            t = entry[side]["timing"]
            print(f"{task} {name}: {t['train_seconds_per_1000_examples']:.1f} s per 1000 training examples "
                  f"(median step {t['median_step_seconds']:.2f} s); the whole fit with dev scoring "
                  f"{t['fit_seconds']:.0f} s")
    if "keras" in entry and "hf" in entry:  # the same-run ratio benchmarks/README.md records
        ratio = entry["keras"]["timing"]["median_step_seconds"] / entry["hf"]["timing"]["median_step_seconds"]
        print(f"{task} training step, keras_electra / transformers: {ratio:.2f}x")


if __name__ == "__main__":
    sys.exit(main())
