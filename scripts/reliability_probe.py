"""Re-run issue 18's hostile cases against the real CLI, each in its own process with a time limit.

    python scripts/reliability_probe.py [--workdir DIR] [--only NAME ...] [--timeout SECONDS]

Builds a tiny pretraining run, a tiny SST-2 model and its SavedModel export under the work directory
(from ../shared/data), then runs every case as a user would (`python -m keras_electra ...`) and sorts
the outcome into: ok, traceback (a Python traceback on stderr), hang (the case ran past its time limit)
or wrong (no traceback, but not the promised behaviour: a missing one-line error, misaligned output,
files left behind, ...). Prints one line per case and the counts; exits 1 unless every case is ok.
The same cases are pinned by tests (tests/pretraining/test_reliability.py, tests/test_output_safety.py,
tests/tasks/test_hostile_input.py, tests/data/test_hostile_corpus.py); this script is the by-hand re-run.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import stat
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("KERAS_ELECTRA_SHARED_DATA", REPO.parent / "shared" / "data"))
NOVEL = DATA / "english_novels" / "Burnett_Lord_1886.txt"
VOCAB = DATA / "vocab" / "bert_uncased_vocab.txt"
VOCAB_CASED = DATA / "vocab" / "bert_cased_vocab.txt"
SST2 = DATA / "glue" / "SST-2"


# TensorFlow's C++ start-up lines (oneDNN, CUDA), printed before absl's logging starts and so not silenced by
# TF_CPP_MIN_LOG_LEVEL: not ours, and not counted against the one-line promise.
TF_NOISE = ("WARNING: All log messages before absl", "I0000 ", "W0000 ", "E0000 ")
_TRACEBACKS: list[str] = []  # stderr of every run that printed a Python traceback, for the current case


@dataclass
class Result:
    code: int | None  # None: killed at the time limit
    out: str
    err: str
    seconds: float


def cli(args: list[str], timeout: float, stdin: bytes | None = None) -> Result:
    env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
    started = time.perf_counter()
    process = subprocess.Popen([sys.executable, "-m", "keras_electra", *args], env=env, cwd=REPO,
                               stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               start_new_session=True)
    try:
        out, err = process.communicate(stdin, timeout=timeout)
        code = process.returncode
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, 9)
        out, err = process.communicate()
        code = None
    result = Result(code, out.decode("utf-8", "replace"), err.decode("utf-8", "replace"),
                    time.perf_counter() - started)
    if "Traceback (most recent call last)" in result.err:
        _TRACEBACKS.append(result.err)
    return result


def pretrain_args(output: Path, *extra: str, corpus: Path = NOVEL, vocab: Path = VOCAB, steps: int = 4) -> list[str]:
    return ["pretrain", "--preset", "tiny", "--corpus", str(corpus), "--vocab", str(vocab), "--steps", str(steps),
            "--batch-size", "2", "--seq-length", "16", "--checkpoint-every", "2", "--eval-batches", "1",
            "--output", str(output), *extra]


def one_line(result: Result, *needles: str) -> str | None:
    """None when the run stopped (exit 2) with one stderr line holding every needle; else what is wrong."""
    lines = [line for line in result.err.strip().splitlines() if not line.startswith(("warning:", *TF_NOISE))]
    if result.code != 2:
        return f"exit {result.code}, expected 2: {result.err.strip()[-300:]!r}"
    if len(lines) != 1:
        return f"{len(lines)} error lines: {result.err.strip()[-300:]!r}"
    missing = [n for n in needles if n not in lines[0]]
    return f"{lines[0]!r} lacks {missing}" if missing else None


class Probe:
    def __init__(self, workdir: Path, timeout: float) -> None:
        self.work, self.timeout = workdir, timeout
        self.pretrained = workdir / "fixture_pretrain"
        self.model = workdir / "fixture_sst2"
        self.export = workdir / "fixture_export"

    # ------------------------------------------------------------------ fixtures
    def fixtures(self) -> None:
        steps = [
            (self.pretrained, pretrain_args(self.pretrained)),
            (self.model, ["finetune", "--task", "sst2", "--data", str(SST2), "--init", "random", "--preset", "tiny",
                          "--vocab", str(VOCAB), "--max-train-examples", "64", "--max-eval-examples", "32",
                          "--epochs", "1", "--seq-length", "32", "--output", str(self.model), "--quiet"]),
            (self.export, ["export", "--model", str(self.model), "--format", "saved_model",
                           "--output", str(self.export)]),
        ]
        for path, args in steps:
            if not path.exists():
                result = cli(args, 900)
                if result.code != 0:
                    sys.exit(f"fixture {path.name} failed: {result.err[-2000:]}")

    def copy_run(self, name: str) -> Path:
        target = self.work / name
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(self.pretrained, target)
        return target

    # --------------------------------------------------------------------- cases
    def case_two_pretrains_on_one_output(self) -> str | None:
        output = self.work / "two_runs"
        shutil.rmtree(output, ignore_errors=True)
        env = {**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"}
        first = subprocess.Popen([sys.executable, "-m", "keras_electra", *pretrain_args(output, steps=100000)],
                                 env=env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                 start_new_session=True)
        try:
            deadline = time.time() + self.timeout
            while not (output / ".keras-electra.lock").exists() and time.time() < deadline:
                time.sleep(0.2)
            second = cli(pretrain_args(output), self.timeout)
        finally:
            os.killpg(first.pid, 9)
            first.wait()
        return one_line(second, "is in use by", f"pid {first.pid}")

    def case_failed_validation_writes_nothing(self) -> str | None:
        empty = self.work / "empty.txt"
        empty.write_text("\n\n")
        output = self.work / "failed_validation"
        shutil.rmtree(output, ignore_errors=True)
        problem = one_line(cli(pretrain_args(output, corpus=empty), self.timeout), "empty")
        return problem or (f"left {sorted(p.name for p in output.iterdir())}" if output.exists() else None)

    def case_resume_with_another_vocabulary(self) -> str | None:
        run = self.copy_run("other_vocab")
        return one_line(cli(pretrain_args(run, "--cased", vocab=VOCAB_CASED), self.timeout), "differs from")

    def case_stale_temporaries_removed(self) -> str | None:
        run = self.copy_run("stale")
        (run / "checkpoints" / "ckpt-6_temp").mkdir()
        (run / ".generator.tmp-k1ll3d").mkdir()
        (run / ".generator.tmp-k1ll3d" / "model.keras").write_bytes(b"")
        result = cli(pretrain_args(run), self.timeout)
        if result.code != 0:
            return f"exit {result.code}: {result.err[-300:]!r}"
        left = [p.name for p in run.rglob("*") if ".tmp-" in p.name or p.name.endswith("_temp")]
        return f"left {left}" if left else None

    def case_pretrain_output_is_a_file(self) -> str | None:
        a_file = self.work / "a_file"
        a_file.write_text("x")
        return one_line(cli(pretrain_args(a_file), self.timeout), "is a file, not a directory")

    def case_finetune_output_is_a_file(self) -> str | None:
        a_file = self.work / "a_file"
        a_file.write_text("x")
        return one_line(cli(["finetune", "--task", "sst2", "--data", str(SST2), "--init", "random", "--preset", "tiny",
                             "--vocab", str(VOCAB), "--output", str(a_file)], self.timeout),
                        "is a file, not a directory")

    def case_convert_output_below_a_file(self) -> str | None:
        a_file = self.work / "a_file"
        a_file.write_text("x")
        return one_line(cli(["convert", str(self.pretrained / "discriminator"), "--output", str(a_file / "sub")],
                            self.timeout), "is a file, not a directory")

    def case_tflite_output_is_a_directory(self) -> str | None:
        started = time.perf_counter()
        result = cli(["export", "--model", str(self.model), "--format", "tflite", "--output", str(self.work)],
                     self.timeout)
        return one_line(result, "is a directory") or (
            None if time.perf_counter() - started < 120 else "refused only after the conversion")

    def case_saved_model_output_below_a_file(self) -> str | None:
        a_file = self.work / "a_file"
        a_file.write_text("x")
        return one_line(cli(["export", "--model", str(self.model), "--format", "saved_model",
                             "--output", str(a_file / "exports")], self.timeout), "is a file, not a directory")

    def case_outputs_are_world_readable(self) -> str | None:
        modes = {p: stat.S_IMODE(p.stat().st_mode) for p in (
            self.pretrained / "discriminator", self.pretrained / "generator", self.export / "1")}
        wrong = {str(p): oct(m) for p, m in modes.items() if m & 0o055 != 0o055}
        return f"not readable by others: {wrong}" if wrong else None

    def case_truncated_checkpoint_falls_back(self) -> str | None:
        run = self.copy_run("truncated_ckpt")
        data = run / "checkpoints" / "ckpt-4.data-00000-of-00001"
        with open(data, "r+b") as f:
            f.truncate(data.stat().st_size // 3)
        result = cli(pretrain_args(run, steps=6), self.timeout)
        if result.code != 0:
            return f"exit {result.code}: {result.err[-300:]!r}"
        return None if "is unreadable" in result.out and "Resuming from step 2" in result.out else \
            f"no fallback reported: {result.out[-300:]!r}"

    def case_no_intact_checkpoint(self) -> str | None:
        run = self.copy_run("no_intact_ckpt")
        for data in (run / "checkpoints").glob("ckpt-*.data-*"):
            data.write_bytes(b"")
        return one_line(cli(pretrain_args(run, steps=6), self.timeout), "cannot resume", "is damaged")

    def _truncated(self, name: str) -> str | None:
        run = self.copy_run(f"truncated_{name}")
        text = (run / name).read_text()
        (run / name).write_text(text[: len(text) // 2])
        return one_line(cli(pretrain_args(run), self.timeout), f"{run / name} is not valid JSON")

    def case_truncated_run_config_json(self) -> str | None:
        return self._truncated("run_config.json")

    def case_truncated_tokenizer_json(self) -> str | None:
        return self._truncated("tokenizer.json")

    def case_truncated_model_keras(self) -> str | None:
        run = self.copy_run("truncated_model")
        model = run / "discriminator" / "model.keras"
        model.write_bytes(model.read_bytes()[: model.stat().st_size // 2])
        return one_line(cli(["convert", str(run / "discriminator"), "--output", str(self.work / "c1")], self.timeout),
                        "is not a readable .keras archive")

    def case_bad_config_json_in_finetune_init(self) -> str | None:
        run = self.copy_run("bad_config")
        config = run / "discriminator" / "config.json"
        config.write_text(json.dumps({**json.loads(config.read_text()), "num_layers": "two"}))
        return one_line(cli(["finetune", "--task", "sst2", "--data", str(SST2), "--init", str(run / "discriminator"),
                             "--max-train-examples", "8", "--output", str(self.work / "bad_config_out")],
                            self.timeout), "config.json")

    def case_one_long_line_without_spaces(self) -> str | None:
        corpus = self.work / "one_line.txt"
        rng = random.Random(0)
        corpus.write_text("".join(rng.choice("abcdefghij") for _ in range(5_000_000)) + "\n")
        output = self.work / "long_line"
        shutil.rmtree(output, ignore_errors=True)
        result = cli(pretrain_args(output, corpus=corpus, steps=2), self.timeout)
        if result.code != 0:
            return f"exit {result.code}: {result.err[-300:]!r}"
        return None

    def _predict(self, model: Path, args: list[str], stdin: bytes | None = None) -> Result:
        return cli(["predict", "--model", str(model), *args], self.timeout, stdin)

    def case_invalid_utf8_on_stdin(self) -> str | None:
        for model in (self.model, self.export):
            result = self._predict(model, ["-", "--json"], b"a gorgeous movie\nthe plot is dull \xff\xfe\n")
            if result.code != 0:
                return f"{model.name}: exit {result.code}: {result.err[-300:]!r}"
            out = json.loads(result.out)
            if len(out) != 2 or out[1]["text"] != "the plot is dull \ufffd\ufffd":
                return f"{model.name}: {out!r}"
        return None

    def case_lone_surrogate_in_argv(self) -> str | None:
        # As a shell passes invalid UTF-8: Python turns it into a lone surrogate.
        env_text = b"bad \xff bytes"
        result = subprocess.run([sys.executable, "-m", "keras_electra", "predict", "--model", str(self.model),
                                 env_text, "--json"], capture_output=True, timeout=self.timeout, cwd=REPO,
                                env={**os.environ, "PYTHONPATH": str(REPO), "TF_CPP_MIN_LOG_LEVEL": "3"})
        if result.returncode != 0:
            return f"exit {result.returncode}: {result.stderr.decode('utf-8', 'replace')[-300:]!r}"
        out = json.loads(result.stdout)
        return None if out[0]["text"] == "bad \ufffd bytes" else repr(out)

    def case_blank_lines_on_stdin_stay_aligned(self) -> str | None:
        result = self._predict(self.model, ["-"], b"one\n\ntwo\n")
        lines = result.out.split("\n")
        if result.code != 0:
            return f"exit {result.code}: {result.err[-300:]!r}"
        return None if lines[1] == "" and lines[0].endswith("\tone") and lines[2].endswith("\ttwo") else repr(lines)

    def case_zero_width_only_text(self) -> str | None:
        return one_line(self._predict(self.model, ["a fine film", "\u200b\u200c"]), "text 2 is empty")

    def case_nul_only_text(self) -> str | None:
        return one_line(self._predict(self.export, ["a fine film", "\x01\x01"]), "text 2 is empty")

    def case_one_class_training_set(self) -> str | None:
        data = self.work / "one_class"
        data.mkdir(exist_ok=True)
        rows = (SST2 / "train.tsv").read_text().splitlines()
        (data / "train.tsv").write_text("\n".join([rows[0]] + [r for r in rows[1:200] if r.endswith("\t1")]))
        (data / "dev.tsv").write_text((SST2 / "dev.tsv").read_text())
        return one_line(cli(["finetune", "--task", "sst2", "--data", str(data), "--init", "random", "--preset", "tiny",
                             "--vocab", str(VOCAB), "--output", str(self.work / "one_class_out"), "--quiet"],
                            self.timeout), "has the label '1'")

    def case_untrusted_pickle(self) -> str | None:
        source = self.work / "pickle"
        marker = self.work / "pickle_code_ran"
        source.mkdir(exist_ok=True)
        code = (f"import os, torch\nclass P:\n    def __reduce__(self):\n"
                f"        return (os.mkdir, ({str(marker)!r},))\n"
                f"torch.save({{'w': P()}}, {str(source / 'pytorch_model.bin')!r})\n")
        subprocess.run([sys.executable, "-c", code], check=True, timeout=self.timeout)
        (source / "config.json").write_text(json.dumps({
            "model_type": "electra", "vocab_size": 64, "embedding_size": 16, "hidden_size": 16,
            "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32,
            "max_position_embeddings": 32, "type_vocab_size": 2}))
        problem = one_line(cli(["convert", str(source), "--output", str(self.work / "pickle_out")], self.timeout),
                           "refused as unsafe", "safetensors")
        return problem or ("the pickle's code ran" if marker.exists() else None)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, help="kept afterwards (default: a temporary directory, removed)")
    parser.add_argument("--only", nargs="*", default=None, help="case names (without case_)")
    parser.add_argument("--timeout", type=float, default=300, help="seconds per case before it counts as a hang")
    args = parser.parse_args(argv)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="reliability-probe-"))
    work.mkdir(parents=True, exist_ok=True)
    probe = Probe(work, args.timeout)
    names = [n[len("case_"):] for n in dir(probe) if n.startswith("case_")]
    names = [n for n in names if args.only is None or n in args.only]
    started = time.perf_counter()
    probe.fixtures()
    print(f"fixtures ready in {time.perf_counter() - started:.0f} s", flush=True)
    counts = {"ok": 0, "traceback": 0, "hang": 0, "wrong": 0}
    for name in names:
        case_started = time.perf_counter()
        _TRACEBACKS.clear()
        try:
            problem = getattr(probe, f"case_{name}")()
            outcome = "ok" if problem is None else "wrong"
        except subprocess.TimeoutExpired:
            outcome, problem = "hang", f"over {args.timeout:.0f} s"
        except Exception as err:  # noqa: BLE001 - a broken case is reported, the others still run
            outcome, problem = "wrong", f"the case itself failed: {type(err).__name__}: {err}"
        if _TRACEBACKS:
            outcome = "traceback"
            problem = (problem or "") + " | " + _TRACEBACKS[-1].strip().splitlines()[-1]
        if problem and problem.startswith("exit None"):
            outcome = "hang"
        counts[outcome] += 1
        print(f"{outcome:9s} {name} ({time.perf_counter() - case_started:.0f} s)" + (f": {problem}" if problem else ""),
              flush=True)
    print(" ".join(f"{k}={v}" for k, v in counts.items()), f"of {len(names)} cases")
    if args.workdir is None:
        shutil.rmtree(work, ignore_errors=True)
    return 0 if counts["ok"] == len(names) else 1


if __name__ == "__main__":
    sys.exit(main())
