"""The README's K-shot table: prompt-based classification with the RTD head vs standard fine-tuning.

    python scripts/prompt_fewshot_table.py --model runs/continued-novels --task sst2 \
        --out runs/fewshot/sst2.jsonl                 # one JSON line per (method, K, seed)
    python scripts/prompt_fewshot_table.py --table runs/fewshot/*.jsonl   # the markdown table

For each K (examples per class, drawn with the seed from the training split) both methods start from
the same discriminator and train with the same recipe (`finetune`'s defaults: LR by model size,
layer-wise decay, warm-up, AdamW without bias correction) for the same number of steps, through the
library's own `train_one_seed`: the prompt method (`finetune --prompt`: binary cross-entropy on the
label word's RTD score) and standard fine-tuning (a fresh classifier head on [CLS]). K = 0 is the
untrained prompt (zero-shot) and, for the standard head, the majority class. The scores are on a fixed
sample of the dev split (the same for every run). The discriminator is loaded once per process.

`--methods standard augment` is the README's augmentation table: `augment` is standard fine-tuning on
the K-shot examples plus `--augment-copies` generator copies of each (`finetune --augment generator`,
keras_electra/tasks/augmentation.py, drawn with the run's seed), from the generator saved beside the
discriminator (or `--generator DIR`). Both arms train for the same number of steps: with `--steps 80`,
batch 8 and 4 copies it is exact at K = 32 and 64 (epochs = steps x batch / N, rounded):

    python scripts/prompt_fewshot_table.py --model runs/continued-novels --task sst2 --shots 32 64 \
        --methods standard augment --steps 80 --eval-examples 200 --out runs/fewshot/sst2-augment.jsonl
    python scripts/prompt_fewshot_table.py --table runs/fewshot/sst2-augment.jsonl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

METHODS = ("prompt", "standard", "augment")
COLUMNS = {"prompt": "prompt (RTD head)", "standard": "standard fine-tuning",
           "augment": "standard + generator augmentation"}
TEMPLATES = {
    "sst2": ("{text} It was {label}.", ["great=1", "terrible=0"], 64),
    "mrpc": ("{text_a} ? {label} , {text_b}", ["Yes=1", "No=0"], 128),
}


def run(args: argparse.Namespace) -> None:
    import keras

    from keras_electra.tasks.classifier import ElectraClassifier
    from keras_electra.tasks.finetune import FinetuneConfig, train_one_seed
    from keras_electra.tasks.prompting import (
        PromptClassifier,
        PromptPreprocessor,
        load_discriminator_for_prompts,
        parse_label_words,
        prompt_spec,
    )
    from keras_electra.tasks.recipe import resolve_hyperparameters
    from keras_electra.tasks.registry import get_task, read_split
    from keras_electra.tasks.task_data import TaskData, few_shot, subsample

    template, label_items, seq_length = TEMPLATES[args.task]
    spec = get_task(args.task)
    data_dir = Path(args.data) / {"sst2": "SST-2", "mrpc": "MRPC"}[args.task]
    train_all, _ = read_split(spec, data_dir, "train")
    dev, _ = read_split(spec, data_dir, "dev")
    dev = subsample(dev, args.eval_examples, 1234)
    monitor = dev[:8]  # train_one_seed scores its dev set every epoch: a token set; the real scoring is below
    augmenter = None
    if "augment" in args.methods:
        from keras_electra.tasks.augmentation import AugmentSettings, load_augmenter

        settings = AugmentSettings(args.generator or args.model, args.augment_copies, args.augment_rate)
        augmenter = load_augmenter(settings, FinetuneConfig(task=args.task, data=str(data_dir), init=args.model,
                                                            output="unused", augment="generator",
                                                            augment_generator=args.generator), seq_length)
    discriminator, tokenizer = load_discriminator_for_prompts(args.model)
    initial = [w.copy() for w in discriminator.get_weights()]
    words, labels = parse_label_words(label_items, spec.labels)
    base = FinetuneConfig(task=args.task, data=str(data_dir), init=args.model, output="unused",
                          batch_size=args.batch_size, seq_length=seq_length, verbose=0,
                          learning_rate=args.learning_rate)

    def record(row: dict) -> None:
        row.update(task=args.task, model=args.model, eval_examples=len(dev))
        print(json.dumps(row), flush=True)
        with open(args.out, "a") as out:
            out.write(json.dumps(row) + "\n")

    def prompt_model(seed: int = 0):
        discriminator.set_weights(initial)
        keras.utils.set_random_seed(seed)
        pre = PromptPreprocessor(tokenizer, template, words, seq_length=seq_length)
        return PromptClassifier.from_discriminator(discriminator, pre, labels)

    def standard_model(seed: int):
        discriminator.set_weights(initial)
        keras.utils.set_random_seed(seed)
        return ElectraClassifier.from_backbone(discriminator.backbone, tokenizer, seq_length, num_classes=len(labels),
                                               label_names=list(labels))

    # K = 0 once (it does not depend on the seed); then seed by seed, so that a run cut short still has every K.
    plan = [(0, args.seeds[0])] if 0 in args.shots else []
    plan += [(k, seed) for seed in args.seeds for k in args.shots if k]
    for k, seed in plan:
        for method in args.methods:
            cfg = dataclasses.replace(base, seed=seed)
            if method == "prompt":
                cfg = dataclasses.replace(cfg, prompt=template, label_words=label_items)
                task_spec = prompt_spec(spec, cfg)
            else:
                task_spec = spec
            runner = task_spec.runner
            start = time.perf_counter()
            if k == 0:
                if method == "prompt":
                    model = prompt_model()
                    preds = runner.predict(model, dev, args.eval_batch_size)
                    scores = runner.score(args.task, dev, preds, model)
                else:  # no training: the majority class of the dev sample (a constant predictor)
                    counts = defaultdict(int)
                    for e in dev:
                        counts[str(e.label)] += 1
                    scores = {"accuracy": max(counts.values()) / len(dev)}
                record({"method": method, "k": 0, "seed": seed, "accuracy": scores["accuracy"],
                        "seconds": round(time.perf_counter() - start, 1)})
                continue
            train = few_shot(train_all, k, seed)
            extra = {}
            if method == "augment":  # the K-shot examples and their generator copies (finetune --augment)
                augmenter.seed = seed
                train, stats = augmenter.augment(train)
                extra = {"augment_copies": args.augment_copies, "augment_rate": args.augment_rate,
                         "generator": args.generator or args.model, **stats}
            if args.task == "mrpc":  # the official double_unordered, as finetune does
                train = train + [dataclasses.replace(e, guid=f"{e.guid}-swapped", text_a=e.text_b,
                                                     text_b=e.text_a) for e in train]
            epochs = max(1, round(args.steps * args.batch_size / len(train)))
            cfg = dataclasses.replace(cfg, epochs=epochs)
            model = prompt_model(seed) if method == "prompt" else standard_model(seed)  # augment: standard
            data = TaskData(train, monitor, None, {}, list(labels))
            hp = resolve_hyperparameters(cfg, task_spec, model.backbone)
            with tempfile.TemporaryDirectory() as logs:
                result = train_one_seed(cfg, task_spec, data, hp, model, tokenizer, seed, Path(logs))
            preds = runner.predict(model, dev, args.eval_batch_size)
            scores = runner.score(args.task, dev, preds, model)
            record({"method": method, "k": k, "seed": seed, "accuracy": scores["accuracy"],
                    "f1": scores.get("f1"), "epochs": epochs, "steps": result["result"]["total_steps"],
                    "learning_rate": hp["learning_rate"], "train_examples": len(train),
                    "seconds": round(time.perf_counter() - start, 1), **extra})


def table(paths: list[str]) -> None:
    rows = [json.loads(line) for p in paths for line in Path(p).read_text().splitlines() if line.strip()]
    groups: dict[tuple, list[float]] = defaultdict(list)
    for r in rows:
        groups[(r["task"], r["model"], r["k"], r["method"])].append(r["accuracy"])
    present = [m for m in METHODS if any(key[3] == m for key in groups)]
    print(f"| task | K per class | {' | '.join(COLUMNS[m] for m in present)} | seeds |")
    print(f"|---|---:|{'---:|' * len(present)}---:|")
    keys = sorted({(t, m, k) for t, m, k, _ in groups}, key=lambda x: (x[0], x[1], x[2]))

    def cell(values: list[float] | None) -> str:
        if not values:
            return "—"
        if len(values) == 1:
            return f"{100 * values[0]:.1f}"
        return f"{100 * statistics.mean(values):.1f} ± {100 * statistics.pstdev(values):.1f}"

    for task, model, k in keys:
        values = [groups.get((task, model, k, m)) for m in present]
        n = max(len(v or []) for v in values)
        label = f"{k}" if k else "0 (zero-shot; standard = majority class)"
        cells = [cell(v) + (f" ({len(v)} seeds)" if v and len(v) < n else "") for v in values]  # a cut-short run
        print(f"| {task} ({Path(model).name}) | {label} | {' | '.join(cells)} | {n} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", help="a discriminator with its RTD head")
    parser.add_argument("--task", choices=sorted(TEMPLATES))
    parser.add_argument("--data", default="../shared/data/glue")
    parser.add_argument("--shots", type=int, nargs="+", default=[0, 16, 32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--methods", nargs="+", default=["prompt", "standard"], choices=METHODS,
                        help="augment: standard fine-tuning with generator copies (--augment-copies, --augment-rate)")
    parser.add_argument("--generator", help="augment: the generator (default: --model's generator/)")
    parser.add_argument("--augment-copies", type=int, default=4)
    parser.add_argument("--augment-rate", type=float, default=0.15)
    parser.add_argument("--steps", type=int, default=32, help="training steps per run (epochs = steps x batch / N)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, help="default: finetune's (3e-4 for a Small-sized model)")
    parser.add_argument("--eval-examples", type=int, default=400, help="dev sample size (fixed, seed 1234)")
    parser.add_argument("--eval-batch-size", type=int, default=64)
    parser.add_argument("--out", help="append one JSON line per run here")
    parser.add_argument("--table", nargs="+", metavar="JSONL", help="print the markdown table of these files")
    args = parser.parse_args()
    if args.table:
        table(args.table)
        return
    if not (args.model and args.task and args.out):
        sys.exit("give --model, --task and --out (or --table FILES)")
    run(args)


if __name__ == "__main__":
    main()
