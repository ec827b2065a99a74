"""The JAX pretraining path runs where TensorFlow cannot be imported (issue 16: the GPU machine has none).

The imports are blocked by a `sys.meta_path` finder (tests/tf_blocked.py), not merely absent.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import NOVELS, VOCAB_UNCASED
from tests.tf_blocked import run_without_tensorflow

# The modules the JAX pretraining path needs; prediction, export and tokenising need TensorFlow.
TENSORFLOW_FREE = (
    "keras_electra",
    "keras_electra.config",
    "keras_electra.errors",
    "keras_electra.layers",
    "keras_electra.layers.embeddings",
    "keras_electra.layers.heads",
    "keras_electra.layers.initializers",
    "keras_electra.layers.random",
    "keras_electra.layers.transformer",
    "keras_electra.models",
    "keras_electra.models.backbone",
    "keras_electra.models.discriminator",
    "keras_electra.models.generator",
    "keras_electra.models.serialization",
    "keras_electra.pretraining.masking",
    "keras_electra.optimization",
    "keras_electra.pretraining.pretrainer",
    "keras_electra.pretraining.steps",
    "keras_electra.pretraining.checkpoints",
    "keras_electra.pretraining.trainer",
    "keras_electra.data.shards",
    "keras_electra.data.vocabulary",
    "keras_electra.utils",
    "keras_electra.utils.io",
    "keras_electra.utils.devices",
    "keras_electra.cli",
)


def test_jax_path_modules_import_without_tensorflow():
    done = run_without_tensorflow("""
        import importlib, json, sys
        for name in ("tensorflow", "tensorflow_text", "tensorflow.python"):  # the blocker blocks
            try:
                __import__(name)
            except ModuleNotFoundError as err:
                assert "blocked" in str(err) and err.name == name.split(".")[0], err
            else:
                raise SystemExit(f"{name} was imported")
        failed = {}
        for name in sys.argv[1:]:
            try:
                importlib.import_module(name)
            except Exception as err:
                failed[name] = f"{type(err).__name__}: {err}"
        import keras
        print(json.dumps({"failed": failed, "backend": keras.backend.backend()}))
    """, args=TENSORFLOW_FREE)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"failed": {}, "backend": "jax"}, result


def test_shards_feed_a_jax_model_without_tensorflow(tmp_path):
    """write_shards → shard_batches → masking → generator and discriminator forward, all with TF blocked."""
    done = run_without_tensorflow("""
        import json, sys
        import numpy as np
        import keras
        from keras_electra.config import ElectraConfig
        from keras_electra.data.shards import shard_batches, write_shards
        from keras_electra.models.discriminator import ElectraDiscriminator
        from keras_electra.models.generator import ElectraGenerator
        from keras_electra.utils.devices import resolve_jit_compile

        vocab = open(sys.argv[2], encoding="utf-8").read().splitlines()
        rng = np.random.default_rng(0)
        def example(n):
            ids = np.zeros(16, np.int32); ids[:n] = rng.integers(1000, 2000, n); ids[0], ids[n - 1] = 101, 102
            seg = np.zeros(16, np.int32); seg[n // 2:n] = 1
            return {"token_ids": ids, "segment_ids": seg, "padding_mask": (np.arange(16) < n).astype(np.int32)}
        write_shards((example(int(n)) for n in rng.integers(4, 17, 40)), sys.argv[1], seq_length=16,
                     vocab=vocab, shard_size=16, lower_case=True)
        batch = next(shard_batches(sys.argv[1], 8, seed=0))
        config = ElectraConfig.from_preset("tiny", vocab_size=len(vocab))
        discriminator = ElectraDiscriminator.from_electra_config(config)
        generator = ElectraGenerator.from_electra_config(config, embeddings=discriminator.backbone.embeddings)
        inputs = {k: batch[k] for k in ("token_ids", "segment_ids", "padding_mask")}
        logits = discriminator(inputs)
        mlm = generator(inputs, mask_positions=np.zeros((8, 2), np.int32))
        assert tuple(mlm.shape) == (8, 2, len(vocab)), mlm.shape
        print(json.dumps({"backend": keras.backend.backend(), "rtd": list(logits.shape),
                          "jit_auto": resolve_jit_compile("auto"), "tf": "tensorflow" in sys.modules}))
    """, args=[str(tmp_path / "shards"), str(VOCAB_UNCASED)])
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result == {"backend": "jax", "rtd": [8, 16], "jit_auto": True, "tf": False}
    # The shards written there are ordinary shards here.
    from keras_electra.data.shards import shard_examples

    examples = list(shard_examples(tmp_path / "shards"))
    assert len(examples) == 40 and all(e["token_ids"][0] == 101 for e in examples)
    assert np.all([e["padding_mask"].sum() >= 4 for e in examples])


def test_cli_help_without_tensorflow_says_what_needs_it():
    done = run_without_tensorflow("""
        from keras_electra.cli import main
        raise SystemExit(main(["--help"]))
    """)
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "Prediction and export (predict, export) need TensorFlow" in text
    assert "--format arrayrecord` shards without TensorFlow" in text


@pytest.mark.slow
def test_pretrain_cli_from_shards_without_tensorflow(tmp_path):
    """`KERAS_BACKEND=jax keras-electra pretrain --corpus SHARDS` with TensorFlow blocked (issue 16's acceptance)."""
    from keras_electra.data.pretraining_data import write_arrayrecords
    from keras_electra.data.tokenizer import ElectraTokenizer

    shards = tmp_path / "shards"
    write_arrayrecords([NOVELS / "Doyle_Hound_1902.txt"], ElectraTokenizer(VOCAB_UNCASED), shards, seq_length=32,
                       max_examples=256)
    done = run_without_tensorflow("""
        import sys
        from keras_electra.cli import main
        code = main(["pretrain", "--corpus", sys.argv[1], "--output", sys.argv[2], "--preset", "tiny",
                     "--steps", "4", "--batch-size", "4", "--seq-length", "32", "--warmup-steps", "1",
                     "--log-every", "2", "--checkpoint-every", "2", "--eval-batches", "1"])
        assert "tensorflow" not in sys.modules
        raise SystemExit(code)
    """, args=[str(shards), str(tmp_path / "run")], timeout=900)
    assert done.returncode == 0, (done.stdout[-2000:], done.stderr[-3000:])
    assert (tmp_path / "run" / "discriminator").is_dir() and (tmp_path / "run" / "metrics.json").is_file()
