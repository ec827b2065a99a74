"""Training-set augmentation with ELECTRA's generator (`finetune --augment generator`).

The generator is a masked LM: masking a few word pieces of a training sentence and sampling the
generator there gives a perturbed copy that usually keeps the label. For each training example
(after few-shot / `--max-train-examples` sampling, before MRPC's both-orders copy) this makes
`copies` copies; in each, round(rate · n) of the n word pieces the task model sees (at least one;
never [CLS], [SEP] or padding) are replaced by [MASK], whole words first, and refilled by one
Gumbel-max sample of the generator (temperature 1, special tokens such as [UNK] and [unused*]
excluded; a sample equal to the original is kept, as in pretraining). Single sentences and both
segments of a pair are masked alike. The copies keep their label; dev and test are never touched.

Copies are text, not ids: only the replaced words' character spans change (found through the
tokenizer's offsets), the rest of the sentence stays byte for byte, so every task's own
preprocessing (truncation, pair packing, prompt templates, MRPC's swapped orders) runs on them
unchanged. The window the generator sees is the task's `seq_length`, truncated as the task
truncates (`trim_pair_lengths`), so no mask falls on tokens the task model would cut anyway.

Determinism: the draws of copy c of example i come from `numpy.random.default_rng((seed, i, c, stream))`,
and the generator runs in inference mode on fixed-shape batches, so the same seed gives the same
copies. Off by default (`augment="none"`): the official recipe has no augmentation.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_electra.errors import CheckpointError, ElectraError

if TYPE_CHECKING:
    from keras_electra.data.tokenizer import ElectraTokenizer
    from keras_electra.tasks.recipe import FinetuneConfig
    from keras_electra.tasks.registry import TaskSpec

AUGMENT_CHOICES = ("none", "generator")
DEFAULT_COPIES = 4
DEFAULT_RATE = 0.15  # the pretraining mask rate
SUPPORTED_KINDS = ("classification", "regression", "prompt")  # free text with a sentence-level label
_SPECIAL = re.compile(r"^\[[^\]]*\]$")  # [PAD] [UNK] [CLS] [SEP] [MASK] [unused0]...: never sampled


@dataclasses.dataclass(frozen=True)
class AugmentSettings:
    """What `--augment generator` resolved to; results.json records it."""

    generator: str
    copies: int = DEFAULT_COPIES
    rate: float = DEFAULT_RATE
    method: str = "generator"


def resolve_augmentation(config: FinetuneConfig, spec: TaskSpec) -> AugmentSettings | None:
    """The settings of `config` (None when off), or one line saying what is wrong with them."""
    given = {"--augment-copies": config.augment_copies, "--augment-rate": config.augment_rate,
             "--augment-generator": config.augment_generator}
    if config.augment not in AUGMENT_CHOICES:
        raise ElectraError(f"--augment {config.augment}: choose from {', '.join(AUGMENT_CHOICES)}")
    if config.augment == "none":
        stray = [flag for flag, value in given.items() if value is not None]
        if stray:
            raise ElectraError(f"{', '.join(stray)}: only with --augment generator (augmentation is off)")
        return None
    copies = DEFAULT_COPIES if config.augment_copies is None else config.augment_copies
    rate = DEFAULT_RATE if config.augment_rate is None else config.augment_rate
    if isinstance(copies, bool) or not isinstance(copies, int) or copies < 1:
        raise ElectraError(f"--augment-copies {copies}: must be a whole number >= 1")
    if not 0.0 < rate <= 1.0:
        raise ElectraError(f"--augment-rate {rate:g}: must be in (0, 1] (the fraction of word pieces resampled)")
    if spec.kind not in SUPPORTED_KINDS:
        raise ElectraError(f"--augment generator: {spec.name} is a {spec.kind} task; generator augmentation keeps "
                           "a sentence-level label and works on classification and regression tasks only")
    generator = config.augment_generator or (config.init if config.init != "random" else None)
    if generator is None:
        raise ElectraError("--augment generator: name the generator with --augment-generator DIR (--init random "
                           "brings none)")
    return AugmentSettings(generator=str(generator), copies=copies, rate=float(rate))


def augment_hook(config: FinetuneConfig, spec: TaskSpec) -> Callable[[list], tuple[list, dict]] | None:
    """For `load_task_data`: the function that adds generator copies to the training examples, or None
    when `--augment` is off. Bad settings and generators fail here, before any data is read."""
    settings = resolve_augmentation(config, spec)
    if settings is None:
        return None
    augmenter = load_augmenter(settings, config, config.seq_length or spec.seq_length)

    def augment(examples: list) -> tuple[list, dict[str, Any]]:
        augmented, stats = augmenter.augment(examples)
        return augmented, {**dataclasses.asdict(settings), "seed": config.seed, **stats}

    return augment


def load_augmenter(settings: AugmentSettings, config: FinetuneConfig, seq_length: int) -> GeneratorAugmenter:
    """The generator of `settings` with its tokenizer, checked against the task model's vocabulary."""
    from keras_electra.convert.api import (
        generator_location,
        load_generator,
        read_checkpoint,
        tokenizer_from_checkpoint,
    )
    from keras_electra.convert.resolve import resolve_optional

    flag = "--augment-generator" if config.augment_generator else "--augment generator (from --init)"
    try:
        path = Path(settings.generator)
        if not path.exists() and not Path(f"{path}.index").exists():  # a name (HF id...) -> a local path
            path = Path(resolve_optional(settings.generator))
        checkpoint = read_checkpoint(generator_location(path))
        generator = load_generator(checkpoint)
    except CheckpointError as error:
        raise CheckpointError(f"{flag}: {error}") from None
    tokenizer = tokenizer_from_checkpoint(checkpoint)
    if tokenizer is None:
        raise CheckpointError(f"{flag}: {checkpoint.path} has no vocab.txt; the generator needs its vocabulary")
    if generator.backbone.vocab_size != tokenizer.vocabulary_size:
        raise CheckpointError(f"{flag}: {checkpoint.path} has a vocabulary of {generator.backbone.vocab_size} but "
                              f"{tokenizer.vocabulary_size} tokens in its vocab.txt")
    check_vocabulary(tokenizer, task_vocabulary(config), f"{flag} {checkpoint.path}")
    window = min(seq_length, generator.backbone.max_position_embeddings)
    return GeneratorAugmenter(generator, tokenizer, window, settings.rate, settings.copies, config.seed)


def task_vocabulary(config: FinetuneConfig) -> tuple[list[str], bool] | None:
    """(vocabulary, lower_case) of the model the task fine-tunes, read before it is built."""
    from keras_electra.convert.api import read_checkpoint, tokenizer_from_checkpoint
    from keras_electra.data.tokenizer import build_tokenizer

    if config.init == "random":
        if config.vocab is None:
            return None  # the model build says what is missing
        tokenizer = build_tokenizer(config.vocab, config.lower_case)
    else:
        tokenizer = tokenizer_from_checkpoint(read_checkpoint(config.init))
    return None if tokenizer is None else (list(tokenizer.vocabulary), bool(tokenizer.lower_case))


def check_vocabulary(generator_tokenizer: ElectraTokenizer, task: tuple[list[str], bool] | None, where: str) -> None:
    """The generator must speak the task model's word pieces, cased as the task model's are."""
    if task is None:
        return
    vocabulary, lower_case = task
    mine = list(generator_tokenizer.vocabulary)
    if mine != vocabulary:
        if len(mine) != len(vocabulary):
            detail = f"{len(mine)} tokens against the task model's {len(vocabulary)}"
        else:
            i = next(i for i, (a, b) in enumerate(zip(mine, vocabulary)) if a != b)
            detail = f"token {i} is {mine[i]!r} there but {vocabulary[i]!r} in the task model's"
        raise CheckpointError(f"{where}: the generator's vocabulary differs from the task model's ({detail})")
    if bool(generator_tokenizer.lower_case) != lower_case:
        casing = {True: "uncased", False: "cased"}
        raise CheckpointError(f"{where}: the generator is {casing[bool(generator_tokenizer.lower_case)]} but the "
                              f"task model is {casing[lower_case]}")


@dataclasses.dataclass
class _Copy:
    example: int  # index into the examples
    copy: int
    positions: list[tuple[int, int]]  # (segment, token index) of every masked piece, in order
    samples: list[int] | None = None


class GeneratorAugmenter:
    """Makes `copies` generator-resampled copies of text examples (see the module docstring)."""

    def __init__(self, generator, tokenizer: ElectraTokenizer, seq_length: int, rate: float, copies: int,
                 seed: int, batch_size: int = 32) -> None:
        self.generator, self.tokenizer = generator, tokenizer
        self.seq_length, self.rate, self.copies, self.seed = seq_length, rate, copies, seed
        self.batch_size = batch_size
        vocab = tokenizer.vocabulary
        self.banned = np.array([bool(_SPECIAL.match(t)) for t in vocab])
        self.continuation = np.array([t.startswith("##") for t in vocab])

    # ----------------------------------------------------------------- public
    def augment(self, examples: list) -> tuple[list, dict[str, Any]]:
        """(each example followed by its copies, statistics); examples without text to mask get none."""
        if not examples:
            return examples, {"copies_made": 0}
        plans, segments = self.draw_positions(examples)
        self._sample(plans, segments)
        by_example: dict[int, list] = {}
        masked, maskable = 0, 0
        for plan in plans:
            original = examples[plan.example]
            texts = [original.text_a, original.text_b]
            for s in (0, 1):
                chosen = [(t, x) for (seg, t), x in zip(plan.positions, plan.samples) if seg == s]
                if chosen:
                    texts[s] = self._splice(texts[s], segments["ids"][plan.example][s],
                                            segments["starts"][plan.example][s], segments["ends"][plan.example][s],
                                            chosen)
            copy = dataclasses.replace(original, guid=f"{original.guid}-aug{plan.copy}", text_a=texts[0],
                                       text_b=texts[1])
            by_example.setdefault(plan.example, []).append(copy)
            masked += len(plan.positions)
            maskable += sum(segments["windows"][plan.example])
        out = []
        for i, example in enumerate(examples):
            out.append(example)
            out += by_example.get(i, [])
        stats = {"copies_made": len(plans), "masked_fraction": masked / maskable if maskable else 0.0}
        return out, stats

    def draw_positions(self, examples: list) -> tuple[list[_Copy], dict[str, list]]:
        """(one plan per copy: the (segment, token index) pieces it masks; the examples' tokens and windows)."""
        segments = self._tokenize(examples)
        plans: list[_Copy] = []
        for i, windows in enumerate(segments["windows"]):
            words = _words(windows, segments["ids"][i], self.continuation)
            n = sum(windows)
            if n == 0:
                continue
            k = mask_count(n, self.rate)
            for c in range(self.copies):
                plans.append(_Copy(i, c, _choose(words, k, self._rng(i, c, stream=0))))
        return plans, segments

    # -------------------------------------------------------------- helpers
    def _rng(self, example: int, copy: int, stream: int) -> np.random.Generator:
        """Copy `copy` of example `example`: stream 0 picks the positions, stream 1 draws the samples."""
        return np.random.default_rng((self.seed % 2**32, example, copy, stream))

    def _tokenize(self, examples: list) -> dict[str, list]:
        """Ids and byte offsets of both segments, and how many pieces of each the task model keeps."""
        from keras_electra.tasks.preprocessors import trim_pair_lengths

        ids, starts, ends = [[], []], [[], []], [[], []]
        for s, field in enumerate(("text_a", "text_b")):
            texts = [getattr(e, field) or "" for e in examples]
            tok, start, end = self.tokenizer.tokenize_with_offsets(texts)
            ids[s], starts[s], ends[s] = tok.to_list(), start.to_list(), end.to_list()
        len_a = np.array([len(x) for x in ids[0]])
        len_b = np.array([len(x) for x in ids[1]])
        pairs = np.array([e.text_b is not None for e in examples])
        single = np.minimum(len_a, self.seq_length - 2)
        pair_a, pair_b = (np.asarray(x) for x in trim_pair_lengths(len_a, len_b, self.seq_length - 3))
        keep_a = np.where(pairs, pair_a, single)
        keep_b = np.where(pairs, pair_b, 0)
        return {"ids": list(zip(ids[0], ids[1])),
                "starts": list(zip(starts[0], starts[1])), "ends": list(zip(ends[0], ends[1])),
                "windows": [(int(a), int(b)) for a, b in zip(keep_a, keep_b)], "pairs": pairs}

    def _sample(self, plans: list[_Copy], segments: dict) -> None:
        """Fill `plan.samples`: one Gumbel-max draw of the generator at every masked position."""
        from keras import ops

        if not plans:
            return
        tok = self.tokenizer
        width = max(len(p.positions) for p in plans)  # one shape for every batch: one trace
        for first in range(0, len(plans), self.batch_size):
            batch = plans[first:first + self.batch_size]
            token_ids = np.full((self.batch_size, self.seq_length), tok.pad_id, np.int32)
            segment_ids = np.zeros_like(token_ids)
            padding = np.zeros_like(token_ids)
            positions = np.zeros((self.batch_size, width), np.int32)
            for row, plan in enumerate(batch):
                (ids_a, ids_b) = segments["ids"][plan.example]
                keep_a, keep_b = segments["windows"][plan.example]
                offsets = (1, 2 + keep_a)
                sequence = [tok.cls_id, *ids_a[:keep_a], tok.sep_id]
                if segments["pairs"][plan.example]:
                    sequence += [*ids_b[:keep_b], tok.sep_id]
                token_ids[row, :len(sequence)] = sequence
                segment_ids[row, 2 + keep_a:len(sequence)] = 1
                padding[row, :len(sequence)] = 1
                for j, (s, t) in enumerate(plan.positions):
                    positions[row, j] = offsets[s] + t
                    token_ids[row, offsets[s] + t] = tok.mask_id
            inputs = {"token_ids": token_ids, "segment_ids": segment_ids, "padding_mask": padding}
            logits = ops.convert_to_numpy(self.generator(inputs, mask_positions=positions, training=False))
            logits = np.where(self.banned, -np.inf, logits.astype(np.float32))
            for row, plan in enumerate(batch):
                rng = self._rng(plan.example, plan.copy, stream=1)
                k = len(plan.positions)
                uniform = rng.uniform(np.finfo(np.float32).tiny, 1.0, size=(k, logits.shape[-1]))
                gumbel = -np.log(-np.log(uniform))
                plan.samples = [int(x) for x in np.argmax(logits[row, :k] + gumbel, axis=-1)]

    def _splice(self, text: str, ids: list[int], starts: list[int], ends: list[int],
                chosen: list[tuple[int, int]]) -> str:
        """`text` with the pieces at the chosen token indices replaced by the sampled ones.

        A replaced word that punctuation alone separated from its neighbours ("4.4", "it's") gets
        spaces around it, so that the copy keeps the original's word boundaries.
        """
        data = text.encode("utf-8")

        def separate(t: int, at: int) -> bool:  # token t starts a word and touches the byte at `at`
            return (0 <= t < len(ids) and not self.continuation[ids[t]] and 0 <= at < len(data)
                    and not chr(data[at]).isspace())

        chosen = sorted(chosen)
        runs: list[list[tuple[int, int]]] = []
        for t, x in chosen:  # neighbouring pieces form one span (a word, or a few)
            if runs and runs[-1][-1][0] == t - 1:
                runs[-1].append((t, x))
            else:
                runs.append([(t, x)])
        pieces, cursor = [], 0
        for run in runs:
            first, last = run[0][0], run[-1][0]
            start, end = starts[first], ends[last]
            word = self._decode([x for _, x in run])
            word = (" " if separate(first, start - 1) else "") + word + (" " if separate(last + 1, end) else "")
            pieces += [data[cursor:start], word.encode("utf-8")]
            cursor = end
        pieces.append(data[cursor:])
        return b"".join(pieces).decode("utf-8")

    def _decode(self, ids: list[int]) -> str:
        """Word pieces → text: a ## piece joins the previous one, others start a new word."""
        out = ""
        for i, token_id in enumerate(ids):
            token = self.tokenizer.vocabulary[token_id]
            if token.startswith("##"):
                out += token[2:]
            else:
                out += (" " if i else "") + token
        return out


def mask_count(n: int, rate: float) -> int:
    """Pieces masked among n: pretraining's round(n · p) (half to even), at least 1, at most n."""
    return min(n, max(1, int(np.round(n * rate))))


def _words(windows: tuple[int, int], ids: tuple[list[int], list[int]], continuation: np.ndarray) -> list[list]:
    """Whole words inside the window: a piece starting with ## belongs to the word before it."""
    words: list[list[tuple[int, int]]] = []
    for s in (0, 1):
        for t in range(windows[s]):
            if t and continuation[ids[s][t]] and words and words[-1][-1] == (s, t - 1):
                words[-1].append((s, t))
            else:
                words.append([(s, t)])
    return words


def _choose(words: list[list[tuple[int, int]]], k: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """Exactly k pieces: whole words in random order while they fit (BERT's whole-word masking), then, if
    the count falls short, the first pieces of one more word (every word left is longer than what is missing)."""
    chosen: list[tuple[int, int]] = []
    left: list[int] = []
    for w in rng.permutation(len(words)):
        if len(chosen) + len(words[w]) <= k:
            chosen += words[w]
        else:
            left.append(int(w))
    if len(chosen) < k:
        chosen += words[left[int(rng.integers(len(left)))]][:k - len(chosen)]
    return sorted(chosen)


