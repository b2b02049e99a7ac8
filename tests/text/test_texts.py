"""Texts before the model: the paper's cleaning of generations, and long texts cut into
word-aligned pieces that fit the model."""

from __future__ import annotations

import pytest
from text_samples import LONG

from smoothie_jax.text._texts import clean_generation, split_long


def test_whole_text_pieces_fit_and_cover_the_text(minilm: object) -> None:
    st = minilm
    pieces, owner, weight = split_long(st, [LONG, "tiny"])
    limit = st.max_seq_length - 2  # [CLS] and [SEP]
    assert owner == [0] * (len(pieces) - 1) + [1]
    assert all(w <= limit for w in weight)
    ids = [len(st.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in pieces[:-1]]
    assert ids == weight[:-1], "a piece re-tokenises to a different length"
    assert sum(weight[:-1]) == len(st.tokenizer(LONG, add_special_tokens=False)["input_ids"])
    assert " ".join(pieces[:-1]).split() == LONG.split()


@pytest.mark.parametrize(
    ("raw", "clean"),
    [
        ("<s> Paris</s>", "Paris"),
        ("<pad><pad>The answer is 4.<|endoftext|>", "The answer is 4."),
        ("  \n\nfirst line\nsecond line", "first line"),
        ("Yes.<|eot_id|><|start_header_id|>user<|end_header_id|>", "Yes."),
        ("a</s>b", "a"),  # the paper's code gives "ab"; text after end-of-text is dropped
        ("</s>Paris", "Paris"),
        ("[PAD][CLS] hello [SEP]", "hello"),
        ("line one\\nline two", "line one"),  # literal backslash-n, as in the paper's code
        ("<|im_end|>\n<pad>", ""),
        ("a < b and c > d", "a < b and c > d"),  # ordinary angle brackets stay
    ],
)
def test_clean_generation(raw: str, clean: str) -> None:
    assert clean_generation(raw) == clean
