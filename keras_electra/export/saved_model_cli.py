"""TensorFlow's `saved_model_cli`, with the tensorflow-text ops registered first.

The string signature of an exported SavedModel tokenises with tensorflow-text ops
(FastBertNormalize, FastWordpieceTokenize). The `saved_model_cli` script of the TensorFlow
pip package does not load them, so `saved_model_cli run` on `serving_default` fails with
"Op type not registered 'FastBertNormalize'" (`show` works). This entry point is the same
tool with `import tensorflow_text` done first:

    python -m keras_electra.export.saved_model_cli run --dir exports/sst2/1 --tag_set serve \\
        --signature_def serving_default --input_exprs 'text=["a gorgeous, witty movie"]'
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> None:
    import tensorflow_text  # noqa: F401  (registers the tokenizer ops with TensorFlow)
    from tensorflow.python.tools import saved_model_cli

    sys.argv = ["saved_model_cli", *(sys.argv[1:] if argv is None else argv)]
    saved_model_cli.main()


if __name__ == "__main__":
    main()
