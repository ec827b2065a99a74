"""Resumable pretraining checkpoints, per backend, with one contract.

Each save holds the whole training state: every model variable (weights *and* the seed
generators' states, so masking, sampling and dropout continue the same random stream), every
optimizer variable (moments and `iterations`, which drives the LR schedule), written
atomically; the two newest are kept; restore takes the newest one that reads whole.

- TensorFlow: `tf.train.CheckpointManager` (`checkpoints/ckpt-STEP.index/.data-*`), as always.
- JAX (any non-TensorFlow backend): `checkpoints/ckpt-STEP.npz`, one file written with
  `keras_electra.utils.io.atomic_file` (a temporary renamed into place), holding the variables in
  `model.variables` / `optimizer.variables` order with their paths and shapes checked on restore.
  Keras' own `BackupAndRestore` was not enough: its weights file leaves out the seed generators'
  states, and it keeps only one backup.

Multi-worker runs: every worker restores from the chief's directory (`restore_from`); the other
workers save to their own scratch directory (TensorFlow's saves are collective: all must save).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

import keras
import numpy as np

from keras_electra.errors import CheckpointError
from keras_electra.utils.io import atomic_file

CHECKPOINT_DIR = "checkpoints"
KEEP = 2
_NPZ = re.compile(r"^ckpt-(\d+)\.npz$")


def has_checkpoint(output_dir: Path) -> bool:
    """Whether `output_dir / checkpoints` holds a checkpoint of either kind."""
    directory = Path(output_dir) / CHECKPOINT_DIR
    if not directory.is_dir():
        return False
    return any(_NPZ.match(p.name) or p.name.endswith(".index") for p in directory.iterdir())


def to_numpy(value) -> np.ndarray:
    """A variable's value as numpy; on JAX across processes (multiworker), this process's copy of a
    replicated array (a global array that spans other hosts' devices cannot be fetched whole)."""
    if getattr(value, "is_fully_addressable", True) is False:
        value = value.addressable_data(0)
    return np.asarray(keras.ops.convert_to_numpy(value))


def for_backend(model: keras.Model, optimizer, output_dir: Path, verbose: int = 1,
                restore_from: Path | None = None):
    """The checkpoints of `output_dir`; `restore_from`: another run directory to resume from (the chief's)."""
    directory = Path(output_dir) / CHECKPOINT_DIR
    source = Path(restore_from) / CHECKPOINT_DIR if restore_from is not None else None
    if keras.backend.backend() == "tensorflow":
        return TensorFlowCheckpoints(model, optimizer, directory, verbose, source)
    return KerasCheckpoints(model, optimizer, directory, verbose, source)


class TensorFlowCheckpoints:
    def __init__(self, model, optimizer, directory: Path, verbose: int = 1, restore_from: Path | None = None) -> None:
        import tensorflow as tf

        self.checkpoint = tf.train.Checkpoint(model=model, optimizer=optimizer)
        self.manager = tf.train.CheckpointManager(self.checkpoint, directory, max_to_keep=KEEP)
        self.source = self.manager if restore_from is None else tf.train.CheckpointManager(
            self.checkpoint, restore_from, max_to_keep=KEEP)
        self.verbose = verbose

    def save(self, step: int) -> None:
        self.manager.save(checkpoint_number=step)

    def latest_step(self) -> int | None:
        latest = self.manager.latest_checkpoint
        return int(latest.rsplit("-", 1)[1]) if latest else None

    def restore(self) -> str | None:
        """Restore the newest checkpoint that reads whole; say which ones were skipped and why.

        A kill (or a full disk) can leave a truncated `.data` file; the previous checkpoint is then
        the last good state.
        """
        import tensorflow as tf

        failures = []
        for path in reversed(self.source.checkpoints):
            try:
                self.checkpoint.restore(path).assert_existing_objects_matched()
            except (AssertionError, ValueError, IndexError, tf.errors.OpError) as err:
                failures.append(_skip(path, err, self.verbose))
                continue
            if failures and self.verbose:
                print(f"Resuming from {path}, the newest intact checkpoint")
            return path
        _no_intact(failures)
        return None


class KerasCheckpoints:
    def __init__(self, model, optimizer, directory: Path, verbose: int = 1, restore_from: Path | None = None) -> None:
        self.model, self.optimizer, self.directory, self.verbose = model, optimizer, Path(directory), verbose
        self.source = Path(restore_from) if restore_from is not None else self.directory

    def _variables(self) -> list:
        return [*self.model.variables, *self.optimizer.variables]

    def checkpoints(self, directory: Path | None = None) -> list[tuple[int, Path]]:
        directory = self.directory if directory is None else directory
        if not directory.is_dir():
            return []
        found = [(int(m.group(1)), p) for p in directory.iterdir() if (m := _NPZ.match(p.name))]
        return sorted(found)

    def latest_step(self) -> int | None:
        found = self.checkpoints()
        return found[-1][0] if found else None

    def save(self, step: int) -> None:
        variables = self._variables()
        arrays = {f"v{i}": to_numpy(v.value) for i, v in enumerate(variables)}
        arrays["paths"] = np.array([v.path for v in variables])
        self.directory.mkdir(parents=True, exist_ok=True)
        # An open handle: np.savez would add ".npz" to the temporary's bare path.
        with atomic_file(self.directory / f"ckpt-{step}.npz") as tmp, open(tmp, "wb") as handle:
            np.savez(handle, **arrays)
        for _, old in self.checkpoints()[:-KEEP]:
            old.unlink(missing_ok=True)

    def restore(self) -> str | None:
        failures = []
        variables = self._variables()
        for _, path in reversed(self.checkpoints(self.source)):
            try:
                values = _read_npz(path, variables)
            except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as err:
                failures.append(_skip(str(path), err, self.verbose))
                continue
            for variable, value in zip(variables, values):
                variable.assign(value)
            if failures and self.verbose:
                print(f"Resuming from {path}, the newest intact checkpoint")
            return str(path)
        _no_intact(failures)
        return None


def _read_npz(path: Path, variables: list) -> list[np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        paths = [str(p) for p in data["paths"]]
        if paths != [v.path for v in variables]:
            raise ValueError("its variables do not match the model's (another network or optimizer?)")
        values = [data[f"v{i}"] for i in range(len(variables))]
    for variable, value in zip(variables, values):
        if tuple(value.shape) != tuple(variable.shape):
            raise ValueError(f"{variable.path} has shape {value.shape}, expected {tuple(variable.shape)}")
    return values


def _skip(path: str, err: Exception, verbose: int) -> str:
    reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    if verbose:
        print(f"warning: checkpoint {path} is unreadable ({reason}); trying an older one")
    return f"{path} ({reason})"


def _no_intact(failures: list[str]) -> None:
    if failures:
        first = failures[0]
        raise CheckpointError(f"cannot resume: no readable checkpoint in {Path(first.split(' (')[0]).parent}; "
                              f"{first} is damaged (delete it, or use a new --output)")
