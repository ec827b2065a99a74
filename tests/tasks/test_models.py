"""Task models: `.keras` round trips, checkpoint names, heads, layer-wise LR, PEFT, from_pretrained."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from keras_electra.data.readers import read_dataset
from keras_electra.errors import CheckpointError, ElectraError
from keras_electra.optimization import layerwise_lr_multipliers
from keras_electra.tasks.base import MODEL_KEYS, ElectraTask
from keras_electra.tasks.classifier import ElectraClassifier
from keras_electra.tasks.multiple_choice import MISSING_CHOICE_LOGIT, ElectraMultipleChoice
from keras_electra.tasks.peft import apply_peft, merge_lora
from keras_electra.tasks.question_answerer import ElectraQuestionAnswerer
from keras_electra.tasks.relation_classifier import ElectraRelationClassifier, marked_texts
from keras_electra.tasks.token_classifier import ElectraTokenClassifier
from tests.conftest import SHARED_DATA
from tests.tasks.conftest import GLUE, tiny_backbone

pytestmark = pytest.mark.backend_sensitive  # also run under KERAS_BACKEND=jax in CI (tests/conftest.py)


def _sentences(n: int = 4) -> list[str]:
    return [e.text_a for e in read_dataset("sst2", GLUE, "dev")[:n]]


def _build(kind: str, tokenizer, head: str = "electra"):
    """A task model of each kind and a real input batch for it."""
    backbone = tiny_backbone(tokenizer.vocabulary_size)
    if kind == "classifier":
        model = ElectraClassifier.from_backbone(backbone, tokenizer, 32, num_classes=3, head=head)
        return model, model.preprocessor(tf.constant(_sentences()))
    if kind == "regressor":
        model = ElectraClassifier.from_backbone(backbone, tokenizer, 32, num_classes=1, head=head)
        pairs = read_dataset("stsb", GLUE, "dev")[:4]
        texts = (tf.constant([e.text_a for e in pairs]), tf.constant([e.text_b for e in pairs]))
        return model, model.preprocessor(texts)
    if kind == "token":
        model = ElectraTokenClassifier.from_backbone(backbone, tokenizer, 32, num_classes=9)
        return model, model.preprocessor(tf.constant(_sentences()))
    if kind == "qa":
        model = ElectraQuestionAnswerer.from_backbone(backbone, tokenizer, 64, head=head,
                                                      preprocessor_kwargs={"max_query_length": 16})
        ex = read_dataset("xquad", SHARED_DATA, "test")[:2]
        x, _ = model.preprocessor((tf.constant([e.question for e in ex]), tf.constant([e.context for e in ex])),
                                  (tf.constant([0, 0]), tf.constant([1, 1])))
        return model, x
    if kind == "choice":
        model = ElectraMultipleChoice.from_backbone(backbone, tokenizer, 48, num_choices=4, head=head)
        s = _sentences(3)
        return model, model.preprocessor((tf.constant(s[:2]), tf.constant(s[1:3]),
                                          tf.constant([[s[0], s[1], s[2], ""], [s[2], s[1], "", ""]])))
    if kind == "relation":
        model = ElectraRelationClassifier.from_backbone(backbone, tokenizer, 48, num_classes=19,
                                                        pooling="cls" if head == "huggingface" else "entity_start",
                                                        head=head)
        return model, model.preprocessor(tf.constant(marked_texts(read_dataset("semeval", SHARED_DATA, "train")[:4])))
    raise ValueError(kind)


CASES = [("classifier", "electra"), ("classifier", "huggingface"), ("regressor", "electra"), ("token", "electra"),
         ("qa", "electra"), ("qa", "huggingface"), ("choice", "electra"), ("choice", "huggingface"),
         ("relation", "electra"), ("relation", "huggingface")]


@pytest.mark.parametrize("kind,head", CASES)
def test_keras_save_and_load_gives_identical_outputs(kind, head, en_tokenizer, tmp_path):
    model, x = _build(kind, en_tokenizer, head)
    before = np.asarray(model(x))
    assert before.dtype == np.float32
    model.save(tmp_path / "model.keras")
    loaded = keras.saving.load_model(tmp_path / "model.keras")
    assert type(loaded) is type(model)
    np.testing.assert_array_equal(np.asarray(loaded(x)), before)
    # The preprocessor travels with the model and still produces the same inputs.
    assert loaded.preprocessor.get_config() == model.preprocessor.get_config()
    if kind != "qa":
        assert len(model.canonical_weights()) == len(model.trainable_variables)


HEAD_NAMES = {
    ("classifier", "electra"): {"classifier/kernel": (128, 3), "classifier/bias": (3,)},
    ("classifier", "huggingface"): {"classifier/dense/kernel": (128, 128), "classifier/dense/bias": (128,),
                                    "classifier/out_proj/kernel": (128, 3), "classifier/out_proj/bias": (3,)},
    ("token", "electra"): {"classifier/kernel": (128, 9), "classifier/bias": (9,)},
    ("qa", "huggingface"): {"qa_outputs/kernel": (128, 2), "qa_outputs/bias": (2,)},
    ("qa", "electra"): {"qa/start_logits/kernel": (128, 1), "qa/start_logits/bias": (1,),
                        "qa/end_hidden/kernel": (256, 512), "qa/end_hidden/bias": (512,),
                        "qa/end_logits/kernel": (512, 1), "qa/end_logits/bias": (1,),
                        "qa/answerable_hidden/kernel": (256, 512), "qa/answerable_hidden/bias": (512,),
                        "qa/answerable_logits/kernel": (512, 1), "qa/answerable_logits/bias": (1,)},
    ("choice", "electra"): {"classifier/kernel": (128, 1), "classifier/bias": (1,)},
    ("choice", "huggingface"): {"sequence_summary/summary/kernel": (128, 128), "sequence_summary/summary/bias": (128,),
                                "classifier/kernel": (128, 1), "classifier/bias": (1,)},
    ("relation", "electra"): {"classifier/kernel": (256, 19), "classifier/bias": (19,)},
}


@pytest.mark.parametrize("kind,head", list(HEAD_NAMES))
def test_canonical_weight_names_for_the_converters(kind, head, en_tokenizer):
    model, _ = _build(kind, en_tokenizer, head)
    names = model.canonical_weights()
    heads = {k: tuple(v.shape) for k, v in names.items() if not k.startswith("electra/")}
    assert heads == HEAD_NAMES[(kind, head)]
    backbone = {k for k in names if k.startswith("electra/")}
    assert backbone == {f"electra/{k}" for k in model.backbone.canonical_weights()}
    assert "electra/encoder/layer_0/attention/self/query/kernel" in backbone


def test_layerwise_lr_multipliers_on_a_task_model(en_tokenizer):
    backbone = tiny_backbone(en_tokenizer.vocabulary_size, num_layers=3)
    model = ElectraClassifier.from_backbone(backbone, en_tokenizer, 32, num_classes=2)
    paths = {name: var.path for name, var in model.canonical_weights().items()}
    for legacy, extra in ((False, 0), (True, 1)):
        lr = layerwise_lr_multipliers(model.trainable_variables, 3, 0.8, legacy_off_by_one=legacy)
        assert lr[paths["classifier/kernel"]] == 1.0  # official too: task_specific/ keeps the full LR
        assert lr[paths["electra/encoder/layer_2/output/dense/kernel"]] == pytest.approx(0.8 ** (1 + extra))
        assert lr[paths["electra/encoder/layer_0/attention/self/query/bias"]] == pytest.approx(0.8 ** (3 + extra))
        assert lr[paths["electra/embeddings/word_embeddings"]] == pytest.approx(0.8 ** (4 + extra))
        assert lr[paths["electra/embeddings_project/kernel"]] == pytest.approx(0.8 ** (4 + extra))


def test_missing_choices_are_never_chosen(en_tokenizer):
    model, x = _build("choice", en_tokenizer)
    logits = np.asarray(model(x))
    assert logits.shape == (2, 4)
    assert (logits[0, 3] == MISSING_CHOICE_LOGIT) and (logits[1, 2:] == MISSING_CHOICE_LOGIT).all()
    assert (logits[0, :3] > -100).all()


def test_entity_start_pooling_reads_the_marker_states(en_tokenizer):
    model, x = _build("relation", en_tokenizer)
    hidden = np.asarray(model.backbone({k: x[k] for k in MODEL_KEYS}))
    ids = x["token_ids"].numpy()
    e1, e2 = model.entity_marker_ids
    rows = np.arange(len(ids))
    pooled = np.concatenate([hidden[rows, (ids == e1).argmax(1)], hidden[rows, (ids == e2).argmax(1)]], axis=-1)
    kernel, bias = (np.asarray(v) for v in (model.classifier.kernel, model.classifier.bias))
    np.testing.assert_allclose(np.asarray(model(x)), pooled @ kernel + bias, atol=1e-5)


def test_lora_trains_only_factors_and_head_and_merges_exactly(en_tokenizer):
    model, x = _build("classifier", en_tokenizer)
    apply_peft(model, "lora", lora_rank=4)
    trainable = {v.path for v in model.trainable_variables}
    assert trainable == {"classifier/kernel", "classifier/bias",
                         "layer_0/attention/query/lora_kernel_a", "layer_0/attention/query/lora_kernel_b",
                         "layer_0/attention/value/lora_kernel_a", "layer_0/attention/value/lora_kernel_b"}
    # Give the factors non-zero values (B starts at zero), then merge into plain kernels.
    for v in model.trainable_variables:
        v.assign(np.random.default_rng(0).normal(0, 0.05, v.shape).astype("float32"))
    merged = merge_lora(model)
    assert not any("lora" in v.path for v in merged.weights)
    np.testing.assert_allclose(np.asarray(merged(x)), np.asarray(model(x)), atol=1e-5)


def test_bitfit_and_frozen_layers(en_tokenizer):
    model, _ = _build("classifier", en_tokenizer)
    apply_peft(model, "bitfit")
    names = {v.path.rsplit("/", 1)[-1] for v in model.trainable_variables}
    assert names == {"bias", "beta", "kernel"}  # kernel: the head only
    assert [v.path for v in model.trainable_variables if v.path.endswith("kernel")] == ["classifier/kernel"]
    model, _ = _build("token", en_tokenizer)
    apply_peft(model, "none", freeze_layers=1)
    assert all(v.path.startswith("classifier/") for v in model.trainable_variables)
    with pytest.raises(ElectraError, match="freeze-layers 2"):
        apply_peft(model, "none", freeze_layers=2)


def test_adapters_start_as_identity_train_alone_and_save(en_tokenizer, tmp_path):
    model, x = _build("classifier", en_tokenizer)
    before = np.asarray(model(x))
    apply_peft(model, "adapter", adapter_size=8)
    np.testing.assert_allclose(np.asarray(model(x)), before, atol=1e-6)  # up-projection starts at zero
    trainable = {v.path for v in model.trainable_variables}
    assert {"layer_0/attention_adapter/down/kernel", "layer_0/output_adapter/up/kernel",
            "classifier/kernel"} <= trainable
    assert all("adapter" in p or p.startswith("classifier/") or p.rsplit("/", 1)[-1] in ("gamma", "beta")
               for p in trainable)
    for v in model.trainable_variables:
        if "adapter/up" in v.path:
            v.assign(np.random.default_rng(1).normal(0, 0.05, v.shape).astype("float32"))
    changed = np.asarray(model(x))
    assert np.abs(changed - before).max() > 1e-4
    model.save(tmp_path / "adapted.keras")
    restored = keras.saving.load_model(tmp_path / "adapted.keras")
    assert restored.backbone.adapter_size == 8
    np.testing.assert_allclose(np.asarray(restored(x)), changed, atol=1e-6)


def _write_pretraining_dir(directory, tokenizer):
    """The layout `keras-electra pretrain` writes: discriminator/ with model.keras, config.json and tokenizer files."""
    from keras_electra.config import ElectraConfig
    from keras_electra.models.discriminator import ElectraDiscriminator

    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=1)
    discriminator = ElectraDiscriminator.from_electra_config(config)
    part = directory / "discriminator"
    part.mkdir(parents=True)
    discriminator.save(part / "model.keras")
    config.to_json(part / "config.json")
    tokenizer.save_to_directory(part)
    return discriminator


def test_from_pretrained_takes_the_saved_discriminator_backbone(en_tokenizer, tmp_path):
    discriminator = _write_pretraining_dir(tmp_path / "pretrained", en_tokenizer)
    model = ElectraTokenClassifier.from_pretrained(tmp_path / "pretrained", seq_length=32, num_classes=5)
    assert isinstance(model, ElectraTask) and model.preprocessor.seq_length == 32
    assert model.preprocessor.tokenizer.vocabulary == en_tokenizer.vocabulary
    theirs = discriminator.backbone.canonical_weights()
    for name, variable in model.backbone.canonical_weights().items():
        np.testing.assert_array_equal(np.asarray(variable), np.asarray(theirs[name]))
    x = model.preprocessor(tf.constant(_sentences(2)))
    np.testing.assert_allclose(np.asarray(model.backbone(x)), np.asarray(discriminator.backbone(x)), atol=1e-6)
    with pytest.raises(CheckpointError, match="not a recognised checkpoint"):
        ElectraClassifier.from_pretrained(tmp_path, num_classes=2)
