"""Zero-shot and few-shot classification through the RTD head (keras_electra.tasks.prompting)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.conftest import VOCAB_UNCASED
from tests.tasks.conftest import GLUE

SST2 = GLUE / "SST-2"
MRPC = GLUE / "MRPC"


@pytest.fixture(scope="module")
def discriminator_dir(tmp_path_factory):
    """A one-layer tiny discriminator with its RTD head, saved as `pretrain` saves one."""
    import keras

    from keras_electra.config import ElectraConfig
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.models.discriminator import ElectraDiscriminator

    keras.utils.set_random_seed(0)
    tokenizer = ElectraTokenizer(VOCAB_UNCASED, lower_case=True)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=1)
    model = ElectraDiscriminator.from_electra_config(config, name="discriminator")
    root = tmp_path_factory.mktemp("disc")
    part = root / "discriminator"
    part.mkdir()
    model.save(part / "model.keras")
    config.to_json(part / "config.json")
    tokenizer.save_to_directory(part)
    tokenizer.save_to_directory(root)
    return root


def cli(*argv: str) -> int:
    from keras_electra.cli import main

    return main(list(argv))


# ----------------------------------------------------------------- templates
@pytest.mark.parametrize("template, message", [
    ("{text} It was good.", "must contain {label} exactly once"),
    ("{text} {label} or {label}", "must contain {label} exactly once"),
    ("{review} It was {label}.", "unknown placeholder {review}"),
    ("It was {label}.", "has no text placeholder"),
    ("{text:>5} {label}", "takes no format spec"),
])
def test_bad_templates_are_one_line(template, message):
    from keras_electra.errors import DataError
    from keras_electra.tasks.prompting import parse_template

    with pytest.raises(DataError, match=message.replace("{", r"\{").replace("}", r"\}")):
        parse_template(template)


def test_label_words_follow_the_task_labels():
    from keras_electra.errors import DataError
    from keras_electra.tasks.prompting import parse_label_words

    assert parse_label_words(["great=1", "terrible=0"], ["0", "1"]) == (["terrible", "great"], ["0", "1"])
    with pytest.raises(DataError, match="unknown label 'positive'"):
        parse_label_words(["good=positive", "bad=negative"], ["0", "1"])
    with pytest.raises(DataError, match="no word for label '1'"):
        parse_label_words(["bad=0"], ["0", "1"])
    with pytest.raises(DataError, match="write WORD=LABEL"):
        parse_label_words(["great"], ["0", "1"])


def test_preprocessor_marks_the_label_word_and_always_keeps_it(en_tokenizer):
    import tensorflow as tf

    from keras_electra.tasks.prompting import PromptPreprocessor

    pre = PromptPreprocessor(en_tokenizer, "{text_a} ? {label} , {text_b}", ["yes", "no way"], seq_length=16)
    long = "a very long first sentence that goes on and on and on"
    out = pre((tf.constant([long, "hi"]), tf.constant(["second one here", "there"])))
    assert {k: tuple(v.shape) for k, v in out.items()} == {k: (2, 2, 16) for k in out}
    ids, mask = out["token_ids"].numpy(), out["label_mask"].numpy()
    vocab = en_tokenizer.vocabulary
    for row in range(2):
        for c, word in enumerate(["yes", "no way"]):
            marked = [vocab[i] for i in ids[row, c][mask[row, c] == 1]]
            assert marked == word.split()
    # The short pair, filled exactly: [CLS] hi ? no way , there [SEP]
    assert [vocab[i] for i in ids[1, 1][out["padding_mask"].numpy()[1, 1] == 1]] == \
        ["[CLS]", "hi", "?", "no", "way", ",", "there", "[SEP]"]
    # The long pair is cut (the longer text first) to fit, [SEP] last, the label word kept.
    assert out["padding_mask"].numpy()[0].sum(-1).tolist() == [15, 16]
    assert vocab[ids[0, 1, 15]] == "[SEP]"


def test_template_too_long_for_seq_length(en_tokenizer):
    from keras_electra.errors import DataError
    from keras_electra.tasks.prompting import PromptPreprocessor

    with pytest.raises(DataError, match="raise --seq-length"):
        PromptPreprocessor(en_tokenizer, "{text} this review says that it was {label} .", ["good", "bad"],
                           seq_length=8)


# ---------------------------------------------------------------------- model
def test_scores_are_the_discriminators_original_probability_at_the_label_word(discriminator_dir):
    """The prompt model's score = mean over the label word's tokens of 1 - sigmoid(RTD logit), from the
    discriminator run on each filled text on its own."""
    import tensorflow as tf

    from keras_electra.convert.api import load_discriminator
    from keras_electra.tasks.prompting import build_prompt_model

    model, tokenizer = build_prompt_model(discriminator_dir, "{text} It was {label}.",
                                          ["wonderful=1", "bad=0"], ["0", "1"], 32)
    texts = ["a gripping , funny film", "nothing works here"]
    scores = np.asarray(model.predict(texts, verbose=0))
    discriminator = load_discriminator(discriminator_dir)
    for i, text in enumerate(texts):
        for c, word in enumerate(["bad", "wonderful"]):  # label order 0, 1
            filled = tf.constant([f"{text} It was {word}."])
            from keras_electra.tasks.preprocessors import ElectraTextClassifierPreprocessor

            x = ElectraTextClassifierPreprocessor(tokenizer, seq_length=32)(filled)
            logits = np.asarray(discriminator({k: x[k] for k in ("token_ids", "segment_ids", "padding_mask")}))[0]
            ids = x["token_ids"].numpy()[0].tolist()
            word_ids = tokenizer.tokenize(tf.constant([word])).to_list()[0]
            start = next(j for j in range(len(ids)) if ids[j:j + len(word_ids)] == word_ids)
            expected = np.mean(1 - 1 / (1 + np.exp(-logits[start:start + len(word_ids)])))
            np.testing.assert_allclose(scores[i, c], expected, rtol=1e-5, atol=1e-6)


def test_a_model_without_an_rtd_head_is_refused_in_one_line(minilm_dir, capsys):
    assert cli("zero-shot", "--model", str(minilm_dir), "--template", "{text} It was {label}.",
               "--labels", "great=1", "terrible=0", "--data", str(SST2), "--max-examples", "4") == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert "has no replaced-token-detection head" in err and "MiniLM" in err


def test_zero_shot_cli_errors_are_one_line(discriminator_dir, tmp_path, capsys):
    base = ["zero-shot", "--model", str(discriminator_dir), "--data", str(SST2), "--max-examples", "4"]
    cases = [
        (["--template", "{text} It was good.", "--labels", "great=1", "terrible=0"], "{label}"),
        (["--template", "{sentence} {label} {review}", "--labels", "great=1", "terrible=0"], "{review}"),
        (["--template", "{text} It was {label}.", "--labels", "great=positive", "terrible=negative"],
         "unknown label 'positive'"),
        (["--template", "{text_a} ? {label} , {text_b}", "--labels", "great=1", "terrible=0"], "uses {text_b}"),
    ]
    for extra, message in cases:
        assert cli(*base, *extra) == 2
        err = capsys.readouterr().err.strip()
        assert len(err.splitlines()) == 1 and message in err, err


def test_zero_shot_scores_mrpc_pairs_and_saves_a_model_for_predict(discriminator_dir, tmp_path, capsys):
    out = tmp_path / "zs"
    assert cli("zero-shot", "--model", str(discriminator_dir), "--template", "{text_a} ? {label} , {text_b}",
               "--labels", "Yes=1", "No=0", "--data", str(MRPC), "--max-examples", "24", "--seq-length", "64",
               "--output", str(out), "--json") == 0
    result = json.loads(capsys.readouterr().out)
    assert result["task"] == "mrpc" and result["num_examples"] == 24
    assert 0.0 <= result["scores"]["accuracy"] <= 1.0
    assert sum(result["predicted_label_counts"].values()) == 24
    # The saved prompt model predicts typed pairs and evaluates with the same scoring.
    assert cli("predict", "--model", str(out), "--json", "The cat sat. ||| A cat was sitting.") == 0
    (pred,) = json.loads(capsys.readouterr().out)
    assert pred["label"] in ("0", "1") and set(pred["original_probability"]) == {"No", "Yes"}
    assert cli("evaluate", "--model", str(out), "--data", str(MRPC), "--max-examples", "24", "--json") == 0
    scores = json.loads(capsys.readouterr().out)["scores"]
    assert scores["accuracy"] == pytest.approx(result["scores"]["accuracy"])
    assert cli("predict", "--model", str(out), "only one sentence") == 2
    assert "sentence pairs" in capsys.readouterr().err
    # Export refuses in one line that names the reason (the template is filled in Python).
    assert cli("export", "--model", str(out), "--format", "saved_model", "--output", str(tmp_path / "sm")) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "prompt classifier" in err, err
    assert not (tmp_path / "sm").exists()


@pytest.mark.slow
def test_few_shot_prompt_finetune_trains_saves_and_reloads_identically(discriminator_dir, tmp_path, capsys):
    """`finetune --prompt --train-examples K`: K per class, the RTD head and encoder train (the loss falls
    on the training set), the saved model reloads with identical scores and predicts typed text."""
    import tensorflow as tf

    from keras_electra.tasks.outputs import load_finetuned

    out = tmp_path / "ft"
    assert cli("finetune", "--task", "sst2", "--data", str(SST2), "--init", str(discriminator_dir),
               "--prompt", "{text} It was {label}.", "--labels", "great=1", "terrible=0", "--train-examples", "8",
               "--batch-size", "8", "--epochs", "4", "--learning-rate", "1e-3", "--seq-length", "48",
               "--max-eval-examples", "16", "--output", str(out), "--quiet") == 0
    results = json.loads((out / "results.json").read_text())
    assert results["num_examples"]["train"] == 16
    losses = results["runs"][0]["train_history"]["loss"]
    assert losses[-1] < losses[0]
    info = json.loads((out / "task.json").read_text())
    assert info["kind"] == "prompt" and info["task_class"] == "PromptClassifier"
    model, _ = load_finetuned(out)
    texts = tf.constant(["a gripping , funny film", "nothing works here"])
    again, _ = load_finetuned(out)
    np.testing.assert_array_equal(model.predict(texts, verbose=0), again.predict(texts, verbose=0))
    capsys.readouterr()
    assert cli("predict", "--model", str(out), "--json", "a gripping , funny film") == 0
    (pred,) = json.loads(capsys.readouterr().out)
    scores = np.asarray(model.predict(texts[:1], verbose=0))[0]
    assert pred["original_probability"]["terrible"] == pytest.approx(float(scores[0]), rel=1e-5)
    assert pred["label"] == ("1" if scores[1] > scores[0] else "0")


def test_prompt_finetune_refuses_what_it_cannot_do(discriminator_dir, tmp_path, capsys):
    base = ["finetune", "--data", str(SST2), "--init", str(discriminator_dir), "--output", str(tmp_path / "x"),
            "--prompt", "{text} It was {label}.", "--labels", "great=1", "terrible=0"]
    assert cli(*base, "--task", "sst2", "--peft", "lora") == 2
    assert "--peft" in capsys.readouterr().err
    assert cli(*base, "--task", "stsb") == 2
    assert "regression task" in capsys.readouterr().err
