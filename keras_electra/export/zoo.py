"""`saved_models/`: the models this project ships, each described by a machine-readable `card.json`.

A card names the shipped file, its task and the score it gets on a fixed slice of the dev set
(the first `rows` rows, in file order), so that anyone (and the tests) can recompute that score
from the file alone:

    {"name": "minilm-sst2", "kind": "task", "task": "sst2", "file": "model.tflite",
     "data": "glue/SST-2", "split": "dev", "slice": {"rows": 200, "accuracy": 0.9}, ...}

`kind: "pretraining"` marks a pretraining checkpoint (no task head, so no dev score): the card
names its `discriminator/` and `generator/` and the held-out metrics of its run.

    python -m keras_electra.export.zoo saved_models/minilm-sst2            # recompute, compare
    python -m keras_electra.export.zoo saved_models/minilm-sst2 --update   # write slice score, size, latency
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from keras_electra.errors import ElectraError

CARD = "card.json"
MAX_FILE_BYTES = 25 * 2**20  # 25 MiB (the unit of every size in this project): larger files are rebuilt by a command


def shared_data() -> Path:
    """../shared/data beside the repository, or $KERAS_ELECTRA_SHARED_DATA."""
    return Path(os.environ.get("KERAS_ELECTRA_SHARED_DATA", Path(__file__).resolve().parents[2].parent / "shared"
                               / "data"))


def read_card(directory: str | Path) -> dict[str, Any]:
    from keras_electra.utils.io import read_json

    path = Path(directory) / CARD
    if not path.is_file():
        raise ElectraError(f"{directory}: no {CARD} (every shipped model has a card)")
    card = read_json(path)
    for key in ("name", "kind"):
        if key not in card:
            raise ElectraError(f"{path}: missing key {key!r}")
    return card


def shipped_models(root: str | Path) -> list[Path]:
    """Every model directory under `root` (one per sub-directory)."""
    return sorted(p for p in Path(root).iterdir() if p.is_dir() and not p.name.startswith("."))


def slice_examples(card: dict[str, Any], data_root: Path | None = None) -> list:
    """The first `slice.rows` examples of the card's split, in file order."""
    from keras_electra.tasks.registry import get_task, read_split

    spec = get_task(card["task"])
    examples = read_split(spec, (data_root or shared_data()) / card["data"], card.get("split", "dev"))[0]
    return examples[: int(card["slice"]["rows"])]


def slice_score(directory: str | Path, data_root: Path | None = None) -> dict[str, float]:
    """The shipped task model's accuracy on its card's slice, through `keras-electra predict`'s path."""
    from keras_electra.export.predictor import Predictor

    directory = Path(directory)
    card = read_card(directory)
    if card["kind"] != "task":
        raise ElectraError(f"{directory}: a {card['kind']} checkpoint has no dev score")
    examples = slice_examples(card, data_root)
    predictor = Predictor.load(directory / card["file"])
    texts = [e.text_a if e.text_b is None else f"{e.text_a}\t{e.text_b}" for e in examples]
    predicted = [r["label"] for r in predictor.predict(texts)]
    correct = sum(str(p) == str(e.label) for p, e in zip(predicted, examples))
    return {"rows": len(examples), "accuracy": correct / len(examples)}


def latency_ms(directory: str | Path, runs: int = 20, threads: int = 1) -> float:
    """Median time of one `predict` of one dev sentence (batch 1, `threads` threads), after a warm-up."""
    import statistics
    import time

    from keras_electra.export.predictor import Predictor

    directory = Path(directory)
    card = read_card(directory)
    predictor = Predictor.load(directory / card["file"], num_threads=threads)
    text = [slice_examples(card)[0].text_a]
    predictor.predict(text)
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        predictor.predict(text)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def forget_source(path: Path) -> None:
    """Drop the training directory a `.tflite` records as its export source: a shipped file carries no
    path of the machine that built it (its card says how to rebuild it)."""
    import json

    from keras_electra.export.common import METADATA_NAME
    from keras_electra.export.tflite import add_metadata, read_metadata
    from keras_electra.utils.io import atomic_file

    if path.suffix != ".tflite":
        return
    content = path.read_bytes()
    info = json.loads(read_metadata(content)[METADATA_NAME])
    if info.get("source") is None:
        return
    info["source"] = None
    with atomic_file(path) as tmp:
        Path(tmp).write_bytes(add_metadata(content, {METADATA_NAME: json.dumps(info).encode("utf-8")}))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m keras_electra.export.zoo", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("directory", type=Path)
    parser.add_argument("--update", action="store_true", help="write the recomputed slice score and size")
    args = parser.parse_args(argv)
    card = read_card(args.directory)
    score = slice_score(args.directory)
    size = (args.directory / card["file"]).stat().st_size
    print(f"{card['name']}: {card['task']} {card.get('split', 'dev')} first {score['rows']} rows: accuracy "
          f"{score['accuracy']:.4f} (card: {card['slice'].get('accuracy')}); {card['file']} {size:,} bytes")
    if args.update:
        from keras_electra.utils.io import write_json

        forget_source(args.directory / card["file"])
        size = (args.directory / card["file"]).stat().st_size
        card["slice"].update(score)
        card["bytes"] = size
        card["latency_ms_batch1_1thread"] = round(latency_ms(args.directory), 1)
        write_json(args.directory / CARD, card)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
