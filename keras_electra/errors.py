"""The one exception family that the CLI turns into a clear one-line message.

Raise these (never a bare ValueError from deep inside) for anything a user can fix:
a missing file, the wrong format, an unknown label, a checkpoint of the wrong shape.
"""

from __future__ import annotations


class ElectraError(ValueError):
    """A problem with the user's input, files or options. The message is one line."""


class DataError(ElectraError):
    """Input data is missing, empty or malformed."""


class VocabularyError(ElectraError):
    """A vocabulary file is missing, malformed, or lacks a required special token."""


class CheckpointError(ElectraError):
    """A checkpoint cannot be read, or does not fit the model."""


class TrainingError(ElectraError):
    """Training cannot go on (for example the loss became NaN)."""


class UnknownCheckpointError(CheckpointError):
    """A name that is neither a local path nor a known checkpoint id (Hugging Face, keras-hub, TF1 release)."""


class NetworkError(ElectraError):
    """A checkpoint must be downloaded but the server cannot be reached (or downloads are switched off)."""


class ChecksumError(CheckpointError):
    """A download's sha256 differs from its pin; the message names both hashes."""


class ExportError(ElectraError):
    """A model cannot be exported (or an export cannot be read) as asked."""


class OutputError(ElectraError):
    """An output path cannot be written: busy (another run holds it), unwritable, or the wrong kind."""
