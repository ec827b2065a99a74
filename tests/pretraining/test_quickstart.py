"""The quickstart runs end to end on Python's own text and prints what README promises."""

from __future__ import annotations

import json

from keras_electra.cli import main


def test_quickstart_end_to_end(tmp_path, capsys):
    output = tmp_path / "qs"
    code = main(["quickstart", "--output", str(output), "--steps", "12", "--batch-size", "8",
                 "--seq-length", "64", "--vocab-size", "1500"])
    out = capsys.readouterr().out
    assert code == 0
    for section in ("[1/5]", "[2/5]", "[3/5]", "[4/5]", "[5/5]", "generator MLM accuracy",
                    "discriminator precision", "discriminator recall"):
        assert section in out
    demo = out.split("[4/5]")[1].split("[5/5]")[0].splitlines()[2:]
    probabilities = [float(line.split()[1]) for line in demo if line.strip()]
    assert len(probabilities) >= 10 and all(0.0 <= p <= 1.0 for p in probabilities)
    metrics = json.loads((output / "metrics.json").read_text())
    assert metrics["steps"] == 12 and metrics["before"]["disc_loss"] > 0
    for part in ("discriminator", "generator"):
        assert (output / part / "model.keras").is_file() and (output / part / "vocab.txt").is_file()
    corpus = (output / "corpus" / "python_reference.txt").read_text()
    assert len(corpus.split()) > 30_000  # real text, shipped by Python itself
