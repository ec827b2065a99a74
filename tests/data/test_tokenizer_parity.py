"""Our ids and offsets equal Hugging Face's `BertTokenizer` on real English and Chinese text.

Reference: transformers 5.x `BertTokenizer(vocab=..., do_lower_case=...)` (the Rust
`tokenizers` backend with BERT's normaliser). More than 5,000 real lines are compared:
novels and GLUE with the uncased and the cased vocabularies, ChnSentiCorp and CLUENER
with the Chinese vocabulary, plus lines made to hit the edge cases (accents, full-width
forms, control characters, words over 100 bytes).

One known difference is left out on purpose: FastBertTokenizer turns a word of more than
100 *bytes* into [UNK], Hugging Face a word of more than 100 *characters*. They agree on
ASCII; a non-ASCII word of 51-100 characters (say 60 unstripped "é") is [UNK] for us only.
"""

from __future__ import annotations

import csv
import itertools
import json

import pytest

from keras_electra.data.corpus import read_lines
from keras_electra.data.tokenizer import ElectraTokenizer
from tests.conftest import GLUE, NOVELS, SHARED_DATA, VOCAB_CASED, VOCAB_CHINESE, VOCAB_UNCASED

transformers = pytest.importorskip("transformers")


def novel_lines(per_file: int = 40, every: int = 6) -> list[str]:
    lines: list[str] = []
    for path in sorted(NOVELS.glob("*.txt"))[::every]:
        text = [line.strip() for line in read_lines(path) if line.strip()]
        lines.extend(text[200 : 200 + per_file])
    return lines


def tsv_column(path, column: int, count: int) -> list[str]:
    with open(path, encoding="utf-8", newline="") as handle:
        rows = list(itertools.islice(csv.reader(handle, delimiter="\t", quoting=csv.QUOTE_NONE), count + 1))
    return [row[column] for row in rows[1:] if len(row) > column and row[column].strip()]


def english_lines() -> list[str]:
    return (
        novel_lines()
        + tsv_column(GLUE / "SST-2" / "dev.tsv", 0, 400)
        + tsv_column(GLUE / "MRPC" / "dev.tsv", 3, 300)
        + tsv_column(GLUE / "CoLA" / "dev.tsv", 3, 300)
        + tsv_column(GLUE / "diagnostic" / "diagnostic.tsv", 1, 500)
        + tsv_column(GLUE / "QNLI" / "dev.tsv", 2, 200)
    )


def chinese_lines() -> list[str]:
    reviews = tsv_column(SHARED_DATA / "chnsenticorp" / "dev.tsv", 1, 800)
    with open(SHARED_DATA / "cluener2020" / "dev.json", encoding="utf-8") as handle:
        entities = [json.loads(line)["text"] for line in itertools.islice(handle, 800)]
    return reviews + entities


EDGE_LINES = [
    "Café naïve résumé Ångström Æsir ﬁne Straße İstanbul Øre",  # accents, ligature, sharp s, dotted I
    "ΟΔΟΣ ΣΟΦΟΣ σοφός Ωmega Kelvin K",  # Greek final sigma, ohm and Kelvin signs
    "ＡＢＣ，２０２０年。「引号」（括号）！？",  # full-width forms stay full-width in BERT
    "a" * 101 + " short " + "antidisestablishmentarianism" * 4 + " " + "b" * 100,  # over 100 bytes → [UNK]
    "ab\x01cd ab\x7fcd ab\ufffdcd a\u200bb ab\x00cd tab\there",  # control and format characters are deleted
    "emoji 😀 and symbols © ® ™ § ¶ — – … « » ‘ ’ “ ” ½ ² ³",
    "日本語のテキスト、한국어 텍스트 and 中文 mixed with English.",
    "don't can't I'm we'll O'Neill e.g. U.S.A. $3.50 50% #hashtag @user http://example.com/a?b=c",
    "",
    "   ",
]


def compare(lines: list[str], vocab, lower_case: bool) -> int:
    ours = ElectraTokenizer(vocab, lower_case=lower_case)
    reference = transformers.BertTokenizer(vocab=str(vocab), do_lower_case=lower_case)
    ids, starts, ends = ours.tokenize_with_offsets(lines)
    plain = ours.tokenize(lines).to_list()
    assert plain == ids.to_list()
    mismatches = []
    for line, row, row_starts, row_ends in zip(lines, plain, starts.to_list(), ends.to_list()):
        expected = reference(line, add_special_tokens=False, return_offsets_mapping=True)
        raw = line.encode("utf-8")
        # Our offsets are bytes, Hugging Face's are characters.
        chars = [(len(raw[:s].decode()), len(raw[:e].decode())) for s, e in zip(row_starts, row_ends)]
        if row != expected["input_ids"] or chars != [tuple(o) for o in expected["offset_mapping"]]:
            mismatches.append((line[:80], reference.convert_ids_to_tokens(expected["input_ids"])[:12],
                               [ours.id_to_token(i) for i in row[:12]]))
    assert not mismatches, f"{len(mismatches)} of {len(lines)} lines differ, e.g. {mismatches[:3]}"
    return len(lines)


def test_uncased_english_matches_hugging_face():
    lines = english_lines() + EDGE_LINES
    assert compare(lines, VOCAB_UNCASED, lower_case=True) >= 2000


def test_cased_english_matches_hugging_face():
    lines = english_lines()[::2] + EDGE_LINES
    assert compare(lines, VOCAB_CASED, lower_case=False) >= 1000


def test_chinese_matches_hugging_face():
    lines = chinese_lines() + EDGE_LINES
    assert compare(lines, VOCAB_CHINESE, lower_case=True) >= 1500


def test_edge_lines_really_hit_the_edge_cases():
    """The edge lines exercise what they claim: [UNK] for long words, deleted control characters."""
    tokenizer = ElectraTokenizer(VOCAB_UNCASED)
    long_words = tokenizer.tokenize(EDGE_LINES[3]).numpy().tolist()
    assert long_words.count(tokenizer.unk_id) == 2  # "a"·101 and the 112-letter word; "b"·100 is split
    assert long_words[-1] != tokenizer.unk_id
    control = tokenizer.tokenize("ab\x00cd").numpy().tolist()
    assert control == tokenizer.tokenize("abcd").numpy().tolist()
    chinese = ElectraTokenizer(VOCAB_CHINESE)
    full_width = chinese.tokenize("，").numpy().tolist()
    assert full_width == [chinese.token_to_id("，")] and full_width != [chinese.token_to_id(",")]
