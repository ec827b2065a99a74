"""Running the string signature with TensorFlow's own `saved_model_cli`.

The string signature of an exported SavedModel tokenises with tensorflow-text ops
(FastBertNormalize, FastWordpieceTokenize, ...). A process that never imports tensorflow_text
does not know them, so a plain `saved_model_cli run` on `serving_default` fails with
"Op type not registered" (`show` works). TensorFlow loads every shared library in the directory
named by `TF_PLUGGABLE_DEVICE_LIBRARY_PATH` when it is imported, which registers ops from any
op library; pointing it at tensorflow-text's op libraries is enough:

    export TF_PLUGGABLE_DEVICE_LIBRARY_PATH=$(python -m keras_electra.export.saved_model_cli --ops-dir)
    saved_model_cli run --dir exports/sst2/1 --tag_set serve \\
        --signature_def serving_default --input_exprs 'text=["a gorgeous, witty movie"]'

`python -m keras_electra.export.saved_model_cli show|run ...` is the same tool with the
variable set for it.
"""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path

OPS_DIR_VARIABLE = "TF_PLUGGABLE_DEVICE_LIBRARY_PATH"


def tf_text_ops_dir() -> Path:
    """The directory of tensorflow-text's op libraries (`_*.so`), found without importing TensorFlow."""
    spec = importlib.util.find_spec("tensorflow_text")
    if spec is None or spec.origin is None:
        raise SystemExit("tensorflow-text is not installed: pip install tensorflow-text")
    ops = Path(spec.origin).parent / "python" / "ops"
    if not any(ops.glob("_*.so")):
        raise SystemExit(f"no tensorflow-text op libraries (_*.so) in {ops}")
    return ops


def main(argv: list[str] | None = None) -> None:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--ops-dir"]:
        print(tf_text_ops_dir())
        return
    os.environ.setdefault(OPS_DIR_VARIABLE, str(tf_text_ops_dir()))  # read when TensorFlow is imported
    from tensorflow.python.tools import saved_model_cli

    sys.argv = ["saved_model_cli", *args]
    saved_model_cli.main()


if __name__ == "__main__":
    main()
