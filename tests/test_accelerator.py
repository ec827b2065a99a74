"""benchmarks/accelerator: the FLOP count, the returned weights, and the whole chain in its dry mode."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO

SCRIPT = REPO / "benchmarks" / "accelerator" / "accelerator.py"


@pytest.fixture(scope="module")
def accelerator():
    spec = importlib.util.spec_from_file_location("accelerator", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _kernel_params(weights: dict, prefixes: tuple[str, ...]) -> int:
    return sum(int(np.prod(v.shape)) for k, v in weights.items() if k.endswith("/kernel") and k.startswith(prefixes))


def test_flop_formula_counts_every_matmul_weight(accelerator):
    """The formula's matmul part equals 2 × the kernels the models really hold (plus the tied MLM output)."""
    from keras_electra.config import ElectraConfig, max_predictions_for
    from keras_electra.models.discriminator import ElectraDiscriminator
    from keras_electra.models.generator import ElectraGenerator

    seq, batch = 128, 128
    predictions = max_predictions_for(seq, 0.15)
    assert predictions == 19
    # ELECTRA-Small at 128 × 128: about 1.1 TFLOP per step (the README's number).
    small = accelerator.train_flops_per_step(ElectraConfig.from_preset("small"), batch, seq, predictions)
    assert 1.0e12 < small["train_step"] < 1.3e12
    # Tiny models to count on (E ≠ H for both networks, as in Small).
    config = ElectraConfig.from_preset("tiny", vocab_size=30522)
    flops = accelerator.train_flops_per_step(config, batch, seq, predictions)
    disc = ElectraDiscriminator.from_electra_config(config)
    gen = ElectraGenerator.from_electra_config(config, embeddings=disc.backbone.embeddings)
    d_weights, g_weights = disc.canonical_weights(), gen.canonical_weights()
    gen_config = config.generator_config()
    attention = lambda c: c.num_layers * 4 * seq * c.hidden_size  # noqa: E731  QKᵀ and AV per token
    disc_per_token = 2 * _kernel_params(d_weights, ("electra/", "discriminator_predictions/")) + attention(config)
    gen_encoder = 2 * _kernel_params(g_weights, ("generator/", "electra/embeddings_project"))
    head = 2 * _kernel_params(g_weights, ("generator_predictions/",)) + 2 * config.embedding_size * config.vocab_size
    assert flops["discriminator_forward_per_sequence"] == seq * disc_per_token
    assert flops["generator_forward_per_sequence"] == seq * (gen_encoder + attention(gen_config)) + predictions * head
    assert flops["train_step"] == 3 * batch * (flops["discriminator_forward_per_sequence"]
                                               + flops["generator_forward_per_sequence"])


def test_returned_weights_fit_the_limits_and_unpack_to_hugging_face(accelerator, tmp_path, monkeypatch):
    from keras_electra.config import ElectraConfig
    from keras_electra.convert import load_discriminator, load_generator
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    config = ElectraConfig.from_preset("tiny", vocab_size=30522)
    pretrainer = ElectraPretrainer(config, {"cls": 101, "sep": 102, "pad": 0, "mask": 103}, seq_length=32, seed=0)
    pretrainer.build()
    monkeypatch.setattr(accelerator, "WEIGHT_FILE_BYTES", 8 * 2**20)  # force several files on a tiny model
    out = tmp_path / "out"
    names = accelerator.export_weights(pretrainer, out / "weights", {"step": 7})
    assert len(names) >= 2 and names[0] == f"weights-00-of-{len(names):02d}.safetensors"
    sizes = [(out / "weights" / n).stat().st_size for n in names]
    assert max(sizes) <= 8 * 2**20 + 2**16  # the tensors plus a small header
    tensors = accelerator.read_weights(out / "weights")
    expected = {**pretrainer.discriminator.canonical_weights(), **pretrainer.generator.canonical_weights()}
    assert sorted(tensors) == sorted(expected)  # shared embeddings once
    for name, variable in expected.items():
        np.testing.assert_array_equal(tensors[name], np.asarray(variable.numpy(), np.float32), err_msg=name)
    (out / "metrics.json").write_text(json.dumps({"config": config.to_dict()}))
    accelerator.check_out(out)
    (out / "weights" / names[-1]).unlink()
    with pytest.raises(SystemExit, match="holds .* weights files of"):
        accelerator.read_weights(out / "weights")

    accelerator.export_weights(pretrainer, out / "weights")
    accelerator.unpack(accelerator.argparse.Namespace(
        source=str(out), vocab=str(accelerator.VOCAB), cased=False, output=str(tmp_path / "hf")))
    disc = load_discriminator(tmp_path / "hf" / "discriminator")
    gen = load_generator(tmp_path / "hf" / "generator")
    for model, ours in ((disc, pretrainer.discriminator), (gen, pretrainer.generator)):
        theirs = model.canonical_weights()
        for name, variable in ours.canonical_weights().items():
            np.testing.assert_array_equal(np.asarray(theirs[name].numpy()), np.asarray(variable.numpy()),
                                          err_msg=name)

    for i in range(9):
        (out / f"extra{i}.txt").write_text("x")
    with pytest.raises(SystemExit, match="files \\(at most 8\\)"):
        accelerator.check_out(out)


@pytest.mark.slow
def test_dry_run_packs_runs_without_tensorflow_and_unpacks(tmp_path):
    """The whole chain here: pack one novel, run.sh on JAX CPU (tiny, 30 s budget, TensorFlow blocked), unpack."""
    done = subprocess.run([sys.executable, str(SCRIPT), "dry-run", "--work", str(tmp_path), "--budget-s", "30"],
                          capture_output=True, text=True, cwd=REPO, timeout=900,
                          env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "PYTHONPATH": str(REPO),
                               "PYTHON": sys.executable})
    assert done.returncode == 0, (done.stdout[-3000:], done.stderr[-3000:])
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["dry_run"] and metrics["backend"] == "jax" and not metrics["tensorflow_imported"]
    assert metrics["dtype_policy"] == "mixed_bfloat16" and metrics["device"]["platform"] == "cpu"
    throughput = metrics["throughput"]
    assert throughput["tokens_per_second"] > 0 and 0 < throughput["mfu_vs_bf16_dense_peak"] < 1
    run = metrics["pretraining"]
    assert run["final"] and run["steps"] >= 5 and run["exports"] >= 1
    assert 25 <= run["seconds"] < 120  # the 30 s budget, plus the last chunk
    assert all(np.isfinite(row["loss"]) for row in run["curve"])
    files = [p for p in (tmp_path / "out").rglob("*") if p.is_file()]
    assert {p.name for p in files} >= {"metrics.json", "log.txt", *run["weights"]}
    assert len(files) <= 8 and max(p.stat().st_size for p in files) <= 16 * 2**20
    assert "installing" not in (tmp_path / "out" / "log.txt").read_text()  # everything was there
    for part in ("discriminator", "generator"):
        assert (tmp_path / "unpacked" / part / "config.json").is_file()
