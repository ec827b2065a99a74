"""`finetune --augment generator`: generator-resampled copies of the training examples (tasks/augmentation.py)."""

from __future__ import annotations

import copy
import dataclasses
import json
from pathlib import Path

import pytest

from keras_electra.cli import main
from keras_electra.tasks.registry import get_task, read_split
from tests.conftest import VOCAB_CHINESE, VOCAB_UNCASED
from tests.tasks.conftest import GLUE


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory) -> Path:
    """A pretrain-like output directory: a one-layer tiny generator (real uncased vocabulary) under
    generator/, a tiny discriminator under discriminator/."""
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.data.tokenizer import build_tokenizer
    from keras_electra.models.discriminator import ElectraDiscriminator
    from keras_electra.models.generator import ElectraGenerator
    from keras_electra.utils.io import write_json

    run = tmp_path_factory.mktemp("augment") / "run"
    tokenizer = build_tokenizer(VOCAB_UNCASED, lower_case=True)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=1,
                                       generator_fraction=1.0)
    keras.utils.set_random_seed(0)
    for part, cls in (("generator", ElectraGenerator), ("discriminator", ElectraDiscriminator)):
        directory = run / part
        directory.mkdir(parents=True)
        cls.from_electra_config(config, name=part).save(str(directory / "model.keras"))
        write_json(directory / "config.json", config.to_dict())
        tokenizer.save_to_directory(directory)
    return run


def _load(run: Path, task: str = "sst2", copies: int = 2, rate: float = 0.15, seed: int = 0, seq_length: int = 64):
    from keras_electra.tasks.augmentation import load_augmenter, resolve_augmentation
    from keras_electra.tasks.recipe import FinetuneConfig

    config = FinetuneConfig(task=task, data="unused", init="random", vocab=str(VOCAB_UNCASED), output="unused",
                            seed=seed, augment="generator", augment_generator=str(run), augment_copies=copies,
                            augment_rate=rate)
    return load_augmenter(resolve_augmentation(config, get_task(task)), config, seq_length)


@pytest.fixture(scope="module")
def loaded(tiny_run):
    return _load(tiny_run)


def _augmenter(loaded, copies: int = 2, rate: float = 0.15, seed: int = 0, seq_length: int = 64):
    """The module's loaded augmenter with other settings (plain attributes: no second load)."""
    augmenter = copy.copy(loaded)
    augmenter.copies, augmenter.rate, augmenter.seed, augmenter.seq_length = copies, rate, seed, seq_length
    return augmenter


def _rows(task: str, n: int) -> list:
    spec = get_task(task)
    return read_split(spec, GLUE / {"sst2": "SST-2", "mrpc": "MRPC"}[task], "train")[0][:n]


def test_same_seed_same_copies_other_seed_others(tiny_run, loaded):
    for task in ("sst2", "mrpc"):
        rows = _rows(task, 6)
        first, stats = _augmenter(loaded, seed=3).augment(rows)
        again, _ = (_load(tiny_run, task, seed=3) if task == "sst2" else _augmenter(loaded, seed=3)).augment(rows)
        other, _ = _augmenter(loaded, seed=4).augment(rows)
        assert first == again
        assert first != other
        assert len(first) == 3 * len(rows) and stats["copies_made"] == 2 * len(rows)
        # each original, then its copies, with its label; the copies differ from it
        for i, row in enumerate(rows):
            group = first[3 * i:3 * i + 3]
            assert group[0] == row
            assert [e.guid for e in group[1:]] == [f"{row.guid}-aug0", f"{row.guid}-aug1"]
            assert all(e.label == row.label for e in group)
            assert all((e.text_a, e.text_b) != (row.text_a, row.text_b) for e in group[1:])
            if task == "mrpc":
                assert all(e.text_b is not None for e in group)


def test_masked_fraction_windows_and_whole_words(loaded):
    from keras_electra.tasks.augmentation import mask_count

    for task, rate in (("sst2", 0.15), ("mrpc", 0.15), ("mrpc", 0.5), ("sst2", 1.0)):
        augmenter = _augmenter(loaded, copies=3, rate=rate, seq_length=48)
        rows = _rows(task, 8)
        plans, segments = augmenter.draw_positions(rows)
        assert len(plans) == 3 * len(rows)
        for plan in plans:
            windows = segments["windows"][plan.example]
            n = sum(windows)
            assert len(plan.positions) == mask_count(n, rate) == min(n, max(1, round(n * rate)))
            assert len(set(plan.positions)) == len(plan.positions)
            # only pieces the task model sees ([CLS], [SEP], padding have no (segment, index))
            assert all(0 <= t < windows[s] for s, t in plan.positions)
            if task == "mrpc":  # the pair was cut longest-first to fit 48 tokens with [CLS] and two [SEP]
                assert n <= 48 - 3 and windows[1] > 0
        # both segments of a pair get masks
        assert any(s == 1 for plan in plans for s, _ in plan.positions) == (task == "mrpc")
    # whole words first: a word of several pieces is masked whole or not at all when whole words fit
    augmenter = _augmenter(loaded, copies=20, rate=0.5)
    row = dataclasses.replace(_rows("sst2", 1)[0], text_a="unbelievably overwrought screenplays disappoint")
    plans, segments = augmenter.draw_positions([row])
    ids = segments["ids"][0][0]
    vocab = augmenter.tokenizer.vocabulary
    words, current = [], []
    for t, token_id in enumerate(ids):
        if vocab[token_id].startswith("##"):
            current.append(t)
        else:
            current = [t]
            words.append(current)
    assert any(len(w) > 1 for w in words)
    for plan in plans:
        chosen = {t for _, t in plan.positions}
        partial = [w for w in words if 0 < len(chosen & set(w)) < len(w)]
        assert len(partial) <= 1  # at most one word is cut, to make the count exact
    assert any(len(w) > 1 and set(w) <= {t for _, t in plan.positions} for plan in plans for w in words)


def test_copies_change_only_the_replaced_words(loaded):
    augmenter = _augmenter(loaded, copies=1, rate=0.1)
    row = dataclasses.replace(_rows("sst2", 1)[0], text_a="The Film's Pacing Drags, but the Final Act is "
                              "Genuinely Moving and the Cast is Superb.")
    copy = augmenter.augment([row])[0][1]
    # the original's case survives outside the replaced span; one piece of 20 (0.1 · 20 = 2 pieces) changed
    old, new = row.text_a.split(), copy.text_a.split()
    kept = sum(1 for word in old if word in new)
    assert kept >= len(old) - 2 and any(w[0].isupper() for w in new)
    assert "[" not in copy.text_a  # special tokens ([UNK], [MASK], [unused*]) are never sampled


def test_dev_untouched_and_copies_before_mrpc_swap(tiny_run):
    from keras_electra.tasks.augmentation import augment_hook
    from keras_electra.tasks.recipe import FinetuneConfig
    from keras_electra.tasks.task_data import load_task_data

    config = FinetuneConfig(task="mrpc", data=str(GLUE / "MRPC"), init="random", vocab=str(VOCAB_UNCASED),
                            output="unused", train_examples_per_class=3, max_eval_examples=20, seed=1,
                            augment="generator", augment_generator=str(tiny_run), augment_copies=2)
    spec = get_task("mrpc")
    plain = load_task_data(dataclasses.replace(config, augment="none", augment_generator=None, augment_copies=None),
                           spec)
    augmented = load_task_data(config, spec, augment=augment_hook(config, spec))
    assert augmented.dev == plain.dev and augmented.test == plain.test
    assert plain.augmentation is None
    # 6 originals + 12 copies, then every pair in both orders (double_unordered)
    assert len(plain.train) == 12 and len(augmented.train) == 36
    originals = [e for e in augmented.train if "-aug" not in e.guid and not e.guid.endswith("-swapped")]
    assert originals == [e for e in plain.train if not e.guid.endswith("-swapped")]
    assert sum(e.guid.endswith("-swapped") for e in augmented.train) == 18
    info = augmented.augmentation
    assert info["copies"] == 2 and info["rate"] == 0.15 and info["seed"] == 1
    assert info["original_examples"] == 6 and info["augmented_examples"] == 18
    assert info["generator"] == str(tiny_run)


@pytest.mark.parametrize("extra, expected", [
    (["--augment-rate", "0"], "--augment-rate 0: must be in (0, 1]"),
    (["--augment-rate", "1.5"], "--augment-rate 1.5: must be in (0, 1]"),
    (["--augment-copies", "0"], "--augment-copies 0: must be a whole number >= 1"),
])
def test_bad_settings_are_one_line(capsys, tmp_path, tiny_run, extra, expected):
    err = _finetune_error(capsys, tmp_path, ["--augment", "generator", "--augment-generator", str(tiny_run), *extra])
    assert expected in err


def test_bad_generators_are_one_line(capsys, tmp_path, tiny_run):
    missing = tmp_path / "nowhere"
    err = _finetune_error(capsys, tmp_path, ["--augment", "generator", "--augment-generator", str(missing)])
    assert f"--augment-generator: {missing} does not exist" in err
    err = _finetune_error(capsys, tmp_path, ["--augment", "generator", "--augment-generator",
                                             str(tiny_run / "discriminator")])
    assert "--augment-generator" in err and "holds no generator" in err
    err = _finetune_error(capsys, tmp_path, ["--augment", "generator", "--augment-generator", str(tiny_run)],
                          vocab=VOCAB_CHINESE)
    assert "the generator's vocabulary differs from the task model's" in err and "21128" in err
    err = _finetune_error(capsys, tmp_path, ["--augment", "generator"])
    assert "--augment-generator DIR" in err
    err = _finetune_error(capsys, tmp_path, ["--augment-copies", "3"])
    assert "--augment-copies: only with --augment generator" in err


def test_token_qa_and_choice_tasks_are_refused(capsys, tmp_path, tiny_run):
    from tests.conftest import SHARED_DATA

    for task, data in (("conll2003", SHARED_DATA / "conll2003"), ("xquad", SHARED_DATA / "xquad"),
                       ("c3", SHARED_DATA / "c3")):
        err = _finetune_error(capsys, tmp_path, ["--augment", "generator", "--augment-generator", str(tiny_run)],
                              task=task, data=data)
        assert f"--augment generator: {task} is a" in err and "classification and regression tasks only" in err


def _finetune_error(capsys, tmp_path, extra: list[str], vocab: Path = VOCAB_UNCASED, task: str = "sst2",
                    data: Path = GLUE / "SST-2") -> str:
    argv = ["finetune", "--task", task, "--data", str(data), "--init", "random", "--preset", "tiny",
            "--vocab", str(vocab), "--output", str(tmp_path / "out"), *extra]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()
    return err


def test_finetune_with_augmentation_end_to_end(tmp_path, tiny_run):
    output = tmp_path / "sst2"
    rc = main([
        "finetune", "--task", "sst2", "--data", str(GLUE / "SST-2"), "--init", str(tiny_run / "discriminator"),
        "--train-examples", "4", "--max-eval-examples", "16", "--epochs", "1", "--batch-size", "8",
        "--seq-length", "32", "--augment", "generator", "--augment-generator", str(tiny_run),
        "--augment-copies", "2", "--augment-rate", "0.2", "--seed", "5", "--output", str(output), "--quiet",
    ])
    assert rc == 0
    results = json.loads((output / "results.json").read_text())
    assert results["num_examples"] == {"train": 24, "dev": 16}
    info = results["augmentation"]
    assert {k: info[k] for k in ("method", "copies", "rate", "seed", "original_examples",
                                 "augmented_examples", "copies_made")} == {
        "method": "generator", "copies": 2, "rate": 0.2, "seed": 5, "original_examples": 8,
        "augmented_examples": 24, "copies_made": 16}
    assert results["config"]["augment"] == "generator" and results["config"]["augment_copies"] == 2
    assert results["runs"][0]["steps_per_epoch"] == 3  # 24 examples in batches of 8: the copies were trained on


def test_load_generator_reads_pretrain_and_convert_outputs(tmp_path, tiny_run):
    """The one generator loader takes a pretrain output (discriminator/ + generator/) and a
    `convert --part generator` output (generator/ alone) by their directory, and says when there is none."""
    import shutil

    from keras_electra.convert import load_generator
    from keras_electra.errors import CheckpointError
    from keras_electra.models.generator import ElectraGenerator

    converted = tmp_path / "converted"
    shutil.copytree(tiny_run / "generator", converted / "generator")
    for source in (tiny_run, converted, converted / "generator"):
        assert isinstance(load_generator(source), ElectraGenerator)
    with pytest.raises(CheckpointError, match="holds no generator"):
        load_generator(tiny_run / "discriminator")
