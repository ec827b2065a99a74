"""Print the README's results table from the results.json files that finetune_results.sh wrote.

    python scripts/results_table.py runs/results

Every number is read from a results.json; nothing is typed in except the published ELECTRA-Small
figures, which are quoted for scale with their sources.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# (task, split reported, label) in table order; CoNLL-2003 is reported on test, SemEval's only
# evaluation split is its test set, XQuAD-en on the documented 20% by-article dev split.
ROWS = [
    ("sst2", "dev", "SST-2 dev (accuracy)"),
    ("cola", "dev", "CoLA dev (MCC)"),
    ("mrpc", "dev", "MRPC dev (accuracy)"),
    ("stsb", "dev", "STS-B dev (Spearman)"),
    ("conll2003", "test", "CoNLL-2003 test (entity F1)"),
    ("xquad", "dev", "XQuAD-en dev split (F1)"),
    ("semeval", "dev", "SemEval-2010 test (macro-F1 excl. Other)"),
    ("chnsenticorp", "dev", "ChnSentiCorp dev (accuracy)"),
    ("cluener", "dev", "CLUENER dev (entity F1)"),
]

# Published ELECTRA-Small, for scale only (a 14M-parameter model pretrained for 1M steps of batch
# 128): GLUE dev from the ELECTRA repository's Small++ table (the paper reports accuracy for MRPC,
# Spearman for STS-B, MCC for CoLA); ChnSentiCorp dev from ymcui/Chinese-ELECTRA's Chinese Small.
# No ELECTRA-Small figure is published for the other rows; SQuAD 1.1 dev is given beside XQuAD.
PUBLISHED = {
    "sst2": "91.2", "cola": "57.0", "mrpc": "88.0", "stsb": "87.5",
    "xquad": "— (SQuAD 1.1 dev EM 75.8)", "chnsenticorp": "92.8 (Chinese ELECTRA-Small)",
}


def score(results: dict, split: str) -> float | None:
    metric = results["metric"]
    block = results.get(split)
    return None if block is None else 100.0 * float(block[metric])


def main(root: str) -> int:
    root_path = Path(root)
    print("| task | random init | pretrained here | Δ | published ELECTRA-Small |")
    print("| --- | --- | --- | --- | --- |")
    for task, split, label in ROWS:
        cells = []
        for start in ("random", "pretrained"):
            path = root_path / f"{task}-{start}" / "results.json"
            value = score(json.loads(path.read_text()), split) if path.is_file() else None
            cells.append(value)
        shown = ["—" if v is None else f"{v:.1f}" for v in cells]
        delta = "—" if None in cells else f"{cells[1] - cells[0]:+.1f}"
        print(f"| {label} | {shown[0]} | {shown[1]} | {delta} | {PUBLISHED.get(task, '—')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/results"))
