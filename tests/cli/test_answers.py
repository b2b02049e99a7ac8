"""Where a command's final answers come from (`cli._inputs.answer_source`): --no-answers,
else --answer-pattern, else the data's "answers" field, else detection where the file-level
decision is on; and the one line the report prints about it."""

from __future__ import annotations

import argparse

import numpy as np
import pytest

from smoothie_jax.cli._exit import EXIT_USAGE
from smoothie_jax.cli._inputs import answer_source, answers_of
from smoothie_jax.cli._main import build_parser, main
from smoothie_jax.data import RoutingData

# Every output states its answer as JSON; a pattern finds another number ("=> N").
OUTPUTS = [
    ['{"answer": "4"} => 1', '{"answer": "4"} => 2', '{"answer": "5"} => 2'],
    ['{"answer": "7"} => 3', '{"answer": "6"} => 3', '{"answer": "7"} => 3'],
]
FIELD = [["4", "5", "5"], [None, "6", "6"]]
CHAT = [
    ["Rivers shape valleys.", "Bread needs time to rise.", "Chess rewards patience."],
    ["Moths love lamps.", "Glaciers move slowly.", "Violins need rosin."],
]


def args(pattern: str | None = None, no_answers: bool = False) -> argparse.Namespace:
    return argparse.Namespace(answer_pattern=pattern, no_answers=no_answers)


def data(outputs: list[list[str]] = OUTPUTS, answers: list | None = None) -> RoutingData:
    return RoutingData(["q1", "q2"], ("a", "b", "c"), outputs, answers=answers)


def test_a_pattern_comes_first() -> None:
    source = answer_source(data(answers=FIELD), args(r"=> (\d)"))
    assert source.source == "pattern"
    np.testing.assert_array_equal(source.codes, [[0, 1, 1], [0, 0, 0]])
    assert source.describe() == (
        "Answers: extracted with --answer-pattern ('=> (\\\\d)' matched 6 of 6 outputs)."
    )


def test_then_the_answers_field() -> None:
    source = answer_source(data(answers=FIELD), args())
    assert source.source == "field"
    np.testing.assert_array_equal(source.codes, [[0, 1, 1], [-1, 0, 0]])
    assert source.describe() == 'Answers: the data\'s "answers" field (5 of 6 filled in).'


def test_then_detection_where_it_is_on() -> None:
    source = answer_source(data(), args())
    assert source.source == "detected"
    np.testing.assert_array_equal(source.codes, [[0, 0, 1], [0, 1, 0]])
    assert source.describe().startswith("Answers: detected in the outputs (answer forms found:")
    assert "json 100% of 6 outputs" in source.describe()


def test_detection_off_gives_no_answers_and_says_why() -> None:
    source = answer_source(data(CHAT), args())
    assert source.codes is None and source.source == "none"
    assert "; not used: explicit forms on fewer than" in source.describe()


def test_no_answers_turns_off_the_field_and_detection() -> None:
    for given in (data(answers=FIELD), data()):
        source = answer_source(given, args(no_answers=True))
        assert (source.codes, source.source, source.detail) == (None, "none", "--no-answers")
        assert source.describe() == "Answers: none (--no-answers)."


def test_no_detection_where_route_takes_no_answers() -> None:
    """route --method local/global and --posterior vote on no answers: detection is not run
    there (a pattern or a field still is read, and route refuses it, as before)."""
    for method, posterior, why in [
        ("local", False, "--method local"),
        ("auto", True, "--posterior"),
    ]:
        route_args = argparse.Namespace(**vars(args()), method=method, posterior=posterior)
        source = answer_source(data(), route_args)
        assert source.codes is None and source.detail == f"not detected: {why} takes no answers"
        assert answer_source(data(answers=FIELD), route_args).source == "field"
    route_auto = argparse.Namespace(**vars(args()), method="auto", posterior=False)
    assert answer_source(data(), route_auto).source == "detected"
    evaluate_posterior = argparse.Namespace(**vars(args()), posterior=True)  # no --method
    assert answer_source(data(), evaluate_posterior).source == "detected"


def test_a_query_file_has_no_answers() -> None:
    queries = RoutingData(["q1", "q2"], ("a", "b", "c"))
    assert answer_source(queries, args()).detail == "no outputs"


def test_answers_of_still_gives_the_codes() -> None:
    np.testing.assert_array_equal(answers_of(data(), args()), answer_source(data(), args()).codes)
    assert answers_of(data(CHAT), args()) is None


def test_a_bad_pattern_is_named() -> None:
    with pytest.raises(ValueError, match=r"--answer-pattern '\(' is not a regular expression"):
        answer_source(data(), args("("))


@pytest.mark.parametrize("command", ["route", "evaluate", "label"])
def test_no_answers_is_an_option_of_each_command(command: str) -> None:
    extra = [] if command == "evaluate" else ["-o", "out.jsonl"]
    parsed = build_parser().parse_args([command, "d.jsonl", *extra, "--no-answers"])
    assert parsed.no_answers is True and parsed.answer_pattern is None


def test_no_answers_and_a_pattern_exclude_each_other(capsys: pytest.CaptureFixture) -> None:
    with pytest.raises(SystemExit) as info:
        main(["route", "d.jsonl", "--no-answers", "--answer-pattern", "x"])
    assert info.value.code == EXIT_USAGE
    assert "not allowed with argument" in capsys.readouterr().err
