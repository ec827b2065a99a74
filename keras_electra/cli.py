"""`keras-electra` command line: argument parsing only; every command calls the library.

Each area owns its sub-commands in `<area>/cli.py` with a `register(subparsers)` function
that adds parsers and sets `func`. Problems a user can fix surface as one line.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

COMMAND_MODULES = (
    "keras_electra.pretraining.cli",  # quickstart, pretrain
    "keras_electra.data.cli",  # build-vocab, build-data
    "keras_electra.convert.cli",  # convert
    "keras_electra.tasks.cli",  # finetune, evaluate, predict
    "keras_electra.tasks.prompt_cli",  # zero-shot
    "keras_electra.export.cli",  # export
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="keras-electra", description="ELECTRA for Keras: pretrain, fine-tune, convert, export.",
        epilog="Backends: Keras runs on KERAS_BACKEND (default tensorflow; jax too). Prediction and export "
        "(predict, export) need TensorFlow whatever the backend, and so do tokenising and packing (build-vocab, "
        "build-data, text input), which use tensorflow-text. On JAX, pretraining reads `build-data --format "
        "arrayrecord` shards without TensorFlow (keras_electra.data.shards, grain).",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name == name:  # that area has no commands yet
                continue
            raise
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    # Keras warns that tf.data input ignores `shuffle=True`; our datasets shuffle themselves.
    warnings.filterwarnings("ignore", message=".*`shuffle=True` was passed.*")
    parser = build_parser()
    args = parser.parse_args(argv)
    from keras_electra.errors import ElectraError

    try:
        result = args.func(args)
        sys.stdout.flush()  # inside the try: a closed pipe surfaces here, not at interpreter exit
    except ElectraError as err:
        print(f"keras-electra {args.command}: error: {err}", file=sys.stderr)
        return 2
    except FileNotFoundError as err:
        print(f"keras-electra {args.command}: error: file not found: {err.filename or err}", file=sys.stderr)
        return 2
    except (PermissionError, IsADirectoryError, NotADirectoryError, FileExistsError) as err:
        # A backstop: outputs are checked before the work starts (keras_electra.utils.io.check_output).
        print(f"keras-electra {args.command}: error: {err.strerror or err}: {err.filename}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"keras-electra {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (`| head`) closed the pipe: stop quietly, as Unix tools do.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    return int(result or 0)


if __name__ == "__main__":
    sys.exit(main())
