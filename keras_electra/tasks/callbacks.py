"""Keras callbacks of a fine-tuning run: dev evaluation (best epoch, early stopping), TensorBoard, step losses."""

from __future__ import annotations

import math
import time
from pathlib import Path

import keras
import numpy as np

from keras_electra.errors import ElectraError, TrainingError
from keras_electra.tasks.registry import TaskSpec


class DevEvaluation(keras.callbacks.Callback):
    """After each epoch: the dev metrics (added to the logs as `dev_*`), best weights, early stopping."""

    def __init__(self, spec: TaskSpec, examples: list, batch_size: int, metric: str,
                 patience: int | None = None, keep_best: bool = True) -> None:
        super().__init__()
        self.keep_best = keep_best  # False (paper protocol): no early stopping, the last epoch is kept
        self.spec = spec
        self.examples = examples
        self.batch_size = batch_size
        self.metric = metric
        self.patience = patience
        self.best: float = -math.inf
        self.best_epoch: int | None = None
        self.best_weights: list | None = None
        self.best_predictions: dict | None = None
        self.history: list[dict[str, float]] = []
        self._wait = 0

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        logs = logs if logs is not None else {}
        loss = logs.get("loss")
        if loss is not None and not math.isfinite(float(loss)):
            raise TrainingError(f"the training loss became {loss} in epoch {epoch + 1}; lower --learning-rate")
        runner = self.spec.runner
        predictions = runner.predict(self.model, self.examples, self.batch_size)
        scores = runner.score(self.spec.name, self.examples, predictions, self.model)
        flat = {k: float(v) for k, v in scores.items() if isinstance(v, int | float) and k not in ("total", "skipped")}
        for k, v in flat.items():
            logs[f"dev_{k}"] = v
        self.history.append({"epoch": epoch + 1, **flat})
        value = flat.get(self.metric)
        if value is None:
            raise ElectraError(f"dev metric {self.metric!r} is not among {sorted(flat)}")
        if not self.keep_best:
            self.best, self.best_epoch, self.best_predictions = value, epoch + 1, predictions
            return
        if value > self.best:
            self.best, self.best_epoch, self._wait = value, epoch + 1, 0
            self.best_weights = [np.array(w) for w in self.model.get_weights()]
            self.best_predictions = predictions
        else:
            self._wait += 1
            if self.patience and self._wait >= self.patience:
                self.model.stop_training = True

    def on_train_end(self, logs=None) -> None:
        if self.keep_best and self.best_weights is not None:
            self.model.set_weights(self.best_weights)


class ScalarLogger(keras.callbacks.Callback):
    """TensorBoard scalars (`train/*` per step, `epoch/*` incl. dev metrics per epoch).

    Written with core `tf.summary.write` and the scalars plugin metadata, so the event
    files are the ones `tf.summary.scalar` writes, without needing the tensorboard package.
    """

    def __init__(self, log_dir: str | Path, every: int = 10) -> None:
        super().__init__()
        import tensorflow as tf
        from tensorflow.core.framework import summary_pb2

        self._tf = tf
        self._writer = tf.summary.create_file_writer(str(log_dir))
        self._metadata = summary_pb2.SummaryMetadata(
            plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name="scalars"),
            data_class=summary_pb2.DATA_CLASS_SCALAR,
        )
        self.every = every
        self._step = 0

    def _write(self, values: dict, prefix: str, step: int) -> None:
        with self._writer.as_default():
            for key, value in values.items():
                if isinstance(value, int | float | np.floating):
                    self._tf.summary.write(f"{prefix}/{key}", self._tf.constant(float(value)), step=step,
                                           metadata=self._metadata)

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._step += 1
        if logs and self._step % self.every == 0:
            lr = self.model.optimizer.learning_rate
            self._write({**logs, "learning_rate": float(keras.ops.convert_to_numpy(lr))}, "train", self._step)

    def on_epoch_end(self, epoch, logs=None) -> None:
        self._write(logs or {}, "epoch", epoch + 1)
        self._writer.flush()

    def on_train_end(self, logs=None) -> None:
        self._writer.close()


class StepLosses(keras.callbacks.Callback):
    """The running training loss after every step, for the curves."""

    def __init__(self) -> None:
        super().__init__()
        self.steps: list[int] = []
        self.losses: list[float] = []
        self.seconds: list[float] = []
        self._step = 0
        self._start = 0.0

    def on_train_batch_begin(self, batch, logs=None) -> None:
        self._start = time.perf_counter()

    def on_train_batch_end(self, batch, logs=None) -> None:
        self._step += 1
        self.seconds.append(time.perf_counter() - self._start)
        if logs and "loss" in logs:
            self.steps.append(self._step)
            self.losses.append(float(logs["loss"]))
