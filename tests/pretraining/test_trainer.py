"""`keras-electra pretrain`: resuming after a kill, the LR schedule, final outputs, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import keras
import pytest
import tensorflow as tf

from keras_electra.cli import main
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.pretraining.trainer import PretrainingOptions, build_pretrainer
from tests.conftest import NOVELS, VOCAB_UNCASED

CORPUS = str(NOVELS / "Burnett_Lord_1886.txt")
STEPS, EVERY, KILL_AT = 12, 4, 10


def pretrain_args(output: Path) -> list[str]:
    return [
        "pretrain", "--preset", "tiny", "--corpus", CORPUS, "--vocab", str(VOCAB_UNCASED), "--steps", str(STEPS),
        "--batch-size", "4", "--seq-length", "32", "--warmup-steps", "4", "--checkpoint-every", str(EVERY),
        "--eval-batches", "1", "--output", str(output),
    ]


def _checkpoint_values(path: str) -> dict:
    reader = tf.train.load_checkpoint(path)
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()
            if "/.ATTRIBUTES/VARIABLE_VALUE" in name and "save_counter" not in name}


def test_killed_run_resumes_with_step_and_schedule(tmp_path, capsys):
    """Killed from inside at a known step (10, between the checkpoints of steps 8 and 12), then resumed:
    the run continues from step 8 and ends at exactly step 12. Up to the kill it is the same run as an
    uninterrupted one (its checkpoint is bit-identical); after it, by design, the data stream restarts with
    a seed derived from the step, so the final weights differ from an uninterrupted run's."""
    from tests.killer import kill_run

    output = tmp_path / "run"
    kill_run("step", str(KILL_AT), pretrain_args(output), timeout=900)
    killed_at = tf.train.latest_checkpoint(output / "checkpoints")
    assert killed_at == str(output / "checkpoints" / "ckpt-8")
    assert not (output / "discriminator").exists() and not (output / "metrics.json").exists()

    assert main(pretrain_args(tmp_path / "uninterrupted")) == 0
    capsys.readouterr()
    same = _checkpoint_values(str(tmp_path / "uninterrupted" / "checkpoints" / "ckpt-8"))
    killed = _checkpoint_values(killed_at)
    assert same.keys() == killed.keys() and len(same) > 20
    for name, value in same.items():
        assert (value == killed[name]).all(), name

    assert main(pretrain_args(output)) == 0
    assert "Resuming from step 8 " in capsys.readouterr().out
    metrics = json.loads((output / "metrics.json").read_text())
    assert (metrics["steps"], metrics["trained_steps_this_run"]) == (STEPS, STEPS - 8)
    assert [point["step"] for point in metrics["heldout_curve"]] == [0, STEPS]

    # The restored optimizer continues the schedule: its LR is the schedule's value at that step.
    options = PretrainingOptions(**json.loads((output / "run_config.json").read_text())).resolved()
    tokenizer = ElectraTokenizer.from_directory(output)
    pretrainer = build_pretrainer(options, tokenizer)
    from keras_electra.optimization import WarmupLinearDecay, create_optimizer

    optimizer = create_optimizer(options.learning_rate, options.steps, options.warmup_steps)
    optimizer.build(pretrainer.trainable_variables)
    checkpoint = tf.train.Checkpoint(model=pretrainer, optimizer=optimizer)
    checkpoint.restore(tf.train.latest_checkpoint(output / "checkpoints")).assert_existing_objects_matched()
    assert int(optimizer.iterations.numpy()) == STEPS
    assert float(optimizer.learning_rate.numpy()) == pytest.approx(0.0, abs=1e-9)  # linear decay reached 0
    schedule = WarmupLinearDecay(options.learning_rate, options.steps, options.warmup_steps)
    assert float(schedule(8)) == pytest.approx(options.learning_rate * (1 - 8 / STEPS), rel=1e-5)
    # The resumed run trained: its final weights moved away from the step-8 checkpoint.
    resumed = _checkpoint_values(str(output / "checkpoints" / f"ckpt-{STEPS}"))
    assert sum(not (resumed[name] == killed[name]).all() for name in killed) > 20

    # Final models load and still share nothing with the checkpoint machinery.
    discriminator = keras.saving.load_model(output / "discriminator" / "model.keras")
    assert discriminator.backbone.num_layers == 2
    assert (output / "generator" / "vocab.txt").is_file()
    assert (output / "logs").is_dir()


def _run_cli(args, capsys):
    code = main(args)
    err = capsys.readouterr().err.strip()
    return code, err


def test_bad_input_gives_one_line_errors(tmp_path, capsys):
    base = ["pretrain", "--preset", "tiny", "--vocab", str(VOCAB_UNCASED), "--steps", "2", "--batch-size", "2",
            "--output", str(tmp_path / "out")]

    code, err = _run_cli([*base, "--corpus", str(tmp_path / "missing.txt")], capsys)
    assert code == 2 and "missing.txt" in err and len(err.splitlines()) == 1

    empty = tmp_path / "empty.txt"
    empty.write_text("\n \n")
    code, err = _run_cli([*base, "--corpus", str(empty)], capsys)
    assert code == 2 and "empty" in err.lower() and len(err.splitlines()) == 1

    code, err = _run_cli([*base, "--corpus", CORPUS, "--seq-length", "4"], capsys)
    assert code == 2 and "seq-length" in err and len(err.splitlines()) == 1

    vocab = [t for t in VOCAB_UNCASED.read_text().splitlines() if t != "[MASK]"]
    bad_vocab = tmp_path / "vocab.txt"
    bad_vocab.write_text("\n".join(vocab) + "\n")
    args = [a if a != str(VOCAB_UNCASED) else str(bad_vocab) for a in base]
    code, err = _run_cli([*args, "--corpus", CORPUS, "--output", str(tmp_path / "out2")], capsys)
    assert code == 2 and "[MASK]" in err and len(err.splitlines()) == 1


def test_deviation_options_reach_the_run_and_metrics_json(tmp_path, capsys):
    """The official choices by default; each deviation flag reaches the optimiser, the masking and the model,
    and metrics.json records what was used."""
    base = ["pretrain", "--preset", "tiny", "--vocab", str(VOCAB_UNCASED), "--corpus", CORPUS, "--steps", "2",
            "--batch-size", "4", "--seq-length", "32", "--eval-batches", "1", "--config", "num_layers=1"]
    assert main([*base, "--output", str(tmp_path / "official")]) == 0
    metrics = json.loads((tmp_path / "official" / "metrics.json").read_text())
    assert (metrics["adam_bias_correction"], metrics["mask_sampling"], metrics["default_initializer"]) == (
        False, "without_replacement", "glorot_uniform")
    assert main([*base, "--output", str(tmp_path / "ours"), "--adam-bias-correction", "--mask-sampling",
                 "with_replacement", "--default-initializer", "truncated_normal"]) == 0
    metrics = json.loads((tmp_path / "ours" / "metrics.json").read_text())
    assert (metrics["adam_bias_correction"], metrics["mask_sampling"], metrics["default_initializer"]) == (
        True, "with_replacement", "truncated_normal")
    run = json.loads((tmp_path / "ours" / "run_config.json").read_text())
    assert run["adam_bias_correction"] is True and run["mask_sampling"] == "with_replacement"
    options = PretrainingOptions(**{**run, "sources": [CORPUS]}).resolved()
    pretrainer = build_pretrainer(options, ElectraTokenizer(VOCAB_UNCASED))
    assert pretrainer.mask_sampling == "with_replacement"
    assert pretrainer.discriminator.rtd_head.output_initializer == "truncated_normal"
    capsys.readouterr()


def test_config_overrides_change_the_network(tmp_path, capsys):
    """`--config KEY=VALUE` changes one ElectraConfig field of the preset; bad keys stop in one line."""
    from keras_electra.config import parse_overrides

    overrides = parse_overrides(["num_layers=3", "hidden_act=relu", "layer_norm_eps=1e-6"])
    assert overrides == {"num_layers": 3, "hidden_act": "relu", "layer_norm_eps": 1e-6}
    options = PretrainingOptions(preset="tiny", sources=[CORPUS], vocab=str(VOCAB_UNCASED), steps=2,
                                 model_overrides=overrides).resolved()
    pretrainer = build_pretrainer(options, ElectraTokenizer(VOCAB_UNCASED))
    config = pretrainer.config
    assert (config.num_layers, config.hidden_act, config.layer_norm_eps) == (3, "relu", 1e-6)
    assert config.hidden_size == 128  # the rest is the preset's
    assert pretrainer.discriminator.backbone.num_layers == 3 and pretrainer.generator.backbone.num_layers == 3

    base = ["pretrain", "--preset", "tiny", "--vocab", str(VOCAB_UNCASED), "--corpus", CORPUS, "--steps", "2",
            "--output", str(tmp_path / "out")]
    code, err = _run_cli([*base, "--config", "num_layerz=3"], capsys)
    assert code == 2 and "num_layerz" in err and len(err.splitlines()) == 1
    code, err = _run_cli([*base, "--config", "num_layers"], capsys)
    assert code == 2 and "KEY=VALUE" in err and len(err.splitlines()) == 1
    assert not (tmp_path / "out" / "discriminator").exists()


def test_two_stage_training_freezes_the_masked_lm_and_starts_the_discriminator_from_it(tmp_path, capsys):
    """Paper section 3.2: stage 1 trains a discriminator-sized masked LM; stage 2 starts the
    discriminator from it and trains only the discriminator against it, frozen."""
    from keras_electra.pretraining.trainer import init_two_stage, run_pretraining
    from keras_electra.saving import load_model

    small = dict(preset="tiny", sources=[CORPUS], vocab=str(VOCAB_UNCASED), steps=3, batch_size=4, seq_length=32,
                 warmup_steps=1, eval_batches=1, model_overrides={"num_layers": 1})
    run_pretraining(PretrainingOptions(objective="mlm", **small), tmp_path / "mlm", verbose=0)
    masked_lm = load_model(tmp_path / "mlm" / "generator")
    lm_weights = {k: v.numpy() for k, v in masked_lm.canonical_weights().items()}
    lm_backbone = {k: v.numpy() for k, v in masked_lm.backbone.canonical_weights().items()}

    stage2 = {**small, "model_overrides": {}, "vocab": None, "steps": 4}
    options = PretrainingOptions(two_stage_from=str(tmp_path / "mlm"), **stage2).resolved()
    pretrainer = build_pretrainer(options, ElectraTokenizer(VOCAB_UNCASED))
    init_two_stage(pretrainer, options.two_stage_from)
    assert pretrainer.config.generator_config().hidden_size == pretrainer.config.hidden_size == 128
    assert pretrainer.generator.trainable_variables == []
    for name, value in pretrainer.discriminator.backbone.canonical_weights().items():
        assert (value.numpy() == lm_backbone[name]).all(), name

    result = run_pretraining(options, tmp_path / "stage2", verbose=0)
    assert result["steps"] == 4
    generator = load_model(tmp_path / "stage2" / "generator")
    for name, value in generator.canonical_weights().items():
        assert (value.numpy() == lm_weights[name]).all(), f"the frozen generator changed: {name}"
    discriminator = load_model(tmp_path / "stage2" / "discriminator")
    moved = [name for name, value in discriminator.backbone.canonical_weights().items()
             if not (value.numpy() == lm_backbone[name]).all()]
    assert len(moved) > 10  # the discriminator trained

    base = ["pretrain", "--corpus", CORPUS, "--steps", "2", "--output", str(tmp_path / "bad")]
    electra_run = tmp_path / "electra"
    run_pretraining(PretrainingOptions(**{**small, "steps": 1}), electra_run, verbose=0)
    code, err = _run_cli([*base, "--two-stage-from", str(electra_run)], capsys)
    assert code == 2 and "masked LM of the discriminator's size" in err and len(err.splitlines()) == 1
    code, err = _run_cli([*base, "--two-stage-from", str(tmp_path / "mlm"), "--config", "num_layers=2"], capsys)
    assert code == 2 and "--two-stage-from" in err and len(err.splitlines()) == 1
    code, err = _run_cli([*base, "--two-stage-from", str(tmp_path / "nothing")], capsys)
    assert code == 2 and "no masked LM" in err and len(err.splitlines()) == 1
