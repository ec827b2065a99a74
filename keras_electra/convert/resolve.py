"""Checkpoint names → local directories: the one step in front of every checkpoint loader.

    from keras_electra.convert.resolve import resolve_checkpoint

    resolve_checkpoint("runs/electra-small")                       # a local path: returned as it is
    resolve_checkpoint("google/electra-small-discriminator")       # Hugging Face hub (cached by huggingface_hub)
    resolve_checkpoint("google/electra-base-discriminator@main")   # ... at a revision (branch, tag or commit)
    resolve_checkpoint("electra_small_discriminator_uncased_en")   # keras-hub preset (cached by kagglehub)
    resolve_checkpoint("kaggle://keras/electra/keras/electra_base_discriminator_uncased_en/2")
    resolve_checkpoint("electra_small")                            # Google's TF1 zip: download, verify, unpack

Resolution order: an existing local path (a TF1 prefix `DIR/model.ckpt-N` counts) wins; then a
Hugging Face id `org/name[@revision]` (or `hf://org/name`); then a keras-hub preset name or
`kaggle://` handle; then Google's TF1 releases `electra_small`, `electra_base`, `electra_large`.
`keras-electra models` lists the names we know (`catalog.py`); any other HF id or keras-hub
ELECTRA preset resolves too. What comes back is a directory (or TF1 prefix) for the
format detection in `api.detect_format`; nothing is converted here.

Hugging Face: `huggingface_hub.snapshot_download`, restricted to the config, the weights
(`model.safetensors` when the repository has it, else `pytorch_model.bin`), the vocabulary and
tokenizer files, and keras-hub's preset files; never the TF/Flax/ONNX copies. Its cache is
used as it is. `HF_HUB_OFFLINE`, `HF_HOME` / `HF_HUB_CACHE` and `HF_ENDPOINT` are read when
called (not when huggingface_hub was imported), so they can be changed in a running notebook.

keras-hub: its own `preset_utils.get_file` (what `from_preset` calls), file by file, so
built-in names map to their Kaggle handles and kagglehub keeps its cache (`KAGGLEHUB_CACHE`).
keras-hub 0.32 has no public "fetch a preset to a directory" function; `get_file` is in
`keras_hub.src` and setup.py pins keras-hub <0.33 for that reason.

Google's TF1 zips (`https://storage.googleapis.com/electra-data/<name>.zip`, or a mirror in
`KERAS_ELECTRA_RELEASES_URL`) are streamed to a temporary file beside the cache, checked
(Content-Length, the server's MD5 in `x-goog-hash` when sent, every zip member's CRC) and
their sha256 compared with the pin; only then unpacked into a temporary directory that is
renamed onto `<cache>/tf1/<name>` in one step. A cut-off, corrupt or mismatched download
leaves no cache entry. Pins: Google publishes no checksums (see `RELEASE_SHA256`), so the
first download that passes every check records its sha256 in `<cache>/tf1/sha256.json`
and says so on stderr; every later download must match it. Pass `sha256=` (or put the hash
in `RELEASE_SHA256`) to pin it yourself. `KERAS_ELECTRA_CACHE` moves the cache (default
`~/.cache/keras_electra`); `KERAS_ELECTRA_OFFLINE=1` (or `HF_HUB_OFFLINE=1`) uses cached
copies only.

Why our Backbone / Task / Preprocessor do not build on keras-hub's base classes (yet)
(issue 15; measured with keras-hub 0.32, `tests/convert/test_resolve.py::test_keras_hub_base_class_probe`):
- Backbone: cheap and exact. `class B(ElectraBackbone, keras_hub.models.Backbone)` needs no
  other change: the same weight paths, bit-identical outputs, `save_to_preset` +
  `keras_hub.models.Backbone.from_preset` round-trip bit-identical, no new `get_config` keys,
  and a `.keras` file written by today's class loads into the re-based class registered under
  the same name (`keras_electra>ElectraBackbone`). It would give `from_preset`,
  `save_to_preset` and `keras_hub.upload_preset` for free, but saves almost no code of ours:
  our directories are `model.keras` + config.json + vocab.txt, read by `convert/saved.py`.
- Task and Preprocessor: costly. `keras_hub.models.Task.__init__` compiles with keras-hub's
  defaults, and `Task.save_to_preset` saves the backbone and the preprocessor as keras-hub
  presets; our `ElectraTask` overrides `train_step` (FGM adversarial training), maps its heads
  to HF/TF1 names (`canonical_weights`), and carries a tensorflow-text `ElectraTokenizer`,
  which has no `save_to_preset` / `load_preset_assets`. Every task model and the tokenizer
  would need re-basing at once, and each `.keras` format re-checked.
- Decision: no migration this round (nothing gained that users miss: keras-hub presets
  already load through `convert/keras_hub.py` and preset names resolve here). The next step,
  if preset export is wanted, is the Backbone mix-in above; Task and Preprocessor stay on
  `keras.Model` / `keras.layers.Layer`.
"""

from __future__ import annotations

import base64
import fnmatch
import hashlib
import http.client
import os
import re
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
import zipfile
from pathlib import Path
from typing import Any

from keras_electra.convert.catalog import GOOGLE_RELEASES_URL, KERAS_HUB_PRESETS, TF1_RELEASES
from keras_electra.errors import CheckpointError, ChecksumError, NetworkError, UnknownCheckpointError

CACHE_ENV = "KERAS_ELECTRA_CACHE"
OFFLINE_ENV = "KERAS_ELECTRA_OFFLINE"
RELEASES_URL_ENV = "KERAS_ELECTRA_RELEASES_URL"
HF_DEFAULT_ENDPOINT = "https://huggingface.co"
KAGGLE_PREFIX = "kaggle://"
HF_PREFIX = "hf://"
COMPLETE_MARKER = ".keras-electra-complete"  # inside an unpacked release: the sha256 it came from
PINS_FILE = "sha256.json"

# sha256 pins of Google's TF1 release zips (and of the vocabulary fetched when a zip lacks one).
# None = no published hash: the google-research/electra README (commit 8a46635, "Released Models")
# gives only the URLs, and the bucket serves only MD5/CRC32C headers. A None pin is filled by the
# first download that passes the size, MD5 and zip CRC checks, recorded in <cache>/tf1/sha256.json
# (trust on first use, announced on stderr); later downloads must match it. To pin one here, put the
# sha256 from a verified download (`sha256sum electra_small.zip`) in place of None.
RELEASE_SHA256: dict[str, str | None] = {
    "electra_small.zip": None,
    "electra_base.zip": None,
    "electra_large.zip": None,
    "vocab.txt": None,
}

# Hugging Face files worth fetching: configs, vocabularies and tokenizers (the HF and keras-hub layouts).
HF_FILES = [
    "config.json", "generation_config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json",
    "special_tokens_map.json", "added_tokens.json", "metadata.json", "preprocessor.json", "task.json",
    "assets/tokenizer/*", "LICENSE*",
]
SAFETENSORS = ["model.safetensors", "model.safetensors.index.json", "model-*-of-*.safetensors"]
TORCH_BIN = ["pytorch_model.bin", "pytorch_model.bin.index.json", "pytorch_model-*-of-*.bin"]
KERAS_HUB_WEIGHTS = ["model.weights.h5", "model.weights.json", "model_*.weights.h5", "task.weights.h5"]
WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                "pytorch_model.bin.index.json", "model.weights.h5", "model.weights.json")

HF_ID = re.compile(r"^(?P<repo>[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*)(?:@(?P<revision>[^\s@]+))?$")
PRESET_NAME = re.compile(r"^[a-z0-9][a-z0-9_]*$")
CHUNK = 1 << 20


# ----------------------------------------------------------------------------- entry
def resolve_checkpoint(
    name_or_path: str | os.PathLike,
    *,
    revision: str | None = None,
    sha256: str | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """A local path for a checkpoint name (see the module docstring for the order).

    Args:
        name_or_path: a path, an HF id (`org/name[@revision]`), a keras-hub preset name or
            `kaggle://` handle, or `electra_small` / `electra_base` / `electra_large`.
        revision: a Hugging Face branch, tag or commit (same as `@revision`).
        sha256: the expected sha256 of a TF1 release zip (overrides the pins; only for those
            names, and not checked when a local directory of that name exists).
        cache_dir: where TF1 releases are unpacked (default `$KERAS_ELECTRA_CACHE` or
            `~/.cache/keras_electra`); Hugging Face and kagglehub keep their own caches.

    Raises UnknownCheckpointError, NetworkError or ChecksumError, each with a one-line message.
    """
    text = os.fspath(name_or_path)
    if not text.strip():
        raise UnknownCheckpointError("an empty checkpoint name or path")
    if sha256 is not None and text not in TF1_RELEASES:  # never accept a hash and then not check it
        raise CheckpointError(f"{text}: sha256= checks Google's TF1 zips ({', '.join(TF1_RELEASES)}) only; "
                              "huggingface_hub and kagglehub verify their own downloads")
    path = Path(text).expanduser()
    if path.exists() or Path(f"{path}.index").exists():  # a directory, a file, or a TF1 prefix
        return path
    if text.startswith(KAGGLE_PREFIX):
        return _resolve_keras_hub(text)
    hf = HF_ID.match(text.removeprefix(HF_PREFIX))
    if hf:
        return _resolve_hf(hf["repo"], hf["revision"] or revision, text)
    if text in KERAS_HUB_PRESETS:
        return _resolve_keras_hub(text)
    if text in TF1_RELEASES:
        return _resolve_release(text, sha256, _cache_root(cache_dir))
    if PRESET_NAME.match(text) and _is_keras_hub_electra_preset(text):
        return _resolve_keras_hub(text)
    raise UnknownCheckpointError(
        f"{text} does not exist, and is not a checkpoint name we know: use a Hugging Face id "
        f"(org/name[@revision]), a keras-hub ELECTRA preset or kaggle:// handle, or one of "
        f"{', '.join(TF1_RELEASES)} (`keras-electra models` lists them)"
    )


def resolve_optional(name_or_path: str | os.PathLike | None) -> str | None:
    """`resolve_checkpoint` for optional options (None and "" stay as they are); a str, as options hold strings."""
    return name_or_path if not name_or_path else str(resolve_checkpoint(name_or_path))


def _truthy(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in ("1", "true", "yes", "on")


def offline() -> bool:
    return _truthy(OFFLINE_ENV) or _truthy("HF_HUB_OFFLINE")


def _cache_root(cache_dir: str | os.PathLike | None) -> Path:
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "keras_electra").expanduser()


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split())
    return (text[:300] + "...") if len(text) > 300 else (text or type(err).__name__)


def _note(message: str) -> None:
    print(f"keras-electra: {message}", file=sys.stderr)


# ----------------------------------------------------------------------- Hugging Face
def hf_endpoint() -> str:
    return (os.environ.get("HF_ENDPOINT") or HF_DEFAULT_ENDPOINT).rstrip("/")


def hf_cache_dir() -> Path:
    """huggingface_hub's cache, from the environment as it is now (HF_HUB_CACHE, else HF_HOME/hub)."""
    for name in ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE"):
        if os.environ.get(name):
            return Path(os.environ[name]).expanduser()
    home = os.environ.get("HF_HOME") or Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "huggingface"
    return Path(home).expanduser() / "hub"


def _resolve_hf(repo: str, revision: str | None, text: str) -> Path:
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub import errors as hf_errors

    endpoint, cache = hf_endpoint(), hf_cache_dir()
    url = f"{endpoint}/{repo}"
    common = dict(revision=revision, cache_dir=str(cache), endpoint=endpoint)

    def from_cache(reason: str, hint: str) -> Path:
        # The same two pattern sets the online branch chooses between, so the cached tree
        # listing's completeness check matches what was downloaded.
        for weights in (SAFETENSORS, TORCH_BIN + KERAS_HUB_WEIGHTS):
            try:
                folder = Path(snapshot_download(repo, allow_patterns=HF_FILES + weights, local_files_only=True,
                                                **common))
            except hf_errors.LocalEntryNotFoundError:  # IncompleteSnapshotError included
                continue
            if any((folder / name).is_file() for name in WEIGHT_FILES):  # not a snapshot cut off before its weights
                return folder
        raise NetworkError(f"{text}: {reason}, and it is not in the Hugging Face cache {cache}; {hint}")

    if _truthy("HF_HUB_OFFLINE") or _truthy(OFFLINE_ENV):
        switch = "HF_HUB_OFFLINE" if _truthy("HF_HUB_OFFLINE") else OFFLINE_ENV
        folder = from_cache(f"{switch}=1 forbids downloading {url}", f"unset {switch} to download")
    else:
        try:
            info = HfApi(endpoint=endpoint).model_info(repo, revision=revision)
        except hf_errors.RevisionNotFoundError:
            raise UnknownCheckpointError(f"{text}: {url} has no revision {revision!r}") from None
        except hf_errors.RepositoryNotFoundError:  # GatedRepoError included
            raise UnknownCheckpointError(
                f"{text}: no such local path, and {url} is not a model repository (or it is private or gated: "
                "log in with `hf auth login`)"
            ) from None
        except Exception as err:  # noqa: BLE001 - connection errors come from httpx, HTTP 5xx from the hub
            folder = from_cache(f"cannot reach {url} ({_one_line(err)})",
                                "without network, set HF_HUB_OFFLINE=1 to use cached files only, or pass a local "
                                "directory")
        else:
            files = [s.rfilename for s in info.siblings or ()]
            has_safetensors = any(fnmatch.fnmatch(f, p) for f in files for p in SAFETENSORS)
            weights = SAFETENSORS if has_safetensors else TORCH_BIN + KERAS_HUB_WEIGHTS
            try:
                folder = Path(snapshot_download(repo, allow_patterns=HF_FILES + weights, **common))
            except Exception as err:  # noqa: BLE001 - httpx, the hub's HTTP errors, an interrupted transfer
                # huggingface_hub writes blobs as *.incomplete and links them only when whole, so the cache
                # never holds a partial file under its real name.
                raise NetworkError(f"{text}: downloading from {url} failed ({_one_line(err)}); run again, or set "
                                   "HF_HUB_OFFLINE=1 to use cached files only") from None
    if not any((folder / name).is_file() for name in WEIGHT_FILES):
        raise CheckpointError(
            f"{text}: {url} has no weights we read (model.safetensors, pytorch_model.bin or a keras-hub "
            f"model.weights.h5); got {sorted(p.name for p in folder.iterdir())}"
        )
    return folder


# --------------------------------------------------------------------------- keras-hub
def _is_keras_hub_electra_preset(name: str) -> bool:
    """keras-hub's own built-in preset table (imports keras-hub, so only for names we do not know)."""
    try:
        import keras_hub  # noqa: F401  (registers the built-in presets)
        from keras_hub.src.utils.preset_utils import BUILTIN_PRESETS
    except ImportError:
        return False
    preset = BUILTIN_PRESETS.get(name)
    if preset is None:
        return False
    kind = preset.get("metadata", {}).get("path")
    if kind != "electra":
        raise UnknownCheckpointError(f"{name} is a keras-hub preset of {kind}, not of ELECTRA")
    return True


def _resolve_keras_hub(preset: str) -> Path:
    """Fetch a preset's files with keras-hub's `get_file` (kagglehub's cache) and return their directory."""
    import keras_hub  # noqa: F401
    from keras_hub.src.utils.preset_utils import check_file_exists, get_file

    handle = KERAS_HUB_PRESETS[preset].source if preset in KERAS_HUB_PRESETS else preset
    url = f"https://www.kaggle.com/models/{handle.removeprefix(KAGGLE_PREFIX)}"

    def fetch(path: str, required: bool) -> Path | None:
        try:
            if not required and not check_file_exists(preset, path):
                return None
            return Path(get_file(preset, path))
        except FileNotFoundError as err:
            raise UnknownCheckpointError(f"{preset}: the keras-hub preset has no {path} ({_one_line(err)})") from None
        except ValueError as err:
            raise UnknownCheckpointError(f"{preset}: not a keras-hub preset ({_one_line(err)})") from None
        except Exception as err:  # noqa: BLE001 - kagglehub raises requests' and its own HTTP errors
            switch = f"{OFFLINE_ENV}=1 is set and the file is not cached" if offline() else (
                "without network, pass a local preset directory (KAGGLEHUB_CACHE holds kagglehub's cache)")
            raise NetworkError(f"{preset}: cannot fetch {path} from {url} ({_one_line(err)}); {switch}") from None

    config = fetch("config.json", required=True)
    for name in ("metadata.json", "tokenizer.json", "assets/tokenizer/vocabulary.txt"):
        fetch(name, required=False)
    if fetch("model.weights.h5", required=False) is None:
        sharded = fetch("model.weights.json", required=True)
        import json

        for shard in sorted(set(json.loads(sharded.read_text()).get("weight_map", {}).values())):
            fetch(shard, required=True)
    return config.parent


# ------------------------------------------------------------------ Google TF1 releases
def release_url(filename: str) -> str:
    return f"{(os.environ.get(RELEASES_URL_ENV) or GOOGLE_RELEASES_URL).rstrip('/')}/{filename}"


class _Pins:
    """sha256 pins: RELEASE_SHA256 in the code, else the ones recorded by first verified downloads."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def recorded(self) -> dict[str, str]:
        import json

        try:
            return json.loads(self.path.read_text()) if self.path.is_file() else {}
        except ValueError:
            raise CheckpointError(f"{self.path} is not valid JSON; delete it to re-record the sha256 pins") from None

    def get(self, filename: str, override: str | None) -> tuple[str | None, str]:
        if override:
            if not re.fullmatch(r"[0-9a-fA-F]{64}", override):
                raise CheckpointError(f"sha256 {override!r} is not 64 hexadecimal digits")
            return override.lower(), "the sha256 passed in"
        if RELEASE_SHA256.get(filename):
            return RELEASE_SHA256[filename], "RELEASE_SHA256 in keras_electra/convert/resolve.py"
        recorded = self.recorded().get(filename)
        return recorded, f"the sha256 recorded by the first download in {self.path}"

    def record(self, filename: str, digest: str, url: str) -> None:
        from keras_electra.utils.io import write_json

        values = self.recorded()
        values[filename] = digest
        write_json(self.path, values)
        _note(f"no published sha256 for {url}: recorded {digest} from this download (size, MD5 and zip CRCs "
              f"checked) in {self.path}; later downloads must match it")


def _download(url: str, target: Path) -> str:
    """Stream `url` to `target`; check the length and the server's MD5; return the sha256."""
    sha, md5, received = hashlib.sha256(), hashlib.md5(), 0  # noqa: S324 - MD5 only to compare with the server's
    try:
        with urllib.request.urlopen(url, timeout=60) as response, target.open("wb") as out:  # noqa: S310
            expected = response.headers.get("Content-Length")
            server_md5 = _goog_md5(response.headers.get("x-goog-hash", ""))
            _note(f"downloading {url}" + (f" ({int(expected) / 1e6:.1f} MB)" if expected else ""))
            total, shown = int(expected) if expected else 0, 0
            while chunk := response.read(CHUNK):
                sha.update(chunk)
                md5.update(chunk)
                out.write(chunk)
                received += len(chunk)
                if total > 50e6 and received * 10 // total > shown:  # a line per 10% of a large zip
                    shown = received * 10 // total
                    _note(f"  {10 * shown}% of {url.rsplit('/', 1)[-1]} ({received / 1e6:.0f} MB)")
    except urllib.error.HTTPError as err:
        raise NetworkError(f"cannot download {url}: HTTP {err.code} {err.reason}") from None
    except http.client.IncompleteRead as err:
        raise NetworkError(f"the download of {url} was cut off after {received + len(err.partial)} bytes "
                           f"({err.expected} missing); nothing was cached: run again") from None
    except (TimeoutError, urllib.error.URLError, ConnectionError, http.client.HTTPException) as err:
        reason = getattr(err, "reason", err)
        raise NetworkError(f"cannot reach {url} ({_one_line(reason) if isinstance(reason, BaseException) else reason}"
                           f"); set {OFFLINE_ENV}=1 to use cached copies only, or download it elsewhere and pass "
                           "the unzipped directory") from None
    if expected is not None and received != int(expected):
        raise NetworkError(f"the download of {url} was cut off after {received} of {expected} bytes; nothing was "
                           "cached: run again")
    if server_md5 is not None and md5.hexdigest() != server_md5:
        raise ChecksumError(f"{url}: MD5 of the download {md5.hexdigest()} differs from the server's {server_md5}")
    return sha.hexdigest()


def _goog_md5(header: str) -> str | None:
    """The MD5 in Google Cloud Storage's `x-goog-hash: crc32c=...,md5=<base64>` header, as hex."""
    for part in header.split(","):
        key, _, value = part.strip().partition("=")
        if key == "md5" and value:
            return base64.b64decode(value).hex()
    return None


def _verify(url: str, digest: str, expected: str | None, where: str) -> None:
    if expected is not None and digest != expected:
        raise ChecksumError(f"{url}: sha256 of the download is {digest} but {where} says {expected}; "
                            "nothing was cached")


def _unpack(archive: Path, url: str, out: Path) -> None:
    try:
        with zipfile.ZipFile(archive) as zf:
            for info in zf.infolist():
                name = Path(info.filename)
                if name.is_absolute() or ".." in name.parts:
                    raise CheckpointError(f"{url}: unsafe path {info.filename!r} in the zip")
            bad = zf.testzip()
            if bad is not None:
                raise ChecksumError(f"{url}: zip member {bad} fails its CRC check; nothing was cached")
            zf.extractall(out)
    except zipfile.BadZipFile as err:
        raise CheckpointError(f"{url}: not a zip file ({_one_line(err)}); nothing was cached") from None


def _checkpoint_dir(target: Path) -> Path:
    """The zip's single top folder (Google's zips hold `electra_small/...`), else the unpacked root."""
    entries = [p for p in target.iterdir() if p.name != COMPLETE_MARKER]
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else target


def _fetch_verified(url: str, filename: str, directory: Path, pins: _Pins,
                    sha256: str | None) -> tuple[Path, str, bool]:
    """Download into `directory`, check against the pin; (path, sha256, whether it is a new pin to record)."""
    expected, where = pins.get(filename, sha256)
    target = directory / filename
    digest = _download(url, target)
    _verify(url, digest, expected, where)
    return target, digest, expected is None


def _resolve_release(name: str, sha256: str | None, cache_root: Path) -> Path:
    from keras_electra.utils.io import atomic_directory

    root = cache_root / "tf1"
    target = root / name
    filename = f"{name}.zip"
    url = release_url(filename)
    pins = _Pins(root / PINS_FILE)
    expected, _ = pins.get(filename, sha256)
    marker = target / COMPLETE_MARKER
    if marker.is_file() and (expected is None or marker.read_text().strip() == expected):
        return _checkpoint_dir(target)
    if offline():
        raise NetworkError(f"{name}: not in the cache ({target}) and {OFFLINE_ENV}=1 / HF_HUB_OFFLINE=1 forbid "
                           f"downloading {url}; unset it to download")
    root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=f".{name}.download-", dir=root) as tmp:
        archive, digest, new = _fetch_verified(url, filename, Path(tmp), pins, sha256)
        to_record = {filename: (digest, url)} if new else {}
        with atomic_directory(target) as out:
            _unpack(archive, url, out)
            archive.unlink()
            folder = _checkpoint_dir(out)
            if not (folder / "vocab.txt").is_file():
                # The English releases use BERT's uncased vocabulary, published beside the zips (G README).
                vocab_url = release_url("vocab.txt")
                vocab, vocab_digest, new = _fetch_verified(vocab_url, "vocab.txt", Path(tmp), pins, None)
                shutil.move(str(vocab), folder / "vocab.txt")
                if new:
                    to_record["vocab.txt"] = (vocab_digest, vocab_url)
            (out / COMPLETE_MARKER).write_text(f"{digest}\n")
        for key, (value, source) in to_record.items():
            pins.record(key, value, source)
    return _checkpoint_dir(target)


def resolve_source(source: Any) -> Any:
    """`resolve_checkpoint` for loader arguments: a str or path is resolved; None, an already read
    `Checkpoint` or anything else passes through unchanged."""
    if isinstance(source, str | os.PathLike):
        return resolve_checkpoint(source)
    return source
