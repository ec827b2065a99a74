"""Weights & Biases tracking (`--wandb PROJECT` on `pretrain` and `finetune`), beside TensorBoard.

TensorBoard stays the default and is always written; W&B is opt-in, through the official `wandb`
client, imported only when a run asks for it. A W&B run gets the same scalars under the same names
as the TensorBoard logs (`train/loss`, `epoch/dev_accuracy`, `heldout/disc_auc`...), each with its own
x-axis (`train/step`, `epoch/epoch`, `heldout/step`, declared with `define_metric`), the run's config,
and the final results as the run summary. `WANDB_MODE=offline` writes the run to disk only
(`wandb sync DIR` uploads it later); `read_offline_run` reads such a run back.
"""

from __future__ import annotations

import math
import os
import struct
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from keras_electra.errors import ElectraError

# The x-axis of every group of scalars, as TensorBoard's step.
STEP_KEYS = {"train": "train/step", "epoch": "epoch/epoch", "heldout": "heldout/step"}


def _import_wandb():
    try:
        import wandb
    except ImportError:
        raise ElectraError("--wandb needs the wandb package: pip install wandb (or keras-electra[wandb])") from None
    return wandb


def _scalars(values: Mapping[str, Any], prefix: str) -> dict[str, float]:
    """`prefix/key` for every finite number in `values` (lists: `key/layer_i`, as in TensorBoard)."""
    out: dict[str, float] = {}
    for key, value in values.items():
        if isinstance(value, list | tuple):
            for i, item in enumerate(value):
                if isinstance(item, int | float) and not isinstance(item, bool):
                    out[f"{prefix}/{key}/layer_{i}"] = float(item)
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if not isinstance(value, bool) and math.isfinite(number):
            out[f"{prefix}/{key}"] = number
    return out


def _flatten(values: Any, prefix: str = "") -> dict[str, Any]:
    """Nested results -> flat `a/b/c` keys with numbers and strings (for the run summary)."""
    out: dict[str, Any] = {}
    if isinstance(values, Mapping):
        for key, value in values.items():
            out.update(_flatten(value, f"{prefix}/{key}" if prefix else str(key)))
    elif isinstance(values, bool | str) or (isinstance(values, int | float) and math.isfinite(float(values))):
        out[prefix] = values
    return out


class WandbRun:
    """One W&B run: `log(values, group, step)`, `finish(results)`."""

    def __init__(self, project: str, config: Mapping[str, Any], directory: str | Path | None = None,
                 name: str | None = None, job_type: str | None = None, group: str | None = None) -> None:
        wandb = _import_wandb()
        kwargs: dict[str, Any] = {}
        if directory is not None and not os.environ.get("WANDB_DIR"):
            Path(directory).mkdir(parents=True, exist_ok=True)
            kwargs["dir"] = str(directory)
        self.run = wandb.init(project=project, config=dict(config), name=name, job_type=job_type, group=group,
                              reinit="finish_previous", **kwargs)
        for group_name, step in STEP_KEYS.items():
            self.run.define_metric(step)
            self.run.define_metric(f"{group_name}/*", step_metric=step)
        self._curve_logged = 0

    def log(self, values: Mapping[str, Any], group: str, step: int) -> None:
        scalars = _scalars(values, group)
        if scalars:
            self.run.log({**scalars, STEP_KEYS[group]: step})

    def log_curve(self, curve: list[dict[str, Any]]) -> None:
        """The held-out points (`heldout_curve.json` entries) not logged yet, as `heldout/*`."""
        for point in curve[self._curve_logged:]:
            self.log({k: v for k, v in point.items() if k != "step"}, "heldout", int(point["step"]))
        self._curve_logged = len(curve)

    def finish(self, results: Mapping[str, Any] | None = None, exit_code: int = 0) -> None:
        if results:
            self.run.summary.update(_flatten(results))
        self.run.finish(exit_code=exit_code)

    @property
    def directory(self) -> Path:
        return Path(self.run.dir).parent  # run.dir is the run's files/ folder


def keras_callback(run: WandbRun, every: int = 10, heldout_curve: list | None = None):
    """A Keras callback mirroring the TensorBoard scalars: `train/*` every `every` steps (with the learning
    rate), `epoch/*` per epoch (dev metrics included), and new points of a held-out curve as `heldout/*`."""
    import keras

    class WandbCallback(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self._step = 0

        def on_train_begin(self, logs=None) -> None:
            self._step = int(keras.ops.convert_to_numpy(self.model.optimizer.iterations))

        def on_train_batch_end(self, batch, logs=None) -> None:
            self._step += 1
            if logs and self._step % every == 0:
                lr = self.model.optimizer.learning_rate
                run.log({**logs, "learning_rate": float(keras.ops.convert_to_numpy(lr))}, "train", self._step)
            if heldout_curve is not None:
                run.log_curve(heldout_curve)

        def on_epoch_end(self, epoch, logs=None) -> None:
            run.log(logs or {}, "epoch", epoch + 1)

    return WandbCallback()


def start(project: str | None, config: Mapping[str, Any], directory: str | Path, name: str | None = None,
          job_type: str | None = None) -> WandbRun | None:
    """A `WandbRun` when `project` is given (`--wandb PROJECT`), else None (wandb is not imported)."""
    if not project:
        return None
    return WandbRun(project, _json_safe(config), directory, name=name, job_type=job_type)


def _json_safe(values: Any) -> Any:
    if isinstance(values, Mapping):
        return {str(k): _json_safe(v) for k, v in values.items()}
    if isinstance(values, list | tuple):
        return [_json_safe(v) for v in values]
    if values is None or isinstance(values, bool | int | float | str):
        return values
    return str(values)


# ------------------------------------------------------------------ reading runs
_HEADER = b":W&B"
_BLOCK = 32768
_RECORD_HEADER = 7  # crc32 (4), length (2), type (1)
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


def _records(path: Path) -> Iterator[Any]:
    """The protobuf `Record`s of a `.wandb` transaction log (LevelDB log framing: 32 KiB blocks,
    chunks typed full/first/middle/last), decoded with wandb's own `wandb_internal_pb2.Record`."""
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    if data[:4] != _HEADER:
        raise ElectraError(f"{path} is not a W&B run file (no :W&B header)")
    pos, parts = 7, []
    while pos + _RECORD_HEADER <= len(data):
        left = _BLOCK - pos % _BLOCK
        if left < _RECORD_HEADER:  # a block's tail too short for a header is padding
            pos += left
            continue
        _, length, kind = struct.unpack("<IHB", data[pos:pos + _RECORD_HEADER])
        if kind == 0:  # zero padding to the end of the block
            pos += left
            continue
        parts.append(data[pos + _RECORD_HEADER:pos + _RECORD_HEADER + length])
        pos += _RECORD_HEADER + length
        if kind in (_FULL, _LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(b"".join(parts))
            parts = []
            yield record


def read_offline_run(run_dir: str | Path) -> dict[str, Any]:
    """An offline run directory (`wandb/offline-run-*`) -> {"config", "history": [rows], "summary"},
    values decoded from their JSON as wandb wrote them."""
    import json

    run_dir = Path(run_dir)
    files = sorted(run_dir.glob("run-*.wandb"))
    if not files:
        raise ElectraError(f"{run_dir}: no run-*.wandb file")
    config: dict[str, Any] = {}
    history: list[dict[str, Any]] = []
    summary: dict[str, Any] = {}

    def key_of(item) -> str:
        return "/".join(item.nested_key) if item.nested_key else item.key

    for record in _records(files[0]):
        kind = record.WhichOneof("record_type")
        if kind == "history":
            history.append({key_of(i): json.loads(i.value_json) for i in record.history.item})
        elif kind == "config":
            for item in record.config.update:
                config[key_of(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                summary[key_of(item)] = json.loads(item.value_json)
        elif kind == "run":
            for item in record.run.config.update:
                config[key_of(item)] = json.loads(item.value_json)
    config = {k: v.get("value", v) if isinstance(v, dict) and "value" in v else v for k, v in config.items()}
    return {"config": config, "history": history, "summary": summary}
