"""Parameter-efficient fine-tuning: LoRA, adapters, BitFit and frozen bottom layers.

All of them only change which variables train (and LoRA adds low-rank factors), so the
task model and its `.keras` format stay the same: `merge_lora` folds the factors back
into plain kernels before saving.
"""

from __future__ import annotations

import keras

from keras_electra.errors import ElectraError
from keras_electra.tasks.base import ElectraTask

PEFT_METHODS = ("none", "lora", "adapter", "bitfit")
LORA_TARGETS = ("query", "value")


def freeze_bottom_layers(model: ElectraTask, num_layers: int) -> None:
    """Freeze the embeddings (and E→H projection) and the lowest `num_layers` transformer blocks."""
    backbone = model.backbone
    if not 0 <= num_layers <= backbone.num_layers:
        raise ElectraError(f"--freeze-layers {num_layers} is outside 0..{backbone.num_layers} (the model's depth)")
    if num_layers == 0:
        return
    backbone.embeddings.trainable = False
    if backbone.embeddings_project is not None:
        backbone.embeddings_project.trainable = False
    for block in backbone.transformer_layers[:num_layers]:
        block.trainable = False


def apply_bitfit(model: ElectraTask) -> None:
    """BitFit (Ben Zaken et al. 2022): train only the backbone's bias terms (LayerNorm β included) and the head."""
    for variable in model.backbone.weights:
        name = variable.path.rsplit("/", 1)[-1]
        variable.trainable = name in ("bias", "beta")


def apply_lora(model: ElectraTask, rank: int = 8, alpha: float | None = None,
               targets: tuple[str, ...] = LORA_TARGETS) -> None:
    """LoRA (Hu et al. 2021) on the attention projections `targets`; the rest of the backbone is frozen."""
    if rank <= 0:
        raise ElectraError(f"--lora-rank must be positive, got {rank}")
    unknown = [t for t in targets if t not in ("query", "key", "value")]
    if unknown:
        raise ElectraError(f"LoRA targets must be query, key or value, got {unknown}")
    for variable in model.backbone.weights:
        variable.trainable = False
    for block in model.backbone.transformer_layers:
        for name in targets:
            dense = getattr(block.attention, name)
            dense.enable_lora(rank, lora_alpha=alpha)
            dense.lora_kernel_a.trainable = True
            dense.lora_kernel_b.trainable = True


def apply_adapters(model: ElectraTask, size: int = 64) -> None:
    """Houlsby adapters after each block's attention and FFN outputs; only they, the LayerNorms and the
    head train. The adapters are part of the saved model (the backbone's config records their size)."""
    if size <= 0:
        raise ElectraError(f"--adapter-size must be positive, got {size}")
    model.backbone.enable_adapters(size)
    for variable in model.backbone.weights:
        path = variable.path
        variable.trainable = "_adapter/" in path or path.rsplit("/", 1)[-1] in ("gamma", "beta")


def has_lora(model: ElectraTask) -> bool:
    return any(getattr(getattr(b.attention, n), "lora_enabled", False)
               for b in model.backbone.transformer_layers for n in ("query", "key", "value"))


def merge_lora(model: ElectraTask) -> ElectraTask:
    """A copy of `model` without LoRA factors: every kernel is W + (α/r)·A·B, ready to save."""
    fresh = model.__class__.from_config(model.get_config())
    source = model.canonical_weights()  # LoRA layers report their merged kernel
    target = fresh.canonical_weights()
    if set(source) != set(target):
        raise ElectraError("cannot merge LoRA: the model's weight names changed")
    for name, variable in target.items():
        variable.assign(keras.ops.convert_to_numpy(source[name]))
    return fresh


def apply_peft(model: ElectraTask, method: str = "none", freeze_layers: int = 0, lora_rank: int = 8,
               lora_alpha: float | None = None, adapter_size: int = 64) -> None:
    if method not in PEFT_METHODS:
        raise ElectraError(f"unknown parameter-efficient method {method!r}; choose from {', '.join(PEFT_METHODS)}")
    if method == "lora":
        apply_lora(model, lora_rank, lora_alpha)
    elif method == "adapter":
        apply_adapters(model, adapter_size)
    elif method == "bitfit":
        apply_bitfit(model)
    freeze_bottom_layers(model, freeze_layers)


def trainable_summary(model: ElectraTask) -> dict[str, int]:
    trainable = sum(int(keras.ops.size(v)) for v in model.trainable_variables)
    total = sum(int(keras.ops.size(v)) for v in model.weights if "seed_generator" not in v.path)
    return {"trainable_parameters": trainable, "total_parameters": total}
