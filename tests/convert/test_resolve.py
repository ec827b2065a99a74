"""Checkpoints by name, offline: the hubs are served on 127.0.0.1 by the tests themselves.

- Hugging Face: a loopback server with the hub's endpoints serves a random ELECTRA that
  transformers saved; `HF_ENDPOINT` points at it and `huggingface_hub` does the resolving,
  caching (under `HF_HOME`) and, with `HF_HUB_OFFLINE=1`, the offline look-up.
- Google's TF1 zips: a loopback server serves a zip of a TF1 checkpoint written here under the
  official names (tests/convert/fixtures.py); good hash, bad hash, cut-off download, first-use pin.
- keras-hub: a preset saved with keras-hub, placed in kagglehub's cache, found by its name.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import zipfile
from pathlib import Path

import numpy as np
import pytest
import transformers

from keras_electra.convert import from_pretrained
from keras_electra.convert.catalog import CATALOG, TF1_RELEASES
from keras_electra.convert.resolve import COMPLETE_MARKER, resolve_checkpoint
from keras_electra.errors import ChecksumError, ElectraError, NetworkError, UnknownCheckpointError
from tests.conftest import VOCAB_UNCASED
from tests.convert.fixtures import (
    hf_config,
    hf_outputs,
    hf_pair,
    keras_hub_preset,
    make_hf,
    max_diff_at_tokens,
    official_pretraining_variables,
    real_batch,
    save_hf,
    write_tf1_checkpoint,
)
from tests.convert.loopback import Route, closed_port_url, directory_files, hub_routes, serve

TOL = 1e-5
REPO = "tiny-org/electra-tiny-discriminator"
COMMIT = "0123456789abcdef0123456789abcdef01234567"
TINY = dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=64)
OUR_CONFIG = dict(vocab_size=30522, embedding_size=16, hidden_size=32, num_layers=2, num_heads=4,
                  intermediate_size=64, max_position_embeddings=64)
ENV = ("HF_HOME", "HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE", "KERAS_ELECTRA_CACHE",
       "KERAS_ELECTRA_OFFLINE", "KERAS_ELECTRA_RELEASES_URL", "KAGGLEHUB_CACHE")


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Every cache under tmp_path, online, no endpoint set: nothing leaks in from the user's machine."""
    for name in ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("KERAS_ELECTRA_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("KAGGLEHUB_CACHE", str(tmp_path / "kaggle"))
    monkeypatch.setenv("HF_ENDPOINT", closed_port_url())  # a test that forgets its server fails fast
    monkeypatch.setenv("KERAS_ELECTRA_RELEASES_URL", closed_port_url())
    return tmp_path


@pytest.fixture(scope="module")
def batch():
    return real_batch(length=24)


# ------------------------------------------------------------------------ Hugging Face
@pytest.fixture(scope="module")
def hf_repo(tmp_path_factory):
    """A random ElectraForPreTraining as transformers saves it, plus files a snapshot must leave behind."""
    model = make_hf(transformers.ElectraForPreTraining, hf_config(**TINY), seed=5)
    directory = save_hf(model, tmp_path_factory.mktemp("hf_repo") / "model")
    shutil.copy(VOCAB_UNCASED, directory / "vocab.txt")  # the google/electra-* repositories ship one
    files = directory_files(directory)
    files.update({"pytorch_model.bin": b"a second copy of the weights", "tf_model.h5": b"TF weights",
                  "flax_model.msgpack": b"Flax weights", "README.md": b"# tiny"})
    return model, files


def test_hf_id_is_resolved_by_huggingface_hub_and_loads(env, hf_repo, batch, monkeypatch):
    model, files = hf_repo
    with serve(hub_routes(REPO, files, COMMIT), lifetime=120) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        path = resolve_checkpoint(REPO)
        # huggingface_hub's own cache layout under HF_HOME, at the served commit.
        assert path == env / "hf" / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
        # Only the config, the safetensors weights, the vocabulary and tokenizer files: no second copy.
        assert sorted(p.name for p in path.iterdir()) == [
            "config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json", "vocab.txt"]
        assert not any("pytorch_model.bin" in r or "tf_model" in r or "flax" in r for r in server.requests)
        disc = from_pretrained(REPO)  # the one-line hook in from_pretrained
        assert max_diff_at_tokens(disc(batch), hf_outputs(model, batch), batch) <= TOL

    # The server is gone: with HF_HUB_OFFLINE=1 the cache answers, by name and by revision.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_checkpoint(REPO) == path
    assert resolve_checkpoint(f"{REPO}@{COMMIT}") == path
    assert resolve_checkpoint(f"hf://{REPO}") == path


def test_hf_pytorch_bin_when_there_is_no_safetensors(env, hf_repo, monkeypatch):
    _, files = hf_repo
    files = {k: v for k, v in files.items() if k not in ("model.safetensors",)}
    with serve(hub_routes(REPO, files, COMMIT), lifetime=60) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        path = resolve_checkpoint(REPO)
    assert (path / "pytorch_model.bin").read_bytes() == files["pytorch_model.bin"]
    assert not (path / "tf_model.h5").exists()


def test_hf_cut_off_download_is_not_a_cache_entry(env, hf_repo, monkeypatch):
    _, files = hf_repo
    routes = hub_routes(REPO, files, COMMIT)
    for path, route in routes.items():
        if path.endswith("/model.safetensors"):
            route.cut_after = len(route.body) // 3
    with serve(routes, lifetime=120) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(NetworkError, match=rf"^{REPO}: downloading from {server.url}/{REPO} failed .*run again"):
            resolve_checkpoint(REPO)
    snapshot = env / "hf" / "hub" / f"models--{REPO.replace('/', '--')}" / "snapshots" / COMMIT
    assert not (snapshot / "model.safetensors").exists()
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what was fetched before the cut does not pass for a checkpoint
    with pytest.raises(NetworkError, match="not in the Hugging Face cache"):
        resolve_checkpoint(REPO)


def test_hf_unknown_repository_and_revision(env, hf_repo, monkeypatch):
    _, files = hf_repo
    with serve(hub_routes(REPO, files, COMMIT), lifetime=60) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        with pytest.raises(UnknownCheckpointError, match=rf"^tiny-org/nope: no such local path, and "
                                                         rf"{server.url}/tiny-org/nope is not a model repository"):
            resolve_checkpoint("tiny-org/nope")
        with pytest.raises(UnknownCheckpointError, match=rf"^{REPO}@v9: {server.url}/{REPO} has no revision 'v9'$"):
            resolve_checkpoint(f"{REPO}@v9")


def test_hf_no_network_names_the_url_and_the_offline_switch(env, monkeypatch):
    url = closed_port_url()
    monkeypatch.setenv("HF_ENDPOINT", url)
    with pytest.raises(NetworkError) as info:
        resolve_checkpoint(REPO)
    message = str(info.value)
    assert "\n" not in message and f"cannot reach {url}/{REPO}" in message and "HF_HUB_OFFLINE=1" in message
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(NetworkError, match=r"HF_HUB_OFFLINE=1 forbids downloading .* not in the Hugging Face cache"):
        resolve_checkpoint(REPO)


# ----------------------------------------------------------------- Google TF1 releases
@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """electra_small.zip as Google lays it out (electra_small/checkpoint + model.ckpt files), without a vocab."""
    gen, disc = hf_pair(hf_config(**TINY), hf_config(**TINY), seed=41)
    root = tmp_path_factory.mktemp("release")
    write_tf1_checkpoint(root / "electra_small", official_pretraining_variables(gen, disc), step=1000)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted((root / "electra_small").iterdir()):
            zf.write(path, f"electra_small/{path.name}")
    config = root / "config.json"
    config.write_text(json.dumps(OUR_CONFIG))
    return disc, buffer.getvalue(), config


def release_routes(data: bytes, headers: dict[str, str] | None = None, **route) -> dict[str, Route]:
    return {"/electra_small.zip": Route(data, {"Content-Type": "application/zip", **(headers or {})}, **route),
            "/vocab.txt": Route(VOCAB_UNCASED.read_bytes(), {"Content-Type": "text/plain"})}


def leftovers(cache: Path) -> list[str]:
    root = cache / "tf1"
    return sorted(p.name for p in root.iterdir() if p.name != "sha256.json") if root.exists() else []


def test_release_good_hash_unpacks_and_converts(env, release, batch, monkeypatch):
    disc_hf, data, config = release
    good = hashlib.sha256(data).hexdigest()
    with serve(release_routes(data), lifetime=120) as server:
        monkeypatch.setenv("KERAS_ELECTRA_RELEASES_URL", server.url)
        path = resolve_checkpoint("electra_small", sha256=good)
        assert path == env / "cache" / "tf1" / "electra_small" / "electra_small"
        assert (path.parent / COMPLETE_MARKER).read_text().strip() == good
        assert (path / "vocab.txt").read_bytes() == VOCAB_UNCASED.read_bytes()  # fetched beside the zip
        served = len(server.requests)
        assert resolve_checkpoint("electra_small", sha256=good) == path and len(server.requests) == served  # cached
    disc = from_pretrained("electra_small", config=config)  # from the cache, through the from_pretrained hook
    assert max_diff_at_tokens(disc(batch), hf_outputs(disc_hf, batch), batch) <= TOL

    from keras_electra.cli import main  # the convert CLI hook: `convert --from tf1 electra_small`

    out = env / "converted"
    assert main(["convert", "--from", "tf1", "electra_small", "--config", str(config), "--output", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["discriminator", "generator"]
    assert (out / "discriminator" / "vocab.txt").is_file()


def test_release_bad_hash_names_both_and_caches_nothing(env, release, monkeypatch):
    _, data, _ = release
    good, wrong = hashlib.sha256(data).hexdigest(), "0" * 64
    with serve(release_routes(data), lifetime=60) as server:
        monkeypatch.setenv("KERAS_ELECTRA_RELEASES_URL", server.url)
        with pytest.raises(ChecksumError) as info:
            resolve_checkpoint("electra_small", sha256=wrong)
    message = str(info.value)
    assert good in message and wrong in message and "\n" not in message
    assert leftovers(env / "cache") == []


def test_release_server_md5_mismatch(env, release, monkeypatch):
    _, data, _ = release
    wrong_md5 = "x-goog-hash", "crc32c=AAAAAA==,md5=" + "A" * 22 + "=="
    with serve(release_routes(data, headers={wrong_md5[0]: wrong_md5[1]}), lifetime=60) as server:
        monkeypatch.setenv("KERAS_ELECTRA_RELEASES_URL", server.url)
        with pytest.raises(ChecksumError, match=r"MD5 of the download [0-9a-f]{32} differs from the server's 0{32}"):
            resolve_checkpoint("electra_small")
    assert leftovers(env / "cache") == [] and not (env / "cache" / "tf1" / "sha256.json").exists()


def test_release_cut_off_download_leaves_no_cache_entry(env, release, monkeypatch):
    _, data, _ = release
    with serve(release_routes(data, cut_after=len(data) // 2), lifetime=60) as server:
        monkeypatch.setenv("KERAS_ELECTRA_RELEASES_URL", server.url)
        with pytest.raises(NetworkError, match=r"was cut off after \d+ .*nothing was cached"):
            resolve_checkpoint("electra_small")
    assert leftovers(env / "cache") == []
    monkeypatch.setenv("KERAS_ELECTRA_OFFLINE", "1")  # and nothing looks complete to an offline run
    with pytest.raises(NetworkError, match=r"not in the cache .*KERAS_ELECTRA_OFFLINE=1"):
        resolve_checkpoint("electra_small")


def test_release_first_download_records_the_pin_and_later_ones_must_match(env, release, monkeypatch, capsys):
    _, data, _ = release
    with serve(release_routes(data), lifetime=60) as server:
        monkeypatch.setenv("KERAS_ELECTRA_RELEASES_URL", server.url)
        resolve_checkpoint("electra_small")
    pins = json.loads((env / "cache" / "tf1" / "sha256.json").read_text())
    assert pins["electra_small.zip"] == hashlib.sha256(data).hexdigest()
    assert pins["vocab.txt"] == hashlib.sha256(VOCAB_UNCASED.read_bytes()).hexdigest()
    assert "no published sha256" in capsys.readouterr().err

    # The cache is cleared and the server now sends other bytes: the recorded pin stops it.
    shutil.rmtree(env / "cache" / "tf1" / "electra_small")
    middle = len(data) // 2
    other = data[:middle] + bytes([data[middle] ^ 0xFF]) + data[middle + 1:]  # one byte changed
    with serve(release_routes(other), lifetime=60) as server:
        monkeypatch.setenv("KERAS_ELECTRA_RELEASES_URL", server.url)
        with pytest.raises(ChecksumError, match=rf"{hashlib.sha256(other).hexdigest()} but the sha256 recorded by "
                                                rf"the first download .* says {pins['electra_small.zip']}"):
            resolve_checkpoint("electra_small")
    assert leftovers(env / "cache") == []


def test_release_no_network_names_the_url_and_switch(env):
    with pytest.raises(NetworkError, match=r"cannot reach http://127\.0\.0\.1:\d+/electra_small\.zip .*"
                                           r"KERAS_ELECTRA_OFFLINE=1"):
        resolve_checkpoint("electra_small")


# ------------------------------------------------------------------------------ keras-hub
@pytest.fixture(scope="module")
def kh_preset(tmp_path_factory):
    return keras_hub_preset(tmp_path_factory.mktemp("kh") / "preset", seed=3, lowercase=True)


def test_keras_hub_preset_name_through_kagglehub_cache(env, kh_preset, batch):
    """The built-in name maps to its Kaggle handle in keras-hub; kagglehub finds the files in its cache."""
    from kagglehub.cache import Cache
    from kagglehub.handle import parse_model_handle

    backbone, directory = kh_preset
    name = "electra_small_discriminator_uncased_en"
    handle = parse_model_handle(f"keras/electra/keras/{name}/2")
    cache = Cache()
    for path, data in directory_files(directory).items():  # what kagglehub writes after a download
        target = Path(cache.get_path(handle, path))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)
        cache.mark_as_complete(handle, path)
    path = resolve_checkpoint(name)
    assert path == env / "kaggle" / "models" / "keras" / "electra" / "keras" / name / "2"
    assert resolve_checkpoint(f"kaggle://keras/electra/keras/{name}/2") == path
    ours = from_pretrained(name)
    assert max_diff_at_tokens(ours(batch), backbone(batch)["sequence_output"], batch) <= TOL


def test_keras_hub_preset_of_another_model_is_refused(env):
    with pytest.raises(UnknownCheckpointError, match=r"^bert_tiny_en_uncased is a keras-hub preset of bert, not of "
                                                     r"ELECTRA$"):
        resolve_checkpoint("bert_tiny_en_uncased")


# -------------------------------------------------------------------------------- general
def test_local_path_wins_over_a_name(env, monkeypatch):
    monkeypatch.chdir(env)
    local = Path(REPO)
    local.mkdir(parents=True)
    assert resolve_checkpoint(REPO) == local  # HF_ENDPOINT is a closed port: no network was needed
    (env / "electra_small").mkdir()
    assert resolve_checkpoint("electra_small") == Path("electra_small")


def test_unknown_name_is_one_line(env):
    with pytest.raises(UnknownCheckpointError, match="empty"):
        resolve_checkpoint("")
    with pytest.raises(ElectraError, match="sha256= checks Google's TF1 zips .* only"):
        resolve_checkpoint(REPO, sha256="0" * 64)
    with pytest.raises(ElectraError, match="is not 64 hexadecimal digits"):
        resolve_checkpoint("electra_small", sha256="abc")
    with pytest.raises(UnknownCheckpointError) as info:
        resolve_checkpoint("electra_tiny")
    message = str(info.value)
    assert message.startswith("electra_tiny does not exist, and is not a checkpoint name we know")
    assert "electra_small, electra_base, electra_large" in message and "\n" not in message


def test_cli_models_and_errors(env, capsys, monkeypatch):
    from keras_electra.cli import main

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for entry in CATALOG:
        assert entry.name in out
    assert main(["models", "--kind", "tf1", "--wide"]) == 0
    out = capsys.readouterr().out
    assert "https://storage.googleapis.com/electra-data/electra_small.zip" in out and "RTE 66.7" in out
    assert set(TF1_RELEASES) <= set(out.split())

    assert main(["convert", "electra_tiny", "--output", str(env / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("keras-electra convert: error: electra_tiny does not exist") and "\n" not in err
    monkeypatch.setenv("KERAS_ELECTRA_OFFLINE", "1")
    assert main(["convert", "--from", "tf1", "electra_small", "--output", str(env / "out")]) == 2
    assert "KERAS_ELECTRA_OFFLINE=1" in capsys.readouterr().err


def test_finetune_and_pretrain_init_take_names(env, monkeypatch):
    """The --init hooks resolve before anything else: an offline run names the switch."""
    from keras_electra.pretraining.trainer import PretrainingOptions, run_pretraining
    from keras_electra.tasks.finetune import FinetuneConfig, finetune

    monkeypatch.setenv("KERAS_ELECTRA_OFFLINE", "1")
    with pytest.raises(NetworkError, match="KERAS_ELECTRA_OFFLINE=1"):
        finetune(FinetuneConfig(task="sst2", data=str(env), init="electra_small", output=str(env / "ft")))
    with pytest.raises(NetworkError, match="KERAS_ELECTRA_OFFLINE=1"):
        run_pretraining(PretrainingOptions(sources=[str(env)], init="electra_base"), env / "pt")
    with pytest.raises(ElectraError, match="is not a checkpoint name we know"):
        finetune(FinetuneConfig(task="sst2", data=str(env), init="electra_huge", output=str(env / "ft")))


def test_catalog_is_importable_without_tensorflow():
    import subprocess
    import sys

    code = ("import sys, argparse; import keras_electra.convert.cli as c; p = argparse.ArgumentParser(); "
            "c.register(p.add_subparsers()); a = p.parse_args(['models']); a.func(a); "
            "print([m for m in ('tensorflow', 'keras', 'torch', 'keras_hub') if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         env={**os.environ, "PYTHONPATH": str(Path(__file__).parents[2])}, check=True).stdout
    assert out.strip().endswith("[]")


def test_keras_hub_base_class_probe(tmp_path, batch):
    """The measurement behind the decision in resolve.py's docstring: ElectraBackbone re-based on
    keras_hub.models.Backbone keeps numerics bit-identical and round-trips through a keras-hub preset."""
    import keras
    import keras_hub

    from keras_electra.models.backbone import ElectraBackbone

    class Rebased(ElectraBackbone, keras_hub.models.Backbone):
        pass

    keras.saving.register_keras_serializable(package="keras_electra_probe", name="Rebased")(Rebased)
    sizes = dict(vocab_size=30522, embedding_size=16, hidden_size=32, num_layers=2, num_heads=4,
                 intermediate_size=64, max_position_embeddings=64)
    ours, rebased = ElectraBackbone(**sizes), Rebased(**sizes)
    rng = np.random.default_rng(0)
    assert [v.path for v in ours.weights] == [v.path for v in rebased.weights]
    for a, b in zip(ours.weights, rebased.weights):
        value = rng.normal(0, 0.05, a.shape).astype("float32")
        a.assign(value)
        b.assign(value)
    assert np.array_equal(np.asarray(ours(batch)), np.asarray(rebased(batch)))
    assert set(rebased.get_config()) == set(ours.get_config())
    rebased.save_to_preset(str(tmp_path / "preset"))
    back = keras_hub.models.Backbone.from_preset(str(tmp_path / "preset"))
    assert isinstance(back, Rebased) and np.array_equal(np.asarray(back(batch)), np.asarray(ours(batch)))


def test_finetune_init_by_hub_id_end_to_end(env, hf_repo, monkeypatch, capsys):
    """The README's Colab form `finetune --init ORG/NAME`: huggingface_hub fetches from the (loopback) hub, the
    one loader reads the snapshot, and a classifier trains and scores on real SST-2 rows."""
    from keras_electra.cli import main
    from tests.conftest import SHARED_DATA

    _, files = hf_repo
    with serve(hub_routes(REPO, files, COMMIT), lifetime=300) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        code = main(["finetune", "--task", "sst2", "--data", str(SHARED_DATA / "glue" / "SST-2"), "--init", REPO,
                     "--output", str(env / "sst2"), "--max-train-examples", "32", "--max-eval-examples", "32",
                     "--epochs", "1", "--seq-length", "16", "--batch-size", "16", "--quiet"])
    assert code == 0, capsys.readouterr().err
    results = json.loads((env / "sst2" / "results.json").read_text())
    assert results["init"].endswith(f"snapshots/{COMMIT}") and results["num_examples"]["dev"] == 32
    assert 0.0 < results["dev"]["accuracy"] < 1.0  # 32 real dev rows of both labels, scored
