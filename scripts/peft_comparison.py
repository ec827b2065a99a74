"""The README's PEFT table: every parameter-efficient method against full fine-tuning, from MiniLM.

Each row is one `keras-electra finetune` process (so its peak memory, ru_maxrss from `os.wait4`, is
its own), on the same data subsets, sequence length, batch size, seed and number of epochs:

    nice -n 10 python scripts/peft_comparison.py --init ~/.cache/keras_electra/minilm/hf \\
        --data ../shared/data --output runs/peft_table

writes `OUTPUT/rows.json` (appended after every run, so a killed run keeps what it measured) and
`OUTPUT/table.md`. Time per epoch is the median training step × steps per epoch (the first step,
which traces the graph, and the dev evaluation excluded).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import subprocess
import sys
import time
from pathlib import Path

# (row label, extra finetune arguments). The learning rates: the recipe's default for MiniLM's size
# (3e-4) for the methods that train whole blocks, 1e-3 for the small added/selected parameter sets
# (their usual range), 5e-3 for prefix tuning (Li & Liang use 5e-5..8e-5 for GPT-2 with 10x more
# steps; with our few steps the MLP needs a larger one, as P-tuning v2's 5e-3..1e-2).
METHODS = {
    "full fine-tuning": ["--learning-rate", "3e-4"],
    "frozen bottom 4 of 6 layers": ["--freeze-layers", "4", "--learning-rate", "3e-4"],
    "BitFit": ["--peft", "bitfit", "--learning-rate", "1e-3"],
    "LoRA (r=8, query+value)": ["--peft", "lora", "--lora-rank", "8", "--learning-rate", "1e-3"],
    "adapters (size 64)": ["--peft", "adapter", "--adapter-size", "64", "--learning-rate", "1e-3"],
    "AdaLoRA (r 12→8, all 6 matrices)": ["--peft", "adalora", "--learning-rate", "1e-3"],
    "prefix (20 tokens, MLP 512)": ["--peft", "prefix", "--learning-rate", "5e-3"],
}
TASKS = {"sst2": ("glue", "accuracy"), "conll2003": ("conll2003", "f1")}


def run_one(args, task: str, label: str, extra: list[str], output: Path) -> dict:
    data_dir, metric = TASKS[task]
    train, dev = (args.sst2_train, args.sst2_dev) if task == "sst2" else (args.conll_train, args.conll_dev)
    command = [
        sys.executable, "-m", "keras_electra", "finetune", "--task", task, "--data", str(Path(args.data) / data_dir),
        "--init", args.init, "--output", str(output), "--overwrite", "--seq-length", str(args.seq_length),
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--max-train-examples", str(train),
        "--max-eval-examples", str(dev), "--seed", "0", "--quiet", *extra,
    ]
    start = time.perf_counter()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    log = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - start
    (output.parent / f"{output.name}.log").write_text(log)
    if os.waitstatus_to_exitcode(status) != 0:
        return {"task": task, "method": label, "error": log.strip().splitlines()[-1] if log.strip() else "failed"}
    results = json.loads((output / "results.json").read_text())
    run = results["runs"][0]
    return {
        "task": task, "method": label, "metric": metric, "score": results["dev"][metric],
        "trainable_parameters": run["trainable_parameters"], "total_parameters": run["total_parameters"],
        "epoch_seconds": run["median_step_seconds"] * run["steps_per_epoch"],
        "median_step_seconds": run["median_step_seconds"], "steps_per_epoch": run["steps_per_epoch"],
        "peak_rss_mib": usage.ru_maxrss / 1024, "process_seconds": wall,
        "learning_rate": results["hyperparameters"]["learning_rate"], "num_examples": results["num_examples"],
    }


def table(rows: list[dict], args) -> str:
    lines = [
        f"MiniLM (6×384) from `{args.init}`, seed 0, {args.epochs} epochs, length {args.seq_length}, "
        f"batch {args.batch_size}; SST-2: {args.sst2_train} train / {args.sst2_dev} dev sentences, "
        f"CoNLL-2003: {args.conll_train} train / {args.conll_dev} dev sentences. One process per row on a shared "
        f"2-core CPU (under `nice`, {args.jobs} at a time), so times compare rows only roughly.",
        "",
        "| task | method | dev score | trainable params | % of model | LR | s / epoch | peak RSS (MiB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        if "error" in r:
            lines.append(f"| {r['task']} | {r['method']} | failed: {r['error']} | | | | | |")
            continue
        share = 100 * r["trainable_parameters"] / r["total_parameters"]
        lines.append(
            f"| {r['task']} | {r['method']} | {r['metric']} {100 * r['score']:.1f} | "
            f"{r['trainable_parameters']:,} | {share:.2f} | {r['learning_rate']:g} | {r['epoch_seconds']:.0f} | "
            f"{r['peak_rss_mib']:.0f} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init", required=True, help="the checkpoint every row starts from (MiniLM's HF directory)")
    parser.add_argument("--data", required=True, help="the shared data directory (glue/, conll2003/)")
    parser.add_argument("--output", required=True)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--seq-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--sst2-train", type=int, default=384)
    parser.add_argument("--sst2-dev", type=int, default=300)
    parser.add_argument("--conll-train", type=int, default=192)
    parser.add_argument("--conll-dev", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=1, help="rows run at the same time (each is its own process)")
    parser.add_argument("--resume", action="store_true", help="keep the rows already in OUTPUT/rows.json")
    args = parser.parse_args()
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    rows: list[dict] = []
    if args.resume and (output / "rows.json").is_file():
        rows = [r for r in json.loads((output / "rows.json").read_text()) if "error" not in r]
    done = {(r["task"], r["method"]) for r in rows}
    todo = [(task, label) for task in args.tasks for label in args.methods if (task, label) not in done]
    order = {(task, label): i for i, (task, label) in enumerate((t, m) for t in TASKS for m in METHODS)}

    def one(item: tuple[str, str]) -> dict:
        task, label = item
        return run_one(args, task, label, METHODS[label], output / f"{task}-{label.split()[0].lower()}")

    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        for row in pool.map(one, todo):
            rows.append(row)
            rows.sort(key=lambda r: order[(r["task"], r["method"])])
            print(json.dumps(row), flush=True)
            (output / "rows.json").write_text(json.dumps(rows, indent=1))
            (output / "table.md").write_text(table(rows, args))
    print(table(rows, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
