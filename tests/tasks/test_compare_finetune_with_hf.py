"""scripts/compare_finetune_with_hf.py: both sides must see the same packed rows (MRPC in both orders),
start from the same encoder numbers and head init, and follow the same recipe (layer-wise LR multipliers,
LR schedule, the official AdamW without bias correction, the paper protocol's last epoch), or the
comparison means nothing."""

from __future__ import annotations

import argparse
import importlib.util
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import REPO, SHARED_DATA, VOCAB_UNCASED

pytest.importorskip("torch")
pytest.importorskip("transformers")

MINILM = Path.home() / ".cache" / "keras_electra" / "minilm" / "hf"


@pytest.fixture(scope="module")
def script():
    spec = importlib.util.spec_from_file_location("compare_finetune_with_hf",
                                                  REPO / "scripts" / "compare_finetune_with_hf.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def tokenizers(script):
    from keras_electra.data.tokenizer import ElectraTokenizer

    return ElectraTokenizer(VOCAB_UNCASED, lower_case=True), script.hf_tokenizer(VOCAB_UNCASED, lower_case=True)


def _args(**kw) -> argparse.Namespace:
    return argparse.Namespace(data=SHARED_DATA, data_seed=0, max_train_examples=kw.get("train", 300),
                              max_eval_examples=kw.get("dev", 300), double_unordered=kw.get("double", True))


def _tiny_electra(hidden: int = 32, embedding: int = 32, labels: int = 3):
    """A tiny keras_electra backbone and the transformers config of the same shape (the real vocab)."""
    import transformers

    from keras_electra.config import ElectraConfig
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.models.backbone import ElectraBackbone

    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    config = ElectraConfig.from_preset("tiny", vocab_size=tokenizer.vocabulary_size, hidden_size=hidden,
                                       embedding_size=embedding, num_layers=2, num_heads=2, intermediate_size=64)
    hf_config = transformers.ElectraConfig(vocab_size=tokenizer.vocabulary_size, embedding_size=embedding,
                                           hidden_size=hidden, num_hidden_layers=2, num_attention_heads=2,
                                           intermediate_size=64, num_labels=labels)
    return ElectraBackbone.from_electra_config(config), tokenizer, hf_config


# Short lengths, so that pairs and sentences are cut: the truncation rules must agree too.
@pytest.mark.parametrize("task,length", [("sst2", 16), ("mrpc", 40), ("mrpc", 128), ("conll2003", 12)])
def test_both_sides_pack_the_same_rows(script, tokenizers, task, length):
    ours, theirs = tokenizers
    spec, data = script.task_data(task, _args())
    kind, labels = spec.runner.kind, list(data.labels)
    for examples in (data.train, data.dev):
        hf = script.encode(kind, theirs, examples, length, labels)
        mine = script.keras_encoding(kind, ours, examples, length, labels)
        info = script.check_agreement(hf, mine, task, theirs.unk_token_id)
        assert info["rows"] == len(examples)
        assert info["unk_rate"] < 0.01
    if task == "mrpc":  # the official double_unordered: every pair also as (b, a), checked row by row above
        assert len(data.train) == 600 and data.train[300].text_a == data.train[0].text_b
    if kind == "token":  # the tags really are on the first sub-words, not all ignored
        assert (hf["labels"] != script.IGNORE_INDEX).sum() > len(examples)
    else:
        assert set(np.unique(hf["labels"])) == {0, 1}
    truncated = (hf["attention_mask"].sum(1) == length).mean()
    assert truncated > 0 or length == 128


def test_a_mismatch_or_an_unk_tokenizer_is_caught(script, tokenizers):
    ours, theirs = tokenizers
    spec, data = script.task_data("mrpc", _args(train=20, dev=20))
    labels = list(data.labels)
    hf = script.encode("classification", theirs, data.dev, 64, labels)
    mine = script.keras_encoding("classification", ours, data.dev, 64, labels)
    hf["token_type_ids"][3, 5] = 1 - hf["token_type_ids"][3, 5]
    with pytest.raises(script.ComparisonError, match="row 3"):
        script.check_agreement(hf, mine, "mrpc dev", theirs.unk_token_id)
    hf["token_type_ids"][3, 5] = mine["segment_ids"][3, 5]
    real = hf["attention_mask"].astype(bool)
    hf["input_ids"][real] = theirs.unk_token_id
    mine["token_ids"][real] = theirs.unk_token_id
    with pytest.raises(script.ComparisonError, match=r"\[UNK\]"):
        script.check_agreement(hf, mine, "mrpc dev", theirs.unk_token_id)


@pytest.mark.parametrize("kind,head", [("classification", "huggingface"), ("classification", "electra"),
                                       ("token", "huggingface")])
@pytest.mark.parametrize("embedding_size", [32, 16])  # 16: with the embeddings projection
def test_layerwise_multipliers_match_keras_electra(script, kind, head, embedding_size):
    import transformers

    from keras_electra.config import ElectraConfig
    from keras_electra.models.backbone import ElectraBackbone
    from keras_electra.tasks.registry import runners

    config = ElectraConfig.from_preset("tiny", vocab_size=100, hidden_size=32, embedding_size=embedding_size,
                                       num_layers=2, num_heads=2, intermediate_size=64)
    backbone = ElectraBackbone.from_electra_config(config)
    from keras_electra.data.tokenizer import ElectraTokenizer

    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    keras_model = runners()[kind].build_model(backbone, tokenizer, 16, ["a", "b", "c"], {"head": head})
    hf_config = transformers.ElectraConfig(vocab_size=100, embedding_size=embedding_size, hidden_size=32,
                                           num_hidden_layers=2, num_attention_heads=2, intermediate_size=64,
                                           num_labels=3)
    cls = transformers.ElectraForTokenClassification if kind == "token" else \
        transformers.ElectraForSequenceClassification
    hf_model = cls(hf_config)
    if kind != "token" and head == "electra":
        hf_model.classifier = script.paper_head(32, 3, 0.1)
    multipliers = script.check_multipliers(hf_model, keras_model, 0.8)
    assert multipliers["electra.embeddings.word_embeddings.weight"] == pytest.approx(0.8 ** 3)
    assert multipliers["electra.encoder.layer.1.output.dense.weight"] == pytest.approx(0.8)
    assert set(v for k, v in multipliers.items() if k.startswith("classifier")) == {1.0}


def test_double_unordered_can_be_off_on_both_sides(script):
    _, doubled = script.task_data("mrpc", _args(train=50, dev=10))
    _, single = script.task_data("mrpc", _args(train=50, dev=10, double=False))
    assert len(doubled.train) == 100 and len(single.train) == 50
    assert [(e.text_b, e.text_a) for e in doubled.train[50:]] == [(e.text_a, e.text_b) for e in single.train]
    args = script.parse_args(["--tasks", "mrpc", "--no-double-unordered"])
    assert args.double_unordered is False and script.parse_args(["--tasks", "mrpc"]).double_unordered


def _keras_steps(grads: list[list[np.ndarray]], starts: list[np.ndarray], multipliers: list[float], lr: float,
                 bias_correction: bool) -> list[np.ndarray]:
    import keras

    from keras_electra.optimization import ElectraAdamW

    variables = [keras.Variable(x, name=f"w{i}") for i, x in enumerate(starts)]
    optimizer = ElectraAdamW(learning_rate=lr, weight_decay_rate=0.0, epsilon=1e-6, bias_correction=bias_correction,
                             lr_multipliers={v.path: m for v, m in zip(variables, multipliers)}, global_clipnorm=1.0)
    for step in grads:
        optimizer.apply_gradients(zip([keras.ops.convert_to_tensor(g) for g in step], variables))
    return [np.asarray(v.numpy()) for v in variables]


def _torch_steps(script, grads, starts, multipliers, lr: float, bias_correction: bool, optimizer_cls=None):
    import torch

    module = torch.nn.Module()
    for i, x in enumerate(starts):
        module.register_parameter(f"w{i}", torch.nn.Parameter(torch.from_numpy(x.copy())))
    by_name = {f"w{i}": m for i, m in enumerate(multipliers)}
    if optimizer_cls is None:
        optimizer = script.make_optimizer(module, by_name, lr, bias_correction)
    else:  # the optimizer the script used to take: torch's AdamW, always bias-corrected
        optimizer = optimizer_cls([{"params": [p], "lr": lr * by_name[n]} for n, p in module.named_parameters()],
                                  lr=lr, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)
    for step in grads:  # the order of train_hf: clip to global norm 1, then step
        for param, g in zip(module.parameters(), step):
            param.grad = torch.from_numpy(g.copy())
        torch.nn.utils.clip_grad_norm_(module.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return [p.detach().numpy() for p in module.parameters()]


@pytest.mark.parametrize("bias_correction", [False, True])
def test_torch_optimizer_updates_like_electra_adamw(script, bias_correction):
    import torch

    rng = np.random.default_rng(0)
    shapes, multipliers, lr = [(4, 3), (3,), (5,)], [0.8 ** 2, 0.8, 1.0], 1e-3
    starts = [rng.normal(size=s).astype(np.float32) for s in shapes]
    # Gradients of global norm > 1 (the clipping acts), one with a sign flip between steps.
    grads = [[rng.normal(scale=2.0, size=s).astype(np.float32) for s in shapes] for _ in range(3)]
    for steps in (grads[:1], grads):  # the first update alone, then three (the moments carry over)
        ours = _keras_steps(steps, starts, multipliers, lr, bias_correction)
        theirs = _torch_steps(script, steps, starts, multipliers, lr, bias_correction)
        for a, b, start in zip(ours, theirs, starts):
            assert np.abs(a - start).max() > lr * 0.1  # the parameters did move
            np.testing.assert_allclose(b, a, rtol=0, atol=1e-6)
    # The recipe mismatch this catches: torch's AdamW corrects the bias, so its first update is smaller
    # (lr * sign(g) instead of lr * 0.1 / sqrt(0.001) * sign(g)).
    first_ours = _keras_steps(grads[:1], starts, multipliers, lr, bias_correction)
    first_adamw = _torch_steps(script, grads[:1], starts, multipliers, lr, bias_correction, torch.optim.AdamW)
    gap = max(np.abs(a - b).max() for a, b in zip(first_ours, first_adamw))
    if bias_correction:
        assert gap < 1e-6
    else:
        assert gap > 1e-4


def test_keras_recipe_mismatch_is_caught(script):
    args = script.parse_args(["--tasks", "mrpc", "--seq-length", "64", "--epochs", "1"])
    hp = {"protocol": "paper", "adam_bias_correction": False, "double_unordered": True,
          "default_initializer": "glorot_uniform", "epochs": 1, "batch_size": 32, "learning_rate": 3e-4,
          "layerwise_lr_decay": 0.8, "legacy_layerwise_decay": False, "warmup_fraction": 0.1, "weight_decay": 0.0,
          "adam_epsilon": 1e-6, "clip_norm": 1.0, "dropout": 0.1, "seq_length": 64, "head": "huggingface"}
    script.check_keras_recipe(hp, "mrpc", args)
    for key, other in (("adam_bias_correction", True), ("protocol", "best-dev"), ("double_unordered", False),
                       ("default_initializer", "truncated_normal"), ("head", "electra")):
        with pytest.raises(script.ComparisonError, match=key):
            script.check_keras_recipe({**hp, key: other}, "mrpc", args)
    with pytest.raises(script.ComparisonError, match="double_unordered"):  # SST-2 has one order only
        script.check_keras_recipe(hp, "sst2", script.parse_args(["--tasks", "sst2", "--seq-length", "64",
                                                                 "--epochs", "1"]))


def test_same_start_is_checked_tensor_by_tensor(script):
    import torch
    import transformers

    from keras_electra.convert.huggingface import hf_to_canonical
    from keras_electra.tasks.registry import runners

    backbone, tokenizer, hf_config = _tiny_electra(embedding=16)
    keras_model = runners()["classification"].build_model(backbone, tokenizer, 16, ["a", "b", "c"],
                                                           {"head": "huggingface"})
    hf_model = transformers.ElectraForSequenceClassification(hf_config)
    with pytest.raises(script.ComparisonError, match="other numbers"):  # two random inits
        script.check_same_start(hf_model, keras_model)
    ours = keras_model.canonical_weights()
    params = dict(hf_model.named_parameters())
    ndim = {k: v.ndim for k, v in params.items()}
    with torch.no_grad():
        for key, param in params.items():
            if not key.startswith("classifier"):
                name, transform = hf_to_canonical(key, False, ndim)
                value = torch.from_numpy(np.asarray(ours[name].numpy()))
                param.copy_(value.T if transform == "transpose" else value)
    assert script.check_same_start(hf_model, keras_model) == len([k for k in params if not k.startswith("cl")])
    with torch.no_grad():
        params["electra.encoder.layer.1.attention.self.query.weight"][0, 0] += 1e-6
    with pytest.raises(script.ComparisonError, match="layer.1.attention.self.query"):
        script.check_same_start(hf_model, keras_model)


@pytest.mark.parametrize("kind,head,tensors", [("classification", "huggingface", 4),
                                                ("classification", "electra", 2), ("token", "huggingface", 2)])
def test_keras_head_numbers_are_copied_into_torch(script, kind, head, tensors):
    """--keras-streams head: every torch head tensor gets keras_electra's initial number of the same name."""
    import keras
    import torch
    import transformers

    from keras_electra.tasks.registry import runners

    backbone, tokenizer, hf_config = _tiny_electra()
    keras_model = runners()[kind].build_model(backbone, tokenizer, 16, ["a", "b", "c"], {"head": head})
    cls = transformers.ElectraForTokenClassification if kind == "token" else \
        transformers.ElectraForSequenceClassification
    hf_model = cls(hf_config)
    if kind != "token" and head == "electra":
        hf_model.classifier = script.paper_head(32, 3, 0.1)
    assert script.copy_keras_head(hf_model, keras_model) == tensors
    ours = keras_model.head_weights()
    for key, param in hf_model.named_parameters():
        if key.startswith("classifier."):
            name, move = script.head_name(key)
            value = np.asarray(keras.ops.convert_to_numpy(ours[name]))
            assert np.array_equal(param.detach().numpy(), value.T if move == "transpose" else value), key
    assert script.head_name("electra.encoder.layer.0.output.dense.weight") is None
    hf_config.num_labels = 5  # another label count: refused before anything is copied
    other = cls(hf_config)
    if kind != "token" and head == "electra":
        other.classifier = script.paper_head(32, 5, 0.1)
    before = {k: v.detach().clone() for k, v in other.named_parameters()}
    with pytest.raises(script.ComparisonError, match="shape"):
        script.copy_keras_head(other, keras_model)
    assert all(torch.equal(before[k], v) for k, v in other.named_parameters())


def test_keras_batches_are_the_seeds_shuffle_of_the_packed_rows(script, tokenizers):
    """--keras-streams order: the batches of keras_electra's training dataset for the seed (its first pass),
    every row one the torch side packed; another seed, another order; NER and --epochs 2 refused."""
    from keras_electra.tasks import finetune
    from keras_electra.tasks.recipe import FinetuneConfig

    _, theirs = tokenizers
    spec, data = script.task_data("mrpc", _args(train=24, dev=8))
    labels = list(data.labels)
    hf_train = script.encode("classification", theirs, data.train, 32, labels)
    orders = []
    for seed in (0, 0, 1):
        config = FinetuneConfig(task="mrpc", data="", init="random", output="", preset="tiny", seq_length=32,
                                vocab=str(VOCAB_UNCASED))
        model, _ = finetune.build_task_model(config, spec, labels, seed, 32)
        batches = script.keras_batches(spec, model, data.train, 8, seed, hf_train)
        assert len(batches) == 48 // 8 and all(b["input_ids"].shape == (8, 32) for b in batches)
        expected = [x["token_ids"].numpy() for x, _ in spec.runner.train_dataset(model, data.train, 8, seed)]
        assert all(np.array_equal(b["input_ids"], e) for b, e in zip(batches, expected))
        orders.append(np.concatenate([b["input_ids"] for b in batches]))
    assert np.array_equal(orders[0], orders[1]) and not np.array_equal(orders[0], orders[2])
    assert sorted(map(bytes, orders[0])) == sorted(map(bytes, hf_train["input_ids"].astype(orders[0].dtype)))
    hf_train["input_ids"][:, 1] += 1  # rows keras_electra does not make
    with pytest.raises(script.ComparisonError, match="not among"):
        script.keras_batches(spec, model, data.train, 8, 0, hf_train)
    with pytest.raises(SystemExit):
        script.parse_args(["--tasks", "mrpc", "--keras-streams", "order", "--epochs", "2"])
    token_spec, token_data = script.task_data("conll2003", _args(train=8, dev=8))
    with pytest.raises(script.ComparisonError, match="sentence tasks"):
        script.keras_batches(token_spec, model, token_data.train, 8, 0, hf_train)


@pytest.mark.parametrize("protocol", ["paper", pytest.param("best-dev", marks=pytest.mark.slow)])
def test_hf_side_keeps_the_last_epoch_under_the_paper_protocol(script, tokenizers, tmp_path, protocol):
    """A tiny transformers model trained for 3 epochs: the paper protocol reports the last epoch."""
    import transformers

    _, theirs = tokenizers
    _, _, hf_config = _tiny_electra(labels=2)
    transformers.ElectraModel(hf_config).save_pretrained(tmp_path)
    spec, data = script.task_data("mrpc", _args(train=24, dev=16))
    labels = list(data.labels)
    train = script.encode("classification", theirs, data.train, 24, labels)
    dev = script.encode("classification", theirs, data.dev, 24, labels)
    args = script.parse_args(["--tasks", "mrpc", "--epochs", "3", "--batch-size", "8", "--lr", "1e-3",
                              "--protocol", protocol, "--patience", "0", "--head", "electra"])
    run = script.train_hf("classification", tmp_path, train, dev, data.dev, labels, spec.metric, 0, args)
    assert len(run["dev_history"]) == 3 and run["steps_per_epoch"] == 48 // 8
    best = max(run["dev_history"], key=lambda h: h[spec.metric]) if protocol == "best-dev" else \
        run["dev_history"][-1]
    assert run["best_epoch"] == best["epoch"]
    assert run["dev"] == {k: v for k, v in best.items() if k != "epoch"}
    assert len(run["train_loss"]) == 3 and all(np.isfinite(run["train_loss"]))


def test_schedule_is_keras_electras(script):
    from keras_electra.optimization import WarmupLinearDecay

    ours = WarmupLinearDecay(1.0, 50, 5)
    factor = script.lr_lambda(50, 5)
    for step in (0, 1, 4, 5, 6, 25, 49, 50, 60):
        assert factor(step) == pytest.approx(float(ours(step)), abs=1e-6)



@pytest.mark.skipif(not (MINILM / "model.safetensors").is_file(), reason="the MiniLM weights are not fetched")
def test_electra_layout_keeps_every_minilm_tensor(script, tmp_path):
    import torch
    from safetensors.torch import load_file

    target = script.electra_layout(MINILM, tmp_path / "electra")  # checks every tensor itself
    assert script.check_same_tensors(target / "model.safetensors", MINILM / "model.safetensors") == 101
    assert (target / "vocab.txt").read_bytes() == (MINILM / "vocab.txt").read_bytes()
    model = script.build_hf_model("classification", target, 2, "electra", 0.1, seed=0)  # checks the loaded weights
    weight = model.classifier.weight  # the official glorot_uniform: U(±sqrt(6 / (384 + 2)))
    assert weight.abs().max() <= (6 / 386) ** 0.5 and weight.std() > 0.06 and not model.classifier.bias.any()
    model = script.build_hf_model("classification", target, 2, "electra", 0.1, seed=0, head_init="truncated_normal")
    weight = model.classifier.weight
    assert weight.abs().max() <= 0.04 and weight.std() > 0.005  # truncated normal, not HF's default init
    model = script.build_hf_model("classification", target, 2, "huggingface", 0.1, seed=0)
    assert model.classifier.out_proj.weight.abs().max() <= 0.04  # ElectraClassificationHead: always truncated
    bert = load_file(MINILM / "model.safetensors")
    assert torch.equal(model.electra.embeddings.word_embeddings.weight, bert["embeddings.word_embeddings.weight"])


@pytest.mark.slow
@pytest.mark.skipif(not (MINILM / "model.safetensors").is_file(), reason="the MiniLM weights are not fetched")
@pytest.mark.parametrize("task, bias_correction", [("sst2", False), ("mrpc", True)])
def test_finetune_steps_equal_transformers_on_minilm(script, tmp_path, monkeypatch, task, bias_correction):
    """`train_one_seed` (the path of `keras-electra finetune`: its task model, `model.fit`, ElectraAdamW with
    layer-wise multipliers, the schedule, clipping, callbacks) and the script's torch loop, on the real MiniLM
    weights and real rows (SST-2 sentences; MRPC pairs in both orders, with segment ids, and bias-corrected
    Adam), dropout 0, the same head numbers and the same batches in the same order (two epochs, dev scoring
    between them): the loss at every step and every weight's total update agree.
    (It does not catch the old IndexedSlices embedding gradient, Σg² in Adam's v: with that `apply` put
    back it still passes; `test_backends.py::test_adamw_sees_the_dense_gradient_of_a_repeated_token` does.)"""
    import keras
    import torch

    from keras_electra.convert.huggingface import hf_to_canonical
    from keras_electra.tasks import finetune
    from keras_electra.tasks.recipe import FinetuneConfig, resolve_hyperparameters

    batch, length, epochs = 8, 32, 2
    electra_dir = script.electra_layout(MINILM, tmp_path / "electra")
    rows_per_example = 2 if task == "mrpc" else 1  # MRPC trains on each pair in both orders
    spec, data = script.task_data(task, _args(train=4 * batch // rows_per_example, dev=8))
    assert len(data.train) == 4 * batch
    labels = list(data.labels)
    config = FinetuneConfig(task=task, data="", init=str(electra_dir), output=str(tmp_path / "out"),
                            head="huggingface", dropout=0.0, learning_rate=3e-4, layerwise_lr_decay=0.8,
                            adam_bias_correction=bias_correction,
                            epochs=epochs, batch_size=batch, seq_length=length, verbose=0)
    model, tokenizer = finetune.build_task_model(config, spec, labels, 0, length)
    hp = resolve_hyperparameters(config, spec, model.backbone)
    ours = model.canonical_weights()
    start = {name: np.array(keras.ops.convert_to_numpy(v)) for name, v in ours.items()}
    # The same batches in the same order on both sides: no shuffling. (Keras' fit makes a second iterator
    # at each epoch's end, so epoch e sees the dataset's shuffle 2e - 1, not e: a replay would be fragile.)
    runner, train_dataset = spec.runner, type(spec.runner).train_dataset
    monkeypatch.setattr(runner, "train_dataset", lambda model, examples, batch_size, seed, shuffle=True:
                        train_dataset(runner, model, examples, batch_size, seed, shuffle=False))
    batches = [list(runner.train_dataset(model, data.train, batch, 0))] * epochs

    hf_model = script.build_hf_model("classification", electra_dir, len(labels), "huggingface", 0.0, seed=0)
    dropouts = [m.p for m in hf_model.modules() if isinstance(m, torch.nn.Dropout)]
    assert len(dropouts) > 12 and set(dropouts) == {0.0}  # --dropout reaches the encoder, as in finetune
    params = dict(hf_model.named_parameters())
    ndim = {k: v.ndim for k, v in params.items()}
    names = {key: script.head_name(key) or hf_to_canonical(key, False, ndim) for key in params}
    assert script.copy_keras_head(hf_model, model) == 4  # our fresh head's numbers
    script.check_same_start(hf_model, model)
    optimizer = script.make_optimizer(hf_model, script.check_multipliers(hf_model, model, 0.8), 3e-4,
                                      bias_correction)
    total = 4 * epochs
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, script.lr_lambda(total, int(0.1 * total)))
    hf_model.train()
    theirs_running = []
    for epoch in batches:
        losses = []
        for x, y in epoch:
            out = hf_model(input_ids=torch.from_numpy(x["token_ids"].numpy().astype(np.int64)),
                           token_type_ids=torch.from_numpy(x["segment_ids"].numpy().astype(np.int64)),
                           attention_mask=torch.from_numpy(x["padding_mask"].numpy().astype(np.int64)),
                           labels=torch.from_numpy(y.numpy().astype(np.int64)))
            out.loss.backward()
            losses.append(out.loss.item())
            theirs_running.append(float(np.mean(losses)))  # Keras logs the epoch's running mean
            torch.nn.utils.clip_grad_norm_(hf_model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)

    run = finetune.train_one_seed(config, spec, data, hp, model, tokenizer, 0, tmp_path / "logs")["result"]
    assert run["total_steps"] == total and run["step_losses"]["step"] == list(range(1, total + 1))
    np.testing.assert_allclose(run["step_losses"]["loss"], theirs_running, rtol=0, atol=2e-5)
    moved = 0
    for key, (name, transform) in names.items():
        theirs = params[key].detach().numpy()
        theirs = theirs.T if transform == "transpose" else theirs
        ours_update = np.asarray(keras.ops.convert_to_numpy(ours[name])) - start[name]
        their_update = theirs - start[name]
        scale = np.abs(their_update).max()
        if scale < 1e-7:  # the attention key biases: their gradient is 0 in exact arithmetic
            continue
        moved += 1
        assert np.abs(ours_update - their_update).max() <= 2e-3 * scale, (key, scale)
    assert moved >= len(names) - 6


def _side_report(side: str, accuracies: list[float], step_seconds: float = 1.0, **recipe) -> dict:
    """A report as a `--side keras|hf` run writes it (the fields `combine` reads)."""
    runs = [{"seed": seed, "dev": {"accuracy": a}} for seed, a in enumerate(accuracies)]
    timing = {"median_step_seconds": step_seconds, "train_seconds_per_1000_examples": step_seconds / 32 * 1000,
              "fit_seconds": 40.0, "fit_seconds_per_1000_examples": 40.0}
    return {"model": "minilm", "head": "huggingface", "versions": {"torch": "2", "transformers": "5"},
            "recipe": {"seeds": [0, 1, 2], "epochs": 1, "max_train_examples": 4000, **recipe},
            "tasks": {"sst2": {"metric": "accuracy", "metrics": ["accuracy"], "seq_length": 64,
                               "num_examples": {"train": 4000, "dev": 872},
                               side: {"runs": runs, "median": {"accuracy": sorted(accuracies)[1]},
                                      "timing": timing}}}}


def test_combine_merges_the_two_sides_and_refuses_a_different_recipe(script, tmp_path, capsys):
    import json

    keras, hf, other = (tmp_path / f"{n}.json" for n in ("keras", "hf", "other"))
    keras.write_text(json.dumps(_side_report("keras", [0.80, 0.83, 0.82], step_seconds=1.5)))
    hf.write_text(json.dumps(_side_report("hf", [0.81, 0.84, 0.85], step_seconds=2.0)))
    assert script.main(["--combine", str(keras), str(hf), "--output", str(tmp_path / "both.json")]) == 0
    merged = json.loads((tmp_path / "both.json").read_text())["tasks"]["sst2"]
    assert merged["difference_points"]["accuracy"] == pytest.approx(100 * (0.82 - 0.84))
    assert [r["dev"]["accuracy"] for r in merged["hf"]["runs"]] == [0.81, 0.84, 0.85]
    printed = capsys.readouterr().out
    assert "difference -2.00 points" in printed and "keras_electra / transformers: 0.75x" in printed
    other.write_text(json.dumps(_side_report("hf", [0.8, 0.8, 0.8], epochs=2)))
    assert script.main(["--combine", str(keras), str(other), "--output", str(tmp_path / "x.json")]) == 1
    assert "recipe" in capsys.readouterr().err and not (tmp_path / "x.json").exists()
    assert script.main(["--combine", str(hf), str(hf), "--output", str(tmp_path / "x.json")]) == 1
    assert "a second hf run" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["sst2", "conll2003"])
def test_keras_command_is_one_finetune_takes(script, task, tmp_path):
    """The finetune command the script runs parses and passes finetune's option checks, with the head
    transformers uses (NER: --tagging-head, since a token task refuses --head)."""
    from keras_electra.cli import build_parser
    from keras_electra.tasks.recipe import FinetuneConfig, check_task_options
    from keras_electra.tasks.registry import get_task

    args = script.parse_args(["--tasks", task, "--seq-length", "64", "--epochs", "1", "--max-train-examples", "8"])
    command = script.keras_command(task, tmp_path / "init", tmp_path / "out", args)
    assert command[1:3] == ["-m", "keras_electra"]
    parsed = build_parser().parse_args(command[3:])
    assert (parsed.head, parsed.tagging_head) == ((None, "huggingface") if task == "conll2003" else
                                                  ("huggingface", None))
    assert (parsed.seq_length, parsed.epochs, parsed.max_train_examples) == (64, 1, 8)
    config = FinetuneConfig(task=task, data="", init="", output="", head=parsed.head)
    check_task_options(config, get_task(task))  # raised for conll2003 when the script passed --head


@pytest.mark.slow
@pytest.mark.skipif(not (MINILM / "model.safetensors").is_file(), reason="the MiniLM weights are not fetched")
def test_keras_streams_replay_what_the_finetune_cli_draws(script, tmp_path):
    """`--keras-streams head order` across processes: `keras-electra finetune` (a subprocess) and the torch
    loop given its seed's head numbers and batches, dropout 0, train to the same loss on MiniLM (MRPC pairs,
    8 steps); with the torch side's own head the loss differs, so the head stream is really replayed."""
    import json

    common = ["--tasks", "mrpc", "--seeds", "0", "--max-train-examples", "64", "--max-eval-examples", "16",
              "--seq-length", "32", "--epochs", "1", "--batch-size", "16", "--adam-bias-correction",
              "--dropout", "0", "--workdir", str(tmp_path / "work")]
    assert script.main([*common, "--keras-streams", "head", "order", "--output", str(tmp_path / "both.json")]) == 0
    entry = json.loads((tmp_path / "both.json").read_text())["tasks"]["mrpc"]
    ours, replayed = entry["keras"]["runs"][0], entry["hf"]["runs"][0]
    assert entry["hf"]["keras_streams"] == ["head", "order"] and ours["steps_per_epoch"] == 8
    assert replayed["train_loss"][0] == pytest.approx(ours["train_loss"][0], rel=1e-5)
    assert script.main([*common, "--side", "hf", "--keras-streams", "order", "--output", str(tmp_path / "o.json")]) == 0
    own_head = json.loads((tmp_path / "o.json").read_text())["tasks"]["mrpc"]["hf"]["runs"][0]
    assert abs(own_head["train_loss"][0] - ours["train_loss"][0]) > 1e-3
