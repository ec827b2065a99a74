"""Reference models and checkpoints for the converter tests.

- Random tiny Hugging Face ELECTRA models (CPU torch, float32, eval mode), every
  parameter randomised (biases and LayerNorm included, so a swapped gamma/beta or a
  dropped bias shows up).
- TF1 name-based checkpoints written from those same weights under the official
  variable names, with Adam slots and `global_step`, through an explicit table of
  HF modules → official names that is independent of the code under test.
- Batches of real text (English novels, uncased BERT/ELECTRA vocabulary) as sentence
  pairs with padding.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import torch
import transformers

from tests.conftest import NOVELS, VOCAB_UNCASED

VOCAB_SIZE = 30522  # the real uncased vocabulary (the English ELECTRA one)
transformers.utils.logging.disable_progress_bar()  # keep stderr for the errors under test


# ------------------------------------------------------------------------ HF models
def hf_config(**overrides) -> transformers.ElectraConfig:
    values = dict(
        vocab_size=VOCAB_SIZE, embedding_size=16, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
        intermediate_size=64, max_position_embeddings=64, type_vocab_size=2, hidden_act="gelu",
        layer_norm_eps=1e-12,
    )
    values.update(overrides)
    return transformers.ElectraConfig(**values)


def randomize(model: torch.nn.Module, seed: int) -> torch.nn.Module:
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, param in model.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if name.endswith("LayerNorm.weight"):
                param.copy_(1.0 + 0.1 * noise)
            else:
                param.copy_(0.05 * noise)
    return model.float().eval()


def make_hf(cls, config: transformers.ElectraConfig, seed: int) -> torch.nn.Module:
    torch.manual_seed(seed)
    return randomize(cls(config), seed)


def hf_pair(disc_config, gen_config, seed: int = 0):
    """(ElectraForMaskedLM, ElectraForPreTraining) sharing embedding values, as released pairs do."""
    disc = make_hf(transformers.ElectraForPreTraining, disc_config, seed)
    gen = make_hf(transformers.ElectraForMaskedLM, gen_config, seed + 1)
    gen.electra.embeddings.load_state_dict(disc.electra.embeddings.state_dict())
    gen.tie_weights()
    return gen, disc


def save_hf(model, directory: Path, with_tokenizer: bool = True) -> Path:
    model.save_pretrained(str(directory))
    if with_tokenizer:
        transformers.BertTokenizer(vocab=str(VOCAB_UNCASED), do_lower_case=True).save_pretrained(str(directory))
    return directory


# -------------------------------------------------------------------------- batches
def keras_hub_preset(directory: Path, seed: int, lowercase: bool):
    """A tiny keras-hub ElectraBackbone with every weight random (biases and LayerNorm too), saved as a preset
    with its tokenizer; returns (backbone, directory)."""
    import keras_hub

    backbone = keras_hub.models.ElectraBackbone(
        vocab_size=30522, num_layers=2, num_heads=4, hidden_dim=32, embedding_dim=16, intermediate_dim=64,
        max_sequence_length=64,
    )
    rng = np.random.default_rng(seed)
    for variable in backbone.weights:
        value = rng.normal(0, 0.05, variable.shape) + (1.0 if variable.path.endswith("gamma") else 0.0)
        variable.assign(value.astype("float32"))
    backbone.save_to_preset(str(directory))
    keras_hub.models.ElectraTokenizer(vocabulary=str(VOCAB_UNCASED), lowercase=lowercase).save_to_preset(str(directory))
    return backbone, directory


def novel_lines(count: int, min_chars: int = 40) -> list[str]:
    lines = []
    for path in sorted(NOVELS.glob("*.txt"))[:3]:
        for line in path.read_text(encoding="utf-8-sig").splitlines():
            if len(line.strip()) >= min_chars:
                lines.append(line.strip())
            if len(lines) >= count:
                return lines
    return lines


def real_batch(length: int = 24, pairs: int = 3) -> dict[str, np.ndarray]:
    """[CLS] a [SEP] b [SEP] from novel text, of different lengths, padded to `length`."""
    tokenizer = transformers.BertTokenizer(vocab=str(VOCAB_UNCASED), do_lower_case=True)
    lines = novel_lines(2 * pairs)
    ids = np.zeros((pairs, length), np.int32)
    segments = np.zeros((pairs, length), np.int32)
    mask = np.zeros((pairs, length), np.int32)
    for row in range(pairs):
        budget = length - 3 - 4 * row  # rows get shorter: padding in every row but the first
        a = tokenizer.encode(lines[2 * row], add_special_tokens=False)[: budget // 2]
        b = tokenizer.encode(lines[2 * row + 1], add_special_tokens=False)[: budget - budget // 2]
        tokens = [tokenizer.cls_token_id, *a, tokenizer.sep_token_id, *b, tokenizer.sep_token_id]
        ids[row, : len(tokens)] = tokens
        segments[row, len(a) + 2 : len(tokens)] = 1
        mask[row, : len(tokens)] = 1
    return {"token_ids": ids, "segment_ids": segments, "padding_mask": mask}


def hf_kwargs(batch: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {
        "input_ids": torch.tensor(batch["token_ids"], dtype=torch.long),
        "token_type_ids": torch.tensor(batch["segment_ids"], dtype=torch.long),
        "attention_mask": torch.tensor(batch["padding_mask"], dtype=torch.long),
    }


def max_diff_at_tokens(ours, theirs, batch: dict[str, np.ndarray]) -> float:
    """Largest |difference| over non-padding positions.

    Padding *keys* get -10000 (official, ours) vs the dtype minimum (HF) in the attention
    scores: both give softmax weights of 0 at real tokens, but padding *query* rows
    attend differently, so padded positions are excluded from the comparison.
    """
    ours, theirs = np.asarray(ours, np.float64), np.asarray(theirs, np.float64)
    assert ours.shape == theirs.shape, (ours.shape, theirs.shape)
    keep = batch["padding_mask"].astype(bool)
    return float(np.max(np.abs(ours[keep] - theirs[keep])))


@torch.no_grad()
def hf_outputs(model, batch) -> np.ndarray:
    out = model(**hf_kwargs(batch))
    return (out.logits if hasattr(out, "logits") else out.last_hidden_state).numpy()


@torch.no_grad()
def hf_hidden(model, batch) -> np.ndarray:
    base = model.electra if hasattr(model, "electra") else model
    return base(**hf_kwargs(batch)).last_hidden_state.numpy()


# ------------------------------------------------------------------- TF1 checkpoints
def _t(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().numpy().astype(np.float32)


def _dense(names: dict, prefix: str, linear: torch.nn.Linear) -> None:
    names[f"{prefix}/kernel"] = _t(linear.weight).T.copy()  # torch [out, in] -> TF [in, out]
    names[f"{prefix}/bias"] = _t(linear.bias)


def _layer_norm(names: dict, prefix: str, norm: torch.nn.LayerNorm) -> None:
    names[f"{prefix}/gamma"] = _t(norm.weight)
    names[f"{prefix}/beta"] = _t(norm.bias)


def official_names(base, scope: str, with_embeddings: bool) -> dict[str, np.ndarray]:
    """The official TF1 variables of one HF `ElectraModel` under `scope` (electra / generator)."""
    names: dict[str, np.ndarray] = {}
    if with_embeddings:  # both nets read `electra/embeddings` (untied_generator_embeddings=False)
        emb = base.embeddings
        names["electra/embeddings/word_embeddings"] = _t(emb.word_embeddings.weight)
        names["electra/embeddings/position_embeddings"] = _t(emb.position_embeddings.weight)
        names["electra/embeddings/token_type_embeddings"] = _t(emb.token_type_embeddings.weight)
        _layer_norm(names, "electra/embeddings/LayerNorm", emb.LayerNorm)
    if hasattr(base, "embeddings_project"):
        _dense(names, f"{scope}/embeddings_project", base.embeddings_project)
    for i, layer in enumerate(base.encoder.layer):
        prefix = f"{scope}/encoder/layer_{i}"
        _dense(names, f"{prefix}/attention/self/query", layer.attention.self.query)
        _dense(names, f"{prefix}/attention/self/key", layer.attention.self.key)
        _dense(names, f"{prefix}/attention/self/value", layer.attention.self.value)
        _dense(names, f"{prefix}/attention/output/dense", layer.attention.output.dense)
        _layer_norm(names, f"{prefix}/attention/output/LayerNorm", layer.attention.output.LayerNorm)
        _dense(names, f"{prefix}/intermediate/dense", layer.intermediate.dense)
        _dense(names, f"{prefix}/output/dense", layer.output.dense)
        _layer_norm(names, f"{prefix}/output/LayerNorm", layer.output.LayerNorm)
    return names


def official_pretraining_variables(gen, disc) -> dict[str, np.ndarray]:
    """Every variable `run_pretraining.py` creates for a tied generator + discriminator."""
    names = official_names(disc.electra, "electra", with_embeddings=True)
    names.update(official_names(gen.electra, "generator", with_embeddings=False))
    _dense(names, "discriminator_predictions/dense", disc.discriminator_predictions.dense)
    _dense(names, "discriminator_predictions/dense_1", disc.discriminator_predictions.dense_prediction)
    _dense(names, "generator_predictions/dense", gen.generator_predictions.dense)
    _layer_norm(names, "generator_predictions/LayerNorm", gen.generator_predictions.LayerNorm)
    names["generator_predictions/output_bias"] = _t(gen.generator_lm_head.bias)
    return names


def write_tf1_checkpoint(
    directory: Path, variables: dict[str, np.ndarray], step: int = 1000, adam: bool = True,
    extra: dict[str, np.ndarray] | None = None,
) -> str:
    """Write `model.ckpt-<step>` (index + data) and a `checkpoint` state file, as TF1 Saver does."""
    import tensorflow as tf

    directory.mkdir(parents=True, exist_ok=True)
    values = dict(variables)
    rng = np.random.default_rng(step)
    if adam:  # AdamWeightDecayOptimizer slots for every trainable variable
        for name, value in variables.items():
            values[f"{name}/adam_m"] = rng.normal(0, 1e-3, value.shape).astype(np.float32)
            values[f"{name}/adam_v"] = rng.uniform(0, 1e-6, value.shape).astype(np.float32)
        values["global_step"] = np.array(step, np.int64)
    values.update(extra or {})
    prefix = str(directory / f"model.ckpt-{step}")
    names = sorted(values)
    tf.raw_ops.SaveV2(
        prefix=prefix, tensor_names=names, shape_and_slices=[""] * len(names),
        tensors=[tf.constant(values[n]) for n in names],
    )
    (directory / "checkpoint").write_text(
        f'model_checkpoint_path: "model.ckpt-{step}"\nall_model_checkpoint_paths: "model.ckpt-{step}"\n'
    )
    return prefix


def write_json(path: Path, values: dict) -> Path:
    path.write_text(json.dumps(values, indent=2))
    return path
