"""Hugging Face checkpoints ↔ keras-electra, against transformers (CPU torch) as the reference.

Every comparison is float32, max |difference| over non-padding positions ≤ 1e-5
(see `fixtures.max_diff_at_tokens` for why padded positions are excluded).
"""

from __future__ import annotations

import json

import keras
import numpy as np
import pytest
import torch
import transformers
from safetensors.numpy import load_file, save_file

from keras_electra.config import ElectraConfig
from keras_electra.convert import (
    from_pretrained,
    load_into,
    load_pretraining_pair,
    load_task,
    read_checkpoint,
    save_huggingface,
    tokenizer_from_checkpoint,
)
from keras_electra.convert.huggingface import canonical_to_hf, hf_to_canonical
from keras_electra.data.tokenizer import ElectraTokenizer
from keras_electra.errors import CheckpointError
from keras_electra.models.discriminator import ElectraDiscriminator
from keras_electra.models.generator import ElectraGenerator
from tests.conftest import VOCAB_UNCASED
from tests.convert.fixtures import (
    hf_config,
    hf_hidden,
    hf_kwargs,
    hf_outputs,
    hf_pair,
    make_hf,
    max_diff_at_tokens,
    novel_lines,
    real_batch,
    save_hf,
)

TOL = 1e-5

# (discriminator, generator) HF configs: E == H and E != H; generator smaller and equal;
# one head and several. Every batch has type ids 0/1 and padding.
CONFIGS = {
    "e_equals_h_generator_same_size": (
        dict(embedding_size=32, hidden_size=32, num_attention_heads=4, intermediate_size=64),
        dict(embedding_size=32, hidden_size=32, num_attention_heads=4, intermediate_size=64),
    ),
    "e_differs_generator_smaller_one_head": (
        dict(embedding_size=16, hidden_size=32, num_attention_heads=4, intermediate_size=64),
        dict(embedding_size=16, hidden_size=8, num_attention_heads=1, intermediate_size=32),
    ),
    "discriminator_one_head_generator_two": (
        dict(embedding_size=16, hidden_size=24, num_attention_heads=1, intermediate_size=48),
        dict(embedding_size=16, hidden_size=16, num_attention_heads=2, intermediate_size=32),
    ),
}


@pytest.fixture(scope="module")
def batch():
    return real_batch(length=24)


@pytest.fixture(scope="module", params=sorted(CONFIGS))
def hf_dirs(request, tmp_path_factory):
    disc_kwargs, gen_kwargs = CONFIGS[request.param]
    gen, disc = hf_pair(hf_config(**disc_kwargs), hf_config(**gen_kwargs), seed=len(request.param))
    root = tmp_path_factory.mktemp(request.param)
    return gen, disc, save_hf(disc, root / "disc"), save_hf(gen, root / "gen")


def test_padding_and_both_segments_are_in_the_batch(batch):
    assert (batch["padding_mask"] == 0).any() and (batch["segment_ids"] == 1).any()


def test_outputs_match_transformers(hf_dirs, batch):
    gen_hf, disc_hf, disc_dir, gen_dir = hf_dirs
    disc, report = from_pretrained(disc_dir, return_report=True)
    assert isinstance(disc, ElectraDiscriminator) and not report.allowed_unused and not report.left_initialised
    assert max_diff_at_tokens(disc.backbone(batch), hf_hidden(disc_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(disc(batch), hf_outputs(disc_hf, batch), batch) <= TOL

    gen = from_pretrained(gen_dir)  # auto: an ElectraForMaskedLM is a generator
    assert isinstance(gen, ElectraGenerator)
    assert max_diff_at_tokens(gen.backbone(batch), hf_hidden(gen_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(gen(batch, mask_positions=None), hf_outputs(gen_hf, batch), batch) <= TOL

    generator, discriminator = load_pretraining_pair(disc_dir, gen_dir)
    assert generator.backbone.embeddings is discriminator.backbone.embeddings
    assert max_diff_at_tokens(generator(batch), hf_outputs(gen_hf, batch), batch) <= TOL
    assert max_diff_at_tokens(discriminator(batch), hf_outputs(disc_hf, batch), batch) <= TOL


def test_generator_backbone_and_bare_electra_model(tmp_path, batch):
    """ElectraModel saves have no `electra.` prefix; a generator's encoder loads as a backbone too."""
    config = hf_config(**CONFIGS["e_differs_generator_smaller_one_head"][0])
    base = make_hf(transformers.ElectraModel, config, seed=11)
    base.save_pretrained(str(tmp_path / "base"))
    keys = load_file(str(tmp_path / "base" / "model.safetensors"))
    assert not any(k.startswith("electra.") for k in keys)
    backbone = from_pretrained(tmp_path / "base")  # auto: backbone
    assert max_diff_at_tokens(backbone(batch), hf_hidden(base, batch), batch) <= TOL
    with pytest.raises(CheckpointError, match="ElectraModel: it has no RTD head"):
        from_pretrained(tmp_path / "base", part="discriminator")

    mlm = make_hf(transformers.ElectraForMaskedLM, config, seed=12)
    mlm.save_pretrained(str(tmp_path / "mlm"))
    backbone, report = from_pretrained(tmp_path / "mlm", part="backbone", return_report=True)
    assert max_diff_at_tokens(backbone(batch), hf_hidden(mlm, batch), batch) <= TOL
    assert any(name.startswith("generator_predictions.") for name in report.other_parts)


def test_pytorch_bin_with_legacy_buffers_and_tied_output(tmp_path, batch):
    """Older saves: pytorch_model.bin, a persistent position_ids buffer and the tied lm-head matrix."""
    config = hf_config(**CONFIGS["e_differs_generator_smaller_one_head"][1])
    mlm = make_hf(transformers.ElectraForMaskedLM, config, seed=5)
    state = {k: v.clone() for k, v in mlm.state_dict().items()}
    state["electra.embeddings.position_ids"] = torch.arange(64)[None]
    state["generator_lm_head.weight"] = mlm.electra.embeddings.word_embeddings.weight.detach().clone()
    (tmp_path / "config.json").write_text(json.dumps({**config.to_dict(), "architectures": ["ElectraForMaskedLM"]}))
    torch.save(state, tmp_path / "pytorch_model.bin")
    gen, report = from_pretrained(tmp_path, return_report=True)
    assert report.ignored["electra.embeddings.position_ids"].startswith("position/type id buffer")
    assert "checked equal" in report.ignored["generator_lm_head.weight"]
    assert max_diff_at_tokens(gen(batch), hf_outputs(mlm, batch), batch) <= TOL

    state["generator_lm_head.weight"] = state["generator_lm_head.weight"] + 1.0  # untied: refused
    torch.save(state, tmp_path / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="generator_lm_head.weight differs"):
        from_pretrained(tmp_path)


# ------------------------------------------------------------------------- task heads
def _task_class(architecture: str):
    from keras_electra.tasks.classifier import ElectraClassifier
    from keras_electra.tasks.multiple_choice import ElectraMultipleChoice
    from keras_electra.tasks.question_answerer import ElectraQuestionAnswerer
    from keras_electra.tasks.token_classifier import ElectraTokenClassifier

    return {
        "ElectraForSequenceClassification": (ElectraClassifier, 3, {}),
        "ElectraForTokenClassification": (ElectraTokenClassifier, 5, {}),
        "ElectraForQuestionAnswering": (ElectraQuestionAnswerer, 2, {"preprocessor_kwargs": {"max_query_length": 16}}),
        "ElectraForMultipleChoice": (ElectraMultipleChoice, 1, {"num_choices": 2}),
    }[architecture]


@pytest.mark.parametrize("architecture", [
    "ElectraForSequenceClassification", "ElectraForTokenClassification",
    "ElectraForQuestionAnswering", "ElectraForMultipleChoice",
])
def test_task_heads_match_transformers(architecture, tmp_path, batch):
    task_cls, num_labels, kwargs = _task_class(architecture)
    labels = {i: f"label_{i}" for i in range(num_labels)}
    config = hf_config(**CONFIGS["e_differs_generator_smaller_one_head"][0], id2label=labels,
                       label2id={v: k for k, v in labels.items()})
    reference = make_hf(getattr(transformers, architecture), config, seed=21)
    save_hf(reference, tmp_path)
    assert read_checkpoint(tmp_path).architecture == architecture
    model, report = load_task(task_cls, tmp_path, seq_length=64, return_report=True, **kwargs)
    assert not report.left_initialised and not report.allowed_unused and not report.other_parts
    assert model.preprocessor is not None  # vocab.txt came with the checkpoint
    if architecture == "ElectraForMultipleChoice":  # [B, C, L]: the batch rows, twice, as two choices
        choices = {k: np.repeat(v[:, None], 2, axis=1) for k, v in batch.items()}
        choices["token_ids"][:, 1] = np.where(batch["padding_mask"] > 0, batch["token_ids"][::-1], 0)
        ours = np.asarray(model(choices))
        with torch.no_grad():
            theirs = reference(**hf_kwargs(choices)).logits.numpy()
        assert ours.shape == theirs.shape == (3, 2) and np.max(np.abs(ours - theirs)) <= TOL
        return
    ours = np.asarray(model(batch))
    with torch.no_grad():
        out = reference(**hf_kwargs(batch))
    if architecture == "ElectraForQuestionAnswering":
        theirs = np.stack([out.start_logits.numpy(), out.end_logits.numpy()], axis=-1)
        assert max_diff_at_tokens(ours, theirs, batch) <= TOL
    elif architecture == "ElectraForTokenClassification":
        assert model.label_names == list(labels.values())
        assert max_diff_at_tokens(ours, out.logits.numpy(), batch) <= TOL
    else:
        assert model.head == "huggingface" and model.num_classes == 3
        assert np.max(np.abs(ours - out.logits.numpy())) <= TOL


def test_task_model_from_pretraining_checkpoint_gets_a_fresh_head(hf_dirs):
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.classifier import ElectraClassifier

    _, _, disc_dir, _ = hf_dirs
    checkpoint = read_checkpoint(disc_dir)
    model = ElectraClassifier(ElectraBackbone.from_electra_config(checkpoint.config), num_classes=2)
    with pytest.raises(CheckpointError, match=r"not in the checkpoint: classifier/bias, classifier/kernel"):
        load_into(model, checkpoint)
    report = load_into(model, checkpoint, fresh_heads=True)
    assert report.left_initialised == ["classifier/bias", "classifier/kernel"]
    assert any(n.startswith("discriminator_predictions.") for n in report.other_parts)


# --------------------------------------------------------------------------- round trips
def test_name_rules_are_inverse():
    shapes = {"electra.encoder.layer.3.attention.output.LayerNorm.weight": 1,
              "electra.encoder.layer.3.attention.output.LayerNorm.bias": 1,
              "discriminator_predictions.dense_prediction.weight": 2,
              "classifier.out_proj.weight": 2}
    for key in shapes:
        name, _ = hf_to_canonical(key, generator=False, ndim_of=shapes)
        assert canonical_to_hf(name)[0] == key
    assert hf_to_canonical("electra.encoder.layer.0.output.dense.weight", True, {
        "electra.encoder.layer.0.output.dense.weight": 2})[0] == "generator/encoder/layer_0/output/dense/kernel"


def _randomise(model, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(0, 0.05, variable.shape).astype("float32") + ("gamma" in variable.path))


def test_ours_to_hf_to_transformers(tmp_path, batch):
    config = ElectraConfig.from_preset("tiny", vocab_size=30522, num_layers=2, max_position_embeddings=64)
    disc = ElectraDiscriminator.from_electra_config(config)
    gen = ElectraGenerator.from_electra_config(config, embeddings=disc.backbone.embeddings)
    _randomise(disc, 1)
    _randomise(gen, 2)
    tokenizer = ElectraTokenizer(VOCAB_UNCASED, lower_case=True)
    save_huggingface(disc, tmp_path / "disc", tokenizer=tokenizer)
    save_huggingface(gen, tmp_path / "gen", tokenizer=tokenizer)

    hf_disc, info = transformers.ElectraForPreTraining.from_pretrained(tmp_path / "disc", output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    hf_gen, info = transformers.ElectraForMaskedLM.from_pretrained(tmp_path / "gen", output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    assert max_diff_at_tokens(disc(batch), hf_outputs(hf_disc.eval(), batch), batch) <= TOL
    assert max_diff_at_tokens(gen(batch), hf_outputs(hf_gen.eval(), batch), batch) <= TOL

    # The tokenizer travels too: transformers' fast tokenizer gives our ids on real lines.
    hf_tok = transformers.ElectraTokenizerFast.from_pretrained(str(tmp_path / "disc"))
    lines = novel_lines(300, min_chars=1)
    ours = tokenizer.tokenize(lines).to_list()
    assert ours == [hf_tok(line, add_special_tokens=False)["input_ids"] for line in lines]
    # And back: the saved directory converts to the same model.
    again = from_pretrained(tmp_path / "disc")
    assert max_diff_at_tokens(again(batch), disc(batch), batch) == 0.0
    # A bare backbone saves as HF's ElectraModel (keys without the `electra.` prefix).
    save_huggingface(disc.backbone, tmp_path / "base")
    hf_base, info = transformers.ElectraModel.from_pretrained(tmp_path / "base", output_loading_info=True)
    assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
    assert max_diff_at_tokens(disc.backbone(batch), hf_hidden(hf_base.eval(), batch), batch) <= TOL
    assert tokenizer_from_checkpoint(read_checkpoint(tmp_path / "disc")).lower_case is True


def test_model_pretrained_here_loads_in_transformers(tmp_path, batch):
    import tensorflow as tf

    from keras_electra.optimization import create_optimizer
    from keras_electra.pretraining.pretrainer import ElectraPretrainer

    tokenizer = ElectraTokenizer(VOCAB_UNCASED, lower_case=True)
    keras.utils.set_random_seed(3)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, num_layers=1)
    pretrainer = ElectraPretrainer(config, tokenizer.special_token_ids, seq_length=24, seed=3)
    pretrainer.compile(optimizer=create_optimizer(1e-3, 10, 0), run_eagerly=True)  # no tracing: faster here
    before = pretrainer.discriminator(batch).numpy()
    pretrainer.fit(tf.data.Dataset.from_tensors(batch), epochs=1, verbose=0)
    assert np.max(np.abs(pretrainer.discriminator(batch).numpy() - before)) > 0  # it did train

    save_huggingface(pretrainer.discriminator, tmp_path / "disc", tokenizer=tokenizer)
    save_huggingface(pretrainer.generator, tmp_path / "gen", tokenizer=tokenizer)
    for cls, name, model in ((transformers.ElectraForPreTraining, "disc", pretrainer.discriminator),
                             (transformers.ElectraForMaskedLM, "gen", pretrainer.generator)):
        hf, info = cls.from_pretrained(tmp_path / name, output_loading_info=True)
        assert not (info["missing_keys"] or info["unexpected_keys"] or info["mismatched_keys"]), info
        assert max_diff_at_tokens(model(batch), hf_outputs(hf.eval(), batch), batch) <= TOL


# ------------------------------------------------------------------------------- errors
@pytest.fixture
def small_pretraining_dir(tmp_path):
    model = make_hf(transformers.ElectraForPreTraining, hf_config(num_hidden_layers=2), seed=8)
    return save_hf(model, tmp_path / "disc", with_tokenizer=False)


def test_unused_source_variable_is_named_and_allow_list_works(small_pretraining_dir):
    weights = small_pretraining_dir / "model.safetensors"
    tensors = load_file(str(weights))
    tensors["electra.pooler.dense.weight"] = np.zeros((32, 32), np.float32)
    save_file(tensors, str(weights), metadata={"format": "pt"})
    with pytest.raises(CheckpointError, match=r"1 checkpoint variable\(s\) the model does not use: "
                                              r"electra\.pooler\.dense\.weight"):
        from_pretrained(small_pretraining_dir)
    _, report = from_pretrained(small_pretraining_dir, allow_unused=["electra.pooler.*"], return_report=True)
    assert report.allowed_unused == ["electra.pooler.dense.weight"]


def test_wrong_shape_names_the_variable_and_both_shapes(small_pretraining_dir):
    config_path = small_pretraining_dir / "config.json"
    values = json.loads(config_path.read_text())
    config_path.write_text(json.dumps({**values, "intermediate_size": 48}))
    with pytest.raises(CheckpointError) as err:
        from_pretrained(small_pretraining_dir)
    message = str(err.value)
    assert "shape mismatch: electra.encoder.layer.0.intermediate.dense.weight is [32, 64]" in message
    assert "(stored as [64, 32], torch [out, in], transposed)" in message
    assert "electra/encoder/layer_0/intermediate/dense/kernel is [32, 48]" in message
    assert "\n" not in message


def test_extra_layer_in_checkpoint_is_an_error(small_pretraining_dir):
    config_path = small_pretraining_dir / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "num_hidden_layers": 1}))
    with pytest.raises(CheckpointError, match=r"does not use: electra\.encoder\.layer\.1\."):
        from_pretrained(small_pretraining_dir)


def test_wrong_part_and_wrong_directory(hf_dirs, tmp_path):
    _, _, disc_dir, gen_dir = hf_dirs
    with pytest.raises(CheckpointError, match="Hugging Face keeps the generator in a separate checkpoint"):
        from_pretrained(disc_dir, part="generator")
    with pytest.raises(CheckpointError, match=r"is a generator \(ElectraForMaskedLM\), not a discriminator"):
        from_pretrained(gen_dir, part="discriminator")
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "electra"}))
    with pytest.raises(CheckpointError, match="has config.json but no weights: expected model.safetensors"):
        from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "roberta"}))
    (tmp_path / "model.safetensors").write_bytes((disc_dir / "model.safetensors").read_bytes())
    with pytest.raises(CheckpointError, match="describes a 'roberta' model, not ELECTRA or BERT"):
        from_pretrained(tmp_path)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(CheckpointError, match="is not a recognised checkpoint: expected a TF1 checkpoint"):
        from_pretrained(empty)
