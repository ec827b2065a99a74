"""Parameter-efficient fine-tuning: LoRA, AdaLoRA, adapters, prefix tuning, BitFit and frozen bottom layers.

All of them only change which variables train (and LoRA/AdaLoRA add low-rank factors), so the
task model and its `.keras` format stay the same: `merge_lora` folds the factors back into plain
kernels before saving. Prefix tuning adds `prefix_length` to the backbone's config (plain
[P, H] key/value tensors per layer); its reparameterisation MLP lives only while training and
`fold_prefix` evaluates it once into those tensors. `model_for_saving` picks the right one.
"""

from __future__ import annotations

import dataclasses

import keras
import numpy as np
from keras import ops

from keras_electra.errors import ElectraError
from keras_electra.tasks.base import ElectraTask

PEFT_METHODS = ("none", "lora", "adalora", "adapter", "prefix", "bitfit")
LORA_TARGETS = ("query", "value")
# AdaLoRA adapts every weight matrix of a block (Zhang et al. 2023: Wq, Wk, Wv, Wo, Wf1, Wf2).
ADALORA_TARGETS = ("query", "key", "value", "attention_output", "intermediate", "output")


@dataclasses.dataclass
class AdaLoraOptions:
    """AdaLoRA's hyper-parameters; the defaults are Hugging Face peft's `AdaLoraConfig`."""

    init_rank: int = 12  # r of every P·Λ·Q at the start (the budget b(0) = init_rank × matrices)
    target_rank: int = 8  # average rank left at the end (b(T) = target_rank × matrices)
    tinit: int = 0  # warm-up steps at the full budget
    tfinal: int = 0  # final steps at the target budget, with the rank pattern fixed
    delta_t: int = 1  # reallocate every delta_t steps while the budget shrinks
    beta1: float = 0.85  # EMA of the sensitivity |θ·∇θ|
    beta2: float = 0.85  # EMA of its uncertainty |I − Ī|
    orth_reg_weight: float = 0.5  # γ: weight of ‖PᵀP − I‖_F + ‖QQᵀ − I‖_F (mean over matrices)
    alpha: float = 8.0  # the update is scaled by alpha / init_rank
    targets: tuple[str, ...] = ADALORA_TARGETS


@dataclasses.dataclass
class PrefixOptions:
    """Prefix tuning: P virtual tokens per layer, through an MLP of `hidden` units (Li & Liang 2021: 512)."""

    length: int = 20
    hidden: int = 512


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


# ----------------------------------------------------------------------------------- AdaLoRA
@keras.saving.register_keras_serializable(package="keras_electra")
class AdaLoraDense(keras.layers.Dense):
    """A Dense whose kernel is W + (α/r)·(P·Λ·Q)ᵀ (AdaLoRA's SVD-form update, [in, out] as our kernels).

    Q [r, in] and P [out, r] start as N(0, 0.02), Λ [r] at zero, so training starts from W. A rank
    is pruned by zeroing its Λ entry (`AdaLoraAllocator`). Like Keras' LoRA, `kernel` reports the
    merged kernel, so `canonical_weights` (and `merge_lora`) see plain weights. The layer is made
    from an existing Dense by `enable_adalora` (its class is switched, its variables kept); the
    block that holds it never serialises it as such, so a saved model has plain Dense layers.
    """

    def kernel_delta(self):
        scale = self.adalora_alpha / self.adalora_rank
        factors = ops.transpose(self.adalora_q * ops.expand_dims(self.adalora_e, 1))  # [in, r]
        return scale * ops.matmul(factors, ops.transpose(self.adalora_p))

    @property
    def kernel(self):
        return ops.cast(ops.add(keras.layers.Dense.kernel.fget(self), self.kernel_delta()), self.compute_dtype)

    def orthogonality(self):
        """‖QQᵀ − I‖_F + ‖PᵀP − I‖_F, the two terms of the paper's R(P, Q)."""
        eye = ops.eye(self.adalora_rank, dtype=self.adalora_q.dtype)
        q, p = self.adalora_q, self.adalora_p
        return (ops.sqrt(ops.sum(ops.square(ops.matmul(q, ops.transpose(q)) - eye)))
                + ops.sqrt(ops.sum(ops.square(ops.matmul(ops.transpose(p), p) - eye))))

    def call(self, inputs, training=None):
        if training and self.adalora_reg_scale:
            self.add_loss(self.adalora_reg_scale * self.orthogonality())
        return super().call(inputs, training=training)


def enable_adalora(dense: keras.layers.Dense, rank: int, alpha: float, reg_scale: float) -> AdaLoraDense:
    """Turn a built Dense into an `AdaLoraDense` of rank `rank` in place (its kernel and bias stay)."""
    dense.__class__ = AdaLoraDense
    dense.adalora_rank = int(rank)
    dense.adalora_alpha = float(alpha)
    dense.adalora_reg_scale = float(reg_scale)
    units_in, units_out = dense._kernel.shape
    init = keras.initializers.RandomNormal(stddev=0.02)
    dense._tracker.unlock()  # as Dense.enable_lora; paths like layer_0/attention/query/adalora_q
    dense.adalora_q = dense.add_weight(name="adalora_q", shape=(rank, units_in), initializer=init)
    dense.adalora_e = dense.add_weight(name="adalora_e", shape=(rank,), initializer="zeros")
    dense.adalora_p = dense.add_weight(name="adalora_p", shape=(units_out, rank), initializer=init)
    dense._tracker.lock()
    return dense


def _adalora_target(block, name: str) -> keras.layers.Dense:
    if name in ("query", "key", "value"):
        return getattr(block.attention, name)
    return getattr(block, f"{name}_dense")


def apply_adalora(model: ElectraTask, options: AdaLoraOptions | None = None) -> None:
    """AdaLoRA (Zhang et al., ICLR 2023) on `options.targets` of every block; the rest of the backbone is frozen.

    Training needs `AdaLoraAllocator` (the rank budget) and an optimiser that tracks the
    sensitivities (`peft_optimizer_options`); `keras-electra finetune` adds both."""
    options = options or AdaLoraOptions()
    if options.target_rank <= 0 or options.init_rank < options.target_rank:
        raise ElectraError(f"AdaLoRA needs 0 < --adalora-target-rank <= --adalora-init-rank, got "
                           f"{options.target_rank} and {options.init_rank}")
    unknown = [t for t in options.targets if t not in ADALORA_TARGETS]
    if unknown:
        raise ElectraError(f"AdaLoRA targets must be among {', '.join(ADALORA_TARGETS)}, got {unknown}")
    if options.delta_t <= 0:
        raise ElectraError(f"--adalora-delta-t must be positive, got {options.delta_t}")
    for variable in model.backbone.weights:
        variable.trainable = False
    blocks = model.backbone.transformer_layers
    count = 2 * len(blocks) * len(options.targets)  # P and Q of every matrix: the regulariser is their mean
    for block in blocks:
        for name in options.targets:
            enable_adalora(_adalora_target(block, name), options.init_rank, options.alpha,
                           options.orth_reg_weight / count)
    model.adalora_options = options  # read by `peft_callbacks`


def adalora_layers(model: ElectraTask) -> list[AdaLoraDense]:
    return [layer for block in model.backbone.transformer_layers for name in ADALORA_TARGETS
            if isinstance(layer := _adalora_target(block, name), AdaLoraDense)]


def orthogonality_penalty(model: ElectraTask) -> float:
    """The mean ‖PᵀP − I‖_F / ‖QQᵀ − I‖_F over every AdaLoRA matrix (without the weight γ)."""
    layers = adalora_layers(model)
    return float(sum(float(ops.convert_to_numpy(layer.orthogonality())) for layer in layers) / (2 * len(layers)))


def adalora_ranks(model: ElectraTask) -> dict[str, int]:
    """The ranks in use (non-zero Λ entries) per adapted matrix, by layer path."""
    return {layer.path: int(np.count_nonzero(ops.convert_to_numpy(layer.adalora_e))) for layer in adalora_layers(model)}


class AdaLoraAllocator(keras.callbacks.Callback):
    """AdaLoRA's budget schedule and importance-based rank allocation, after every optimiser step.

    Budget b(t) (in ranks over all matrices): b(0) for t ≤ tinit, then the cubic decay
    b(T) + (b(0) − b(T))·(1 − (t − tinit)/(T − tfinal − tinit))³, then b(T) for the last tfinal steps.
    The importance of rank i of a matrix is S(Λᵢ) + mean_j S(P_ji) + mean_j S(Q_ij), with
    S = Ī·Ū, the EMAs of the sensitivity |θ·∇θ| and of its uncertainty that the optimiser keeps
    (`ElectraAdamW(sensitivity_paths=...)`). Every delta_t steps while the budget shrinks, the ranks
    under the budget's threshold get Λᵢ = 0; at T − tfinal the pattern is frozen and re-applied
    after every later step, so the final model holds exactly b(T) ranks (ties aside).
    """

    def __init__(self, options: AdaLoraOptions, total_steps: int) -> None:
        super().__init__()
        self.options = options
        self.total_steps = int(total_steps)
        if options.tinit + options.tfinal >= self.total_steps:
            raise ElectraError(f"AdaLoRA needs --adalora-tinit + --adalora-tfinal ({options.tinit} + "
                               f"{options.tfinal}) below the {self.total_steps} training steps")
        self.step = 0
        self.pattern: dict[str, np.ndarray] | None = None
        self.budgets: list[tuple[int, int]] = []  # (step, budget) whenever ranks were reallocated

    def budget(self, step: int) -> tuple[int, bool]:
        """(the budget at `step`, whether to reallocate at this step)."""
        o = self.options
        layers = adalora_layers(self.model)
        initial, target = o.init_rank * len(layers), o.target_rank * len(layers)
        if step <= o.tinit:
            return initial, False
        if step > self.total_steps - o.tfinal:
            return target, True
        remaining = 1 - (step - o.tinit) / (self.total_steps - o.tfinal - o.tinit)
        return int((initial - target) * remaining**3 + target), step % o.delta_t == 0

    def _scores(self) -> dict[str, np.ndarray]:
        optimizer = self.model.optimizer

        def score(variable) -> np.ndarray:
            ipt, unc = optimizer.sensitivity(variable)
            return ops.convert_to_numpy(ipt) * ops.convert_to_numpy(unc)

        return {layer.path: score(layer.adalora_e) + score(layer.adalora_q).mean(axis=1)
                + score(layer.adalora_p).mean(axis=0) for layer in adalora_layers(self.model)}

    def _mask(self, keep: dict[str, np.ndarray]) -> None:
        for layer in adalora_layers(self.model):
            e = layer.adalora_e
            e.assign(ops.convert_to_numpy(e) * keep[layer.path].astype(e.dtype))

    def _allocate(self, budget: int) -> dict[str, np.ndarray]:
        scores = self._scores()
        everything = np.concatenate(list(scores.values()))
        pruned = everything.size - budget
        if pruned <= 0:
            return {path: np.ones_like(s, bool) for path, s in scores.items()}
        threshold = np.partition(everything, pruned - 1)[pruned - 1]  # the pruned-th smallest score
        keep = {path: s > threshold for path, s in scores.items()}
        self._mask(keep)
        self.budgets.append((self.step, budget))
        return keep

    def on_train_batch_end(self, batch, logs=None) -> None:
        self.step += 1
        final_start = self.total_steps - self.options.tfinal
        if self.step < final_start:
            budget, reallocate = self.budget(self.step)
            if reallocate:
                self._allocate(budget)
        elif self.step == final_start or self.pattern is None:
            self.pattern = self._allocate(self.budget(self.step)[0])
        else:
            self._mask(self.pattern)


# ------------------------------------------------------------------------------- prefix tuning
@keras.saving.register_keras_serializable(package="keras_electra")
class PrefixEncoder(keras.layers.Layer):
    """Li & Liang's reparameterisation: P embeddings [P, H] → dense(hidden, tanh) → dense(layers·2·H).

    `layer_prefix(i)` gives block i's ([P, H] key, [P, H] value). Trained instead of the prefixes
    themselves (the paper found direct optimisation unstable), then evaluated once by `fold_prefix`.
    """

    def __init__(self, length: int, hidden_size: int, num_layers: int, mlp_hidden: int = 512, **kwargs) -> None:
        super().__init__(**kwargs)
        self.length = int(length)
        self.hidden_size = int(hidden_size)
        self.num_layers = int(num_layers)
        self.mlp_hidden = int(mlp_hidden)
        self.up = keras.layers.Dense(self.mlp_hidden, activation="tanh", name="mlp_hidden", dtype=self.dtype_policy)
        self.out = keras.layers.Dense(self.num_layers * 2 * self.hidden_size, name="mlp_output",
                                      dtype=self.dtype_policy)

    def build(self, input_shape=None) -> None:
        self.embeddings = self.add_weight(shape=(self.length, self.hidden_size), name="embeddings",
                                          initializer=keras.initializers.RandomNormal(stddev=1.0))
        self.up.build((self.length, self.hidden_size))
        self.out.build((self.length, self.mlp_hidden))
        self.built = True

    def all_prefixes(self):
        """[layers, 2, P, H]: every block's key and value prefixes."""
        flat = self.out(self.up(self.embeddings))  # [P, layers·2·H]
        return ops.transpose(ops.reshape(flat, (self.length, self.num_layers, 2, self.hidden_size)), (1, 2, 0, 3))

    def layer_prefix(self, index: int):
        prefixes = self.all_prefixes()[index]
        return prefixes[0], prefixes[1]

    def get_config(self) -> dict:
        return {**super().get_config(), "length": self.length, "hidden_size": self.hidden_size,
                "num_layers": self.num_layers, "mlp_hidden": self.mlp_hidden}


def apply_prefix(model: ElectraTask, options: PrefixOptions | None = None) -> None:
    """Prefix tuning: only the prefix MLP and the task head train."""
    options = options or PrefixOptions()
    if options.length <= 0 or options.hidden <= 0:
        raise ElectraError(f"--prefix-length and --prefix-hidden must be positive, got {options.length} and "
                           f"{options.hidden}")
    backbone = model.backbone
    if backbone.prefix_length:
        raise ElectraError(f"the model already has prefixes of length {backbone.prefix_length}")
    for variable in backbone.weights:
        variable.trainable = False
    backbone.enable_prefix(options.length)
    for variable in backbone.weights:  # the plain prefixes are written by fold_prefix, never trained
        variable.trainable = False
    encoder = PrefixEncoder(options.length, backbone.hidden_size, backbone.num_layers, options.hidden,
                            name="prefix_encoder", dtype=backbone.dtype_policy)
    encoder.build()
    model._tracker.unlock()
    model.prefix_encoder = encoder  # tracked by the task model, so its variables train
    model._tracker.lock()
    for i, block in enumerate(backbone.transformer_layers):
        block.attention.attach_prefix_source(encoder, i)


def has_prefix_encoder(model: ElectraTask) -> bool:
    return getattr(model, "prefix_encoder", None) is not None


def fold_prefix(model: ElectraTask) -> ElectraTask:
    """A copy of a prefix-tuned `model` without its MLP: each block keeps the [P, H] prefixes it produced."""
    fresh = model.__class__.from_config(model.get_config())  # the config has prefix_length, not the MLP
    source, target = model.canonical_weights(), fresh.canonical_weights()
    for name, variable in target.items():
        variable.assign(ops.convert_to_numpy(source[name]))
    prefixes = ops.convert_to_numpy(model.prefix_encoder.all_prefixes())
    for i, block in enumerate(fresh.backbone.transformer_layers):
        block.attention.prefix_key.assign(prefixes[i, 0])
        block.attention.prefix_value.assign(prefixes[i, 1])
    return fresh


# ------------------------------------------------------------------------------- saving and training hooks
def has_lora(model: ElectraTask) -> bool:
    """LoRA or AdaLoRA factors are present (merge before saving)."""
    return bool(adalora_layers(model)) or any(
        getattr(getattr(b.attention, n), "lora_enabled", False)
        for b in model.backbone.transformer_layers for n in ("query", "key", "value"))


def model_for_saving(model: ElectraTask) -> ElectraTask | None:
    """The plain model to save: (Ada)LoRA merged, or prefixes folded; None when `model` needs neither."""
    if has_prefix_encoder(model):
        return fold_prefix(model)
    if has_lora(model):
        return merge_lora(model)
    return None


def peft_optimizer_options(model: ElectraTask) -> dict:
    """Extra `create_optimizer` arguments: AdaLoRA's sensitivities are kept by the optimiser (it sees the gradients)."""
    options = getattr(model, "adalora_options", None)
    if options is None or not adalora_layers(model):
        return {}
    paths = [v.path for layer in adalora_layers(model) for v in (layer.adalora_q, layer.adalora_e, layer.adalora_p)]
    return {"sensitivity_paths": paths, "sensitivity_betas": (options.beta1, options.beta2)}


def peft_callbacks(model: ElectraTask, total_steps: int) -> list[keras.callbacks.Callback]:
    options = getattr(model, "adalora_options", None)
    return [AdaLoraAllocator(options, total_steps)] if options is not None and adalora_layers(model) else []


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
               lora_alpha: float | None = None, adapter_size: int = 64, adalora: AdaLoraOptions | None = None,
               prefix: PrefixOptions | None = None) -> None:
    if method not in PEFT_METHODS:
        raise ElectraError(f"unknown parameter-efficient method {method!r}; choose from {', '.join(PEFT_METHODS)}")
    if method == "lora":
        apply_lora(model, lora_rank, lora_alpha)
    elif method == "adalora":
        apply_adalora(model, adalora)
    elif method == "prefix":
        apply_prefix(model, prefix)
    elif method == "adapter":
        apply_adapters(model, adapter_size)
    elif method == "bitfit":
        apply_bitfit(model)
    freeze_bottom_layers(model, freeze_layers)


def trainable_summary(model: ElectraTask) -> dict[str, int]:
    trainable = sum(int(keras.ops.size(v)) for v in model.trainable_variables)
    total = sum(int(keras.ops.size(v)) for v in model.weights if "seed_generator" not in v.path)
    return {"trainable_parameters": trainable, "total_parameters": total}
