"""Final answers (`data/_answers`): normalised, extracted by pattern or found in their usual
forms without one, decided on per file, and coded per input."""

from __future__ import annotations

import gzip
import json

import numpy as np
import pytest

import smoothie_jax as sj
from smoothie_jax.data import (
    AnswerForm,
    answer_codes,
    detect_answers,
    extract_answer,
    extract_answers,
    normalise_answer,
)
from smoothie_jax.data._answers import MIN_AGREEMENT, MIN_EXPLICIT_SHARE, MIN_FOUND_SHARE

J, B, H, S, OPT, N = (
    AnswerForm.JSON,
    AnswerForm.BOXED,
    AnswerForm.HASHES,
    AnswerForm.STATEMENT,
    AnswerForm.OPTION,
    AnswerForm.NUMBER,
)


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
        ("-$21.00", "-21"),
        ("\u221212", "-12"),
        # Python literals (CRUXEval's answers): one spelling of quotes and spaces.
        ("'CW'", "cw"),
        ("['a', \"b\"]", normalise_answer('["a","b"]')),
        ("{'x': 1}", normalise_answer('{"x":1}')),
        ("[]", "[]"),  # an empty list or string written as a literal is an answer
        ("''", "''"),
        ("'.'", "'.'"),
    ],
)
def test_answers_are_normalised(raw: object, want: str | None) -> None:
    assert normalise_answer(raw) == want


@pytest.mark.parametrize(
    ("raw", "want"),
    [("", "''"), ("   ", "''"), ("''", "''"), (".", "."), (" !  ? ", "! ?"), (None, None)],
)
def test_a_given_answer_field_is_an_answer_however_short(raw: object, want: str | None) -> None:
    """CRUXEval's functions return '' or '.': a file's answer field is what the model
    said (null is none); only an extraction from free text treats it as nothing found."""
    assert normalise_answer(raw, given=True) == want
    assert normalise_answer(want, given=True) == want  # written back and read: the same


def test_the_last_match_is_the_answer() -> None:
    text = "Step 1: the answer is 3? No. Finally, the answer is 42."
    assert extract_answer(text, r"answer is\s*(\S+)") == "42"
    assert extract_answer(text, r"\d+") == "42"  # no group: the whole match
    assert extract_answer("no number here", r"\d+") is None
    assert extract_answer(None, r"\d+") is None


def test_codes_are_equal_for_equal_answers_within_a_row() -> None:
    codes = answer_codes([["7", "7.0", None, "8"], ["a", "", "A", "''"]])
    np.testing.assert_array_equal(codes, [[0, 0, -1, 1], [0, 1, 0, 1]])
    assert codes.dtype == np.int32
    with pytest.raises(ValueError, match="same number of models"):
        answer_codes([["1", "2"], ["1"]])


def test_routing_files_carry_answers(tmp_path) -> None:
    path = tmp_path / "d.jsonl.gz"
    lines = [
        {"instruction": "2+2", "outputs": {"a": "4", "b": "5", "c": "four"},
         "answers": {"a": "4", "b": 5, "c": None}},
        {"instruction": "3+3", "outputs": {"a": "6", "b": "6", "c": "6"}},
        {"instruction": "''[:0]", "outputs": {"a": "''", "b": "'x'", "c": ""},
         "answers": {"a": "", "b": "x", "c": None}},
    ]  # fmt: skip
    with gzip.open(path, "wt") as f:
        f.write("\n".join(json.dumps(x) for x in lines))
    data = sj.data.read_routing(path)
    assert data.answers == [["4", "5", None], [None, None, None], ["''", "x", None]]
    np.testing.assert_array_equal(data.answer_codes(), [[0, 1, -1], [-1, -1, -1], [0, 1, -1]])
    sj.data.write_routing(tmp_path / "back.jsonl", data)
    assert sj.data.read_routing(tmp_path / "back.jsonl").answers == data.answers
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
        sj.data.read_routing(path)
    assert "bad.jsonl:1: answer of model 'a'" in str(e.value)
    assert "bad.jsonl:2: 'answers' has model 'z'" in str(e.value)


@pytest.mark.parametrize(
    ("text", "answer", "form"),
    [
        # JSON "answer": whole, fenced, embedded in prose; ZeroEval's raw newlines in strings.
        ('{"reasoning": "9 * 2 = 18", "answer": "18"}', "18", J),
        ('Here you go:\n```json\n{"reasoning": "a\nb", "answer": "$1,800"}\n```\nDone.', "1800", J),
        ('Sure! {"answer": 4, "note": "easy"} is my reply, and 7 is not.', "4", J),
        ('{"reasoning": "...", "answer": "[\'a\', \'b\']"}', normalise_answer('["a", "b"]'), J),
        ('{"answer": \\"E jI\\"\n}', "e ji", J),  # escaped quotes outside a string
        ('{"reasoning": "x", "answer": "55 meters per second"}', "55", J),  # units dropped
        ('{"reasoning": "x", "answer": "120 + 30 = 150"}', "150", J),  # an equation's result
        ('{"reasoning": "returns the empty string", "answer": ""}', "''", J),  # CRUXEval's
        ('{"reasoning": "x", "answer": "."}', ".", J),  # an answer field is given, however short
        # \boxed: the last one, nested braces kept whole.
        ("First \\boxed{1}, then $\\boxed{\\frac{3}{4}}$.", normalise_answer("\\frac{3}{4}"), B),
        ("So $\\boxed{\\text{True}}$.", "true", B),
        ("\\boxed{1,234}", "1234", B),
        # GSM8K's "#### X".
        ("16 - 7 = 9 eggs, 9 * 2 = 18.\n#### 18", "18", H),
        ("#### -3\n\nThat is all.", "-3", H),  # a number, though not on the last line
        # "The answer is X", "Answer: X", in the closing sentence.
        ("So she pays $1,234.50 in all. The answer is $1,234.50.", "1234.5", S),
        ("It fell 5 degrees below zero.\n\nThe answer is -5.", "-5", S),
        ("The answer is \u22125.", "-5", S),
        ("**Answer:** 25 minutes", "25", S),
        ("The final answer is: **Paris**. Let me know if you need more!", "paris", S),
        ("Final Answer: The final answer is $18$. I hope it is correct.", "18", S),
        # A final choice, and "the answer is (B)".
        ("The answer is (B) Paris.", "b", OPT),
        ("Answer: C", "c", OPT),
        ("After weighing them, the correct option is D.", "d", OPT),
        ("I would choose option (C) because it is cheaper.", "c", OPT),
        ("Both have merits.\n\n(B)", "b", OPT),
        # The last number of a short final sentence.
        ("So 3 + 4 = 7.", "7", N),
        ("She makes $1,800 a year.", "1800", N),
        ("In total it costs -$5.", "-5", N),
        ("It is 4.5 metres.", "4.5", N),
    ],
)
def test_each_form_is_found(text: str, answer: str, form: AnswerForm) -> None:
    assert extract_answers([text]) == ([answer], [form])


@pytest.mark.parametrize(
    "text",
    [
        None,
        "",
        "   ",
        "Plain prose with no number at all.",
        # "answer" mid-text, but the output ends elsewhere.
        "The answer is 42, but that is only a joke from a novel. In reality, the meaning of "
        "life is a deep question that thinkers have tried to address across many centuries.",
        "The answer is not simple: it depends on what you value most in your life.",
        'He added quotes around "Answer is:" to make it a proper string',
        # An option letter inside a sentence is not a final choice.
        "Plan (A) is cheaper, while plan (B) is faster; which one suits you depends on you.",
        "Option B could work too, although I would weigh the costs of each plan carefully first.",
        # Markdown headings are not GSM8K answers; a number far from the end is not final.
        "#### Step 1\nDo this.\n#### Step 2\nDo that and finish.",
        "#### 3.1 Prepare the case\nOpen it gently.",
        "We have 12 apples.\n\nI hope this helps!",
        "The total of everything that we have counted so far, across all the boxes on every "
        "shelf, comes to 12.",  # the final sentence is too long to be a bare answer
        "The code ends with a fence.\n```python\nreturn 0\n```",
        "Ratios such as 3/4 are not read as numbers.",
        "Three tips:\n1. Sleep well.\n2. Walk daily.",  # a list's last item, not a sum
    ],
)
def test_prose_has_no_answer(text: str | None) -> None:
    assert extract_answers([text]) == ([None], [None])


def test_explicit_forms_come_before_the_bare_final_number() -> None:
    texts = [
        '{"answer": "5"}\nThe answer is 6.',  # JSON first
        "\\boxed{7}\nThe answer is 8.",  # then \boxed
        "#### 9\nThe answer is 10.",
        "Answer: (B)\nIt has 2 legs.",  # an option letter stated, not the final number
        "The answer is 12 apples. I counted 13.",  # the statement, not the final number
    ]
    assert extract_answers(texts) == (["5", "7", "9", "b", "12"], [J, B, H, OPT, S])


def test_chat_prose_is_off() -> None:
    prose = [
        "Rivers carve valleys over millions of years, shaping the land around them.",
        "Bread rises because yeast releases gas; knead it well and let it rest.",
        "The answer is that it depends on what you enjoy. Many people like both options, "
        "and there is no single right choice for everyone who asks this question.",
        "Here are 3 tips:\n1. Sleep well.\n2. Eat well.\n3. Walk daily.",
    ]
    found = detect_answers([prose[i:] + prose[:i] for i in range(4)])
    assert not found.on
    assert found.explicit_share < MIN_EXPLICIT_SHARE
    assert "not used" in found.describe()


def test_json_answers_are_on() -> None:
    rows = [
        [f'{{"reasoning": "r{j}", "answer": "{i + (j == 2)}"}}' for j in range(3)] for i in range(6)
    ]
    found = detect_answers(rows)
    assert found.on and found.shares == {J: 1.0}
    assert found.answers[0] == ["0", "0", "1"] and found.forms[0] == [J, J, J]
    assert found.agreement == pytest.approx(2 / 3) and found.n_outputs == 18
    assert found.describe() == (
        "answer forms found: json 100% of 18 outputs; models agree on 67%; used"
    )


def test_short_numeric_replies_are_on_only_where_models_agree() -> None:
    agree = [[f"It is {i}.", f"That is {i} cm.", f"It is {i + 1}."] for i in range(10)]
    found = detect_answers(agree)
    assert found.on and found.shares == {N: 1.0} and found.explicit_share == 0.0
    # Numbers that never repeat across models are incidental (the CLI tests' generated files).
    never = [[f"Model {j} on rivers: point {i} of {(i * 7 + j) % 11}." for j in range(4)]
             for i in range(10)]  # fmt: skip
    found = detect_answers(never)
    assert not found.on and sum(found.shares.values()) == 1.0
    assert found.agreement < MIN_AGREEMENT
    assert f"models agree on less than {MIN_AGREEMENT:.0%}" in found.describe()


def test_explicit_forms_on_a_minority_are_off() -> None:
    answered = ["The answer is 4.", "Answer: 4", "It is 4 I think, or maybe five."]
    chat = ["I would rather talk about gardening.", "Lovely weather today!", "Hmm."]
    rows = [answered if i < 2 else chat for i in range(6)]
    found = detect_answers(rows)
    assert not found.on
    assert found.explicit_share < MIN_EXPLICIT_SHARE
    assert sum(found.shares.values()) < MIN_FOUND_SHARE


def test_missing_outputs_are_not_counted() -> None:
    rows = [["Answer: 1", None, "Answer: 1"], ["Answer: 2", "Answer: 2", None]]
    found = detect_answers(rows)
    assert found.on and found.n_outputs == 4 and found.shares == {S: 1.0}
    assert found.answers == [["1", None, "1"], ["2", "2", None]]
    assert found.forms[0][1] is None


def test_the_shipped_quiz_stays_off() -> None:
    data = sj.data.read_routing("examples/data/quiz.jsonl")
    found = detect_answers(data.outputs)
    assert not found.on and 0 < found.explicit_share < MIN_EXPLICIT_SHARE
