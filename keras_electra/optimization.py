"""The official optimiser: AdamW (ε 1e-6, decoupled weight decay, no decay on LayerNorm
and biases), global-norm clipping at 1.0, warm-up × linear-decay schedule, and
layer-wise learning-rate decay for fine-tuning.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import keras
from keras import ops

# Variables whose name contains one of these get no weight decay (official:
# "LayerNorm", "layer_norm", "bias"; Keras names LayerNorm weights gamma/beta).
NO_DECAY_PATTERNS = ("gamma", "beta", "bias", "LayerNorm", "layer_norm")


@keras.saving.register_keras_serializable(package="keras_electra")
class WarmupLinearDecay(keras.optimizers.schedules.LearningRateSchedule):
    """lr(t) = peak · (1 − t / total)₊ · min(1, t / warmup): linear decay times linear warm-up."""

    def __init__(self, peak_learning_rate: float, total_steps: int, warmup_steps: int = 0,
                 end_learning_rate: float = 0.0) -> None:
        if total_steps <= 0:
            raise ValueError(f"total_steps must be positive, got {total_steps}")
        if warmup_steps < 0:
            raise ValueError(f"warmup_steps must be >= 0, got {warmup_steps}")
        self.peak_learning_rate = float(peak_learning_rate)
        self.total_steps = int(total_steps)
        self.warmup_steps = int(warmup_steps)
        self.end_learning_rate = float(end_learning_rate)

    def __call__(self, step):
        step = ops.cast(step, "float32")
        progress = ops.minimum(step, float(self.total_steps)) / float(self.total_steps)
        lr = (self.peak_learning_rate - self.end_learning_rate) * (1.0 - progress) + self.end_learning_rate
        if self.warmup_steps > 0:
            lr = lr * ops.minimum(1.0, step / float(self.warmup_steps))
        return lr

    def get_config(self) -> dict:
        return {
            "peak_learning_rate": self.peak_learning_rate,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "end_learning_rate": self.end_learning_rate,
        }


@keras.saving.register_keras_serializable(package="keras_electra")
class ElectraAdamW(keras.optimizers.Adam):
    """Adam with the official decoupled weight decay and optional per-variable LR scales.

    - `weight_decay_rate` is applied as `param -= lr · (update + wd · param)`, like the
      official `AdamWeightDecayOptimizer`, skipping `no_decay_patterns`.
    - `bias_correction=False` (the default) is the official optimiser, which has none;
      `True` divides the moments by (1 − β^t) like Keras/PyTorch Adam (larger early steps).
    - `lr_multipliers` maps a variable path to a factor on its learning rate (weight
      decay included), which is how layer-wise LR decay is applied.
    - `sensitivity_paths` (AdaLoRA): for these variables, also keep the EMAs of the sensitivity
      I = |θ·g| (after the update, with the clipped gradient, as peft) and of its uncertainty
      |I − Ī|, with `sensitivity_betas`; `sensitivity(variable)` returns both.
    """

    def __init__(
        self,
        learning_rate=1e-4,
        weight_decay_rate: float = 0.01,
        beta_1: float = 0.9,
        beta_2: float = 0.999,
        epsilon: float = 1e-6,
        bias_correction: bool = False,
        no_decay_patterns: Iterable[str] = NO_DECAY_PATTERNS,
        lr_multipliers: dict[str, float] | None = None,
        global_clipnorm: float | None = 1.0,
        sensitivity_paths: Iterable[str] = (),
        sensitivity_betas: tuple[float, float] = (0.85, 0.85),
        name: str = "electra_adamw",
        **kwargs,
    ) -> None:
        super().__init__(
            learning_rate=learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
            global_clipnorm=global_clipnorm, name=name, **kwargs,
        )
        self.weight_decay_rate = float(weight_decay_rate)
        self.bias_correction = bool(bias_correction)
        self.no_decay_patterns = tuple(no_decay_patterns)
        self.lr_multipliers = dict(lr_multipliers or {})
        self.sensitivity_paths = tuple(sensitivity_paths)
        self.sensitivity_betas = tuple(float(b) for b in sensitivity_betas)

    def build(self, var_list) -> None:
        if self.built:
            return
        super().build(var_list)
        pattern = re.compile("|".join(map(re.escape, self.no_decay_patterns))) if self.no_decay_patterns else None
        self._decays = []
        self._scales = []
        for var in var_list:
            decays = self.weight_decay_rate > 0 and not (pattern and pattern.search(var.path))
            self._decays.append(decays)
            self._scales.append(float(self.lr_multipliers.get(var.path, 1.0)))
        wanted = set(self.sensitivity_paths)
        self._sensitivity = {
            i: (self.add_variable_from_reference(var, "sensitivity"),
                self.add_variable_from_reference(var, "uncertainty"))
            for i, var in enumerate(var_list) if var.path in wanted
        }

    def sensitivity(self, variable) -> tuple:
        """(Ī, Ū) of a variable listed in `sensitivity_paths`."""
        return self._sensitivity[self._get_variable_index(variable)]

    def apply(self, grads, trainable_variables=None):
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            # An embedding lookup's gradient is IndexedSlices with one row per occurrence of a token, and
            # keras.ops squares those rows before they are summed: the clipping norm and Adam's v got Σg²
            # instead of (Σg)² for a token seen twice in a batch. Dense gradients, as JAX's and as the
            # official code's on TPU (one-hot embeddings), make both exact; the update was dense already.
            grads = [tf.convert_to_tensor(g) if isinstance(g, tf.IndexedSlices) else g for g in grads]
        return super().apply(grads, trainable_variables)

    def update_step(self, gradient, variable, learning_rate):
        index = self._get_variable_index(variable)
        scale = self._scales[index]
        lr = ops.cast(learning_rate, variable.dtype) * scale
        gradient = ops.cast(gradient, variable.dtype)
        m = self._momentums[index]
        v = self._velocities[index]
        self.assign_add(m, ops.multiply(ops.subtract(gradient, m), 1 - self.beta_1))
        self.assign_add(v, ops.multiply(ops.subtract(ops.square(gradient), v), 1 - self.beta_2))
        if self.bias_correction:
            step = ops.cast(self.iterations + 1, variable.dtype)
            m_hat = m / (1 - ops.power(ops.cast(self.beta_1, variable.dtype), step))
            v_hat = v / (1 - ops.power(ops.cast(self.beta_2, variable.dtype), step))
        else:
            m_hat, v_hat = m, v
        update = m_hat / (ops.sqrt(v_hat) + self.epsilon)
        if self._decays[index]:
            update = update + self.weight_decay_rate * variable
        self.assign_sub(variable, lr * update)
        if index in self._sensitivity:
            average, uncertainty = self._sensitivity[index]
            beta1, beta2 = self.sensitivity_betas
            current = ops.abs(variable * gradient)
            self.assign(average, beta1 * average + (1 - beta1) * current)
            self.assign(uncertainty, beta2 * uncertainty + (1 - beta2) * ops.abs(current - average))

    def get_config(self) -> dict:
        config = super().get_config()
        config.update(
            weight_decay_rate=self.weight_decay_rate,
            bias_correction=self.bias_correction,
            no_decay_patterns=list(self.no_decay_patterns),
            lr_multipliers=self.lr_multipliers,
            sensitivity_paths=list(self.sensitivity_paths),
            sensitivity_betas=list(self.sensitivity_betas),
        )
        for key in ("amsgrad", "weight_decay"):
            config.pop(key, None)
        return config


def layer_depth(path: str, num_layers: int, legacy: bool = False) -> int:
    """Depth of a variable for layer-wise decay: embeddings (and their projection) 0, block i → i+1,
    everything else (the task head) num_layers+1, or num_layers+2 with `legacy` (the official
    `task_specific/` depth)."""
    if "embeddings" in path:
        return 0
    match = re.search(r"(?:^|/)layer_(\d+)/", path)
    if match:
        return int(match.group(1)) + 1
    return num_layers + (2 if legacy else 1)


def layerwise_lr_multipliers(
    variables: Iterable[keras.Variable], num_layers: int, decay: float, legacy_off_by_one: bool = False
) -> dict[str, float]:
    """LR factor per variable path: decay ** (top − depth).

    Default: top = num_layers + 1, so the task head gets 1, the top block `decay`, block i
    `decay ** (num_layers − i)` and the embeddings `decay ** (num_layers + 1)`.

    `legacy_off_by_one=True` reproduces the official `_get_layer_lrs` exactly
    (google-research/electra `model/optimization.py`, its issue #51): top = num_layers + 2 and
    the head (`task_specific/`) sits at depth num_layers + 2, so the head still gets the full
    LR but there is a gap below it: the top block gets `decay ** 2`, block i
    `decay ** (num_layers + 1 − i)` and the embeddings `decay ** (num_layers + 2)`.
    """
    top = num_layers + (2 if legacy_off_by_one else 1)
    return {
        var.path: float(decay ** (top - layer_depth(var.path, num_layers, legacy_off_by_one)))
        for var in variables
    }


def create_optimizer(
    learning_rate: float,
    total_steps: int,
    warmup_steps: int,
    weight_decay_rate: float = 0.01,
    epsilon: float = 1e-6,
    bias_correction: bool = False,
    clip_norm: float | None = 1.0,
    lr_multipliers: dict[str, float] | None = None,
    **kwargs,
) -> ElectraAdamW:
    """The paper's optimiser with its warm-up × linear-decay schedule."""
    schedule = WarmupLinearDecay(learning_rate, total_steps, warmup_steps)
    return ElectraAdamW(
        learning_rate=schedule,
        weight_decay_rate=weight_decay_rate,
        epsilon=epsilon,
        bias_correction=bias_correction,
        global_clipnorm=clip_norm,
        lr_multipliers=lr_multipliers,
        **kwargs,
    )
