"""Final answers (`data/_answers`): normalised, extracted by pattern, coded per input."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.data import answer_codes, extract_answer, normalise_answer


@pytest.mark.parametrize(
    ("raw", "want"),
    [
        ("18", "18"),
        ("18.0", "18"),
        (18.0, "18"),
        (" $1,800.00. ", "1800"),
        ("-0.5", "-0.5"),
        ("50%", "50%"),
        ("**Paris**", "paris"),
        ("The  Eiffel Tower", "the eiffel tower"),
        ("", None),
        ("  ...  ", None),
        (None, None),
    ],
)
def test_answers_are_normalised(raw: object, want: str | None) -> None:
    assert normalise_answer(raw) == want


def test_the_last_match_is_the_answer() -> None:
    text = "Step 1: the answer is 3? No. Finally, the answer is 42."
    assert extract_answer(text, r"answer is\s*(\S+)") == "42"
    assert extract_answer(text, r"\d+") == "42"  # no group: the whole match
    assert extract_answer("no number here", r"\d+") is None
    assert extract_answer(None, r"\d+") is None


def test_codes_are_equal_for_equal_answers_within_a_row() -> None:
    codes = answer_codes([["7", "7.0", None, "8"], ["a", "b", "A", ""]])
    np.testing.assert_array_equal(codes, [[0, 0, -1, 1], [0, 1, 0, -1]])
    assert codes.dtype == np.int32
    with pytest.raises(ValueError, match="same number of models"):
        answer_codes([["1", "2"], ["1"]])


def test_routing_files_carry_answers(tmp_path) -> None:
    path = tmp_path / "d.jsonl.gz"
    lines = [
        {"instruction": "2+2", "outputs": {"a": "4", "b": "5", "c": "four"},
         "answers": {"a": "4", "b": 5, "c": None}},
        {"instruction": "3+3", "outputs": {"a": "6", "b": "6", "c": "6"}},
    ]  # fmt: skip
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(x) for x in lines))
    data = sj.read_routing(path)
    assert data.answers == [["4", "5", None], [None, None, None]]
    np.testing.assert_array_equal(data.answer_codes(), [[0, 1, -1], [-1, -1, -1]])
    sj.data.write_routing(tmp_path / "back.jsonl", data)
    assert sj.read_routing(tmp_path / "back.jsonl").answers == data.answers
    assert data.subset(["c", "a", "b"]).answers[0] == [None, "4", "5"]


def test_answers_are_extracted_from_outputs() -> None:
    data = sj.data.RoutingData(
        ["q1", "q2"], ("a", "b", "c"), [["so #### 12", "#### 12.0", "none"], ["#### 3"] * 3]
    )
    extracted = data.with_answers(r"####\s*(\S+)")
    assert extracted.answers == [["12", "12", None], ["3", "3", "3"]]
    assert data.answer_codes() is None


def test_malformed_answers_are_named(tmp_path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text(
        json.dumps(
            {"instruction": "x", "outputs": {"a": "1", "b": "2", "c": "3"}, "answers": {"a": [1]}}
        )
        + "\n"  # fmt: skip
        + json.dumps(
            {"instruction": "y", "outputs": {"a": "1", "b": "2", "c": "3"}, "answers": {"z": "1"}}
        )
        + "\n"  # fmt: skip
    )
    with pytest.raises(sj.data.DataError) as e:
        sj.read_routing(path)
    assert "bad.jsonl:1: answer of model 'a'" in str(e.value)
    assert "bad.jsonl:2: 'answers' has model 'z'" in str(e.value)
