"""Print the README's results table from the results.json files that finetune_results.sh wrote.

Columns: the four starts of `scripts/finetune_results.sh` (random, pretrained, minilm, continued), each
pair followed by its difference; a start that has not been run shows "—".

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


# Column pairs compared in the table: (start, start it is compared with); a Δ follows each pair.
PAIRS = [("random", "pretrained"), ("minilm", "continued")]
HEADER = ["random init", "pretrained here", "Δ", "MiniLM (real weights)*", "MiniLM continued on novels*", "Δ"]


def main(root: str) -> int:
    root_path = Path(root)
    print("| task | " + " | ".join(HEADER) + " | published ELECTRA-Small |")
    print("|" + " --- |" * (len(HEADER) + 2))
    for task, split, label in ROWS:
        cells = []
        for pair in PAIRS:
            values = []
            for start in pair:
                path = root_path / f"{task}-{start}" / "results.json"
                values.append(score(json.loads(path.read_text()), split) if path.is_file() else None)
            cells += ["—" if v is None else f"{v:.1f}" for v in values]
            cells.append("—" if None in values else f"{values[1] - values[0]:+.1f}")
        print(f"| {label} | " + " | ".join(cells) + f" | {PUBLISHED.get(task, '—')} |")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1] if len(sys.argv) > 1 else "runs/results"))
