"""Reading routing files: defaults, model order, the shared alpaca_eval file, the shipped
examples, and malformed files (every bad line reported at once, each naming its line)."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from routing_samples import GOOD, assert_same, sample_line, write_lines

from smoothie_jax.data import DataError, read_jsonl, read_routing, write_routing

ROOT = Path(__file__).parents[2]
SHARED = ROOT.parent / "shared/data/alpaca_eval_dev.jsonl.gz"
EXAMPLES = ROOT / "examples/data"


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.jsonl"
    path.write_bytes(gzip.compress(json.dumps(sample_line()).encode() + b"\n"))
    assert read_routing(path).outputs == [["hi", "hello", "hey"]]


def test_defaults_when_keys_absent(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "d.jsonl", ["", sample_line(), "   ", sample_line(scores={"a": 1})]
    )
    data = read_routing(path)
    assert data.ids == [2, 4]  # 1-based line numbers, blank lines skipped
    np.testing.assert_array_equal(data.scores, [[np.nan] * 3, [1.0, np.nan, np.nan]])
    assert data.scores.dtype == np.float64
    no_scores = read_routing(write_lines(tmp_path / "n.jsonl", [sample_line()]))
    assert no_scores.scores is None


def test_model_order_follows_first_line(tmp_path: Path) -> None:
    first = sample_line(outputs={"c": "1", "a": "2", "b": "3"})
    second = sample_line(outputs={"a": "x", "b": "y", "c": "z"}, scores={"b": 0.5})
    data = read_routing(write_lines(tmp_path / "o.jsonl", [first, second]))
    assert data.models == ("c", "a", "b")
    assert data.outputs == [["1", "2", "3"], ["z", "x", "y"]]
    np.testing.assert_array_equal(data.scores[1], [np.nan, np.nan, 0.5])


# --- the shared alpaca_eval file -----------------------------------------------------


@pytest.mark.skipif(not SHARED.exists(), reason=f"shared data file not present: {SHARED}")
def test_shared_alpaca_eval_file() -> None:
    data = read_routing(SHARED)
    assert len(data) == 805 and len(data.models) == 10
    assert data.scores.shape == (805, 10)
    finite = data.scores[np.isfinite(data.scores)]
    assert finite.size > 0 and finite.min() >= 0.0 and finite.max() <= 1.0
    assert data.ids == list(range(805))
    assert all("reference_output" in e for e in data.extra)
    assert (data.lengths() > 0).all()


# --- malformed files -----------------------------------------------------------------

MALFORMED = [
    # (lines, line number named, message fragment)
    ([GOOD, '{"instruction": "x",'], 2, "bad JSON"),
    ([GOOD, "[1, 2, 3]"], 2, "expected a JSON object, got list"),
    ([GOOD, '"just a string"'], 2, "expected a JSON object, got str"),
    ([GOOD, {"outputs": GOOD["outputs"]}], 2, "missing 'instruction'"),
    ([GOOD, sample_line(instruction=7)], 2, "'instruction' must be a string, got int"),
    ([sample_line(instruction="  ")], 1, "'instruction' is empty"),
    ([GOOD, {"instruction": "x"}], 2, "missing 'outputs'"),
    ([sample_line(outputs=["hi", "hello", "hey"])], 1, "'outputs' must be an object, got list"),
    ([GOOD, sample_line(outputs="hi")], 2, "'outputs' must be an object, got str"),
    ([GOOD, sample_line(outputs={"a": "1", "b": "2", "c": "3", "d": "4"})], 2, "has model 'd'"),
    (
        [sample_line(outputs={"a": "1", "b": "2"})],
        1,
        "2 models ['a', 'b']; Smoothie needs at least 3",
    ),
    (
        [sample_line(outputs={"a": "1", "b": "2", "c": 7})],
        1,
        "output of model 'c' must be a string",
    ),
    ([GOOD, sample_line(outputs={"a": "1", "b": ["2"], "c": "3"})], 2, "or null if it did not"),
    (
        ['{"instruction": "x", "outputs": {"a": "1", "a": "2", "b": "3", "c": "4"}}'],
        1,
        "duplicate key 'a'",
    ),
    ([GOOD, sample_line(scores={"a": "high"})], 2, "score of model 'a' must be a number or null"),
    ([sample_line(scores={"b": True})], 1, "score of model 'b' must be a number or null"),
    ([sample_line(scores=[1, 0, 0])], 1, "'scores' must be an object, got list"),
    ([sample_line(scores={"zz": 1.0})], 1, "'scores' has model 'zz'"),
    (
        ['{"instruction": "x", "outputs": {"a": "1", "b": "2", "c": "3"}, "scores": {"a": NaN}}'],
        1,
        "use null instead",
    ),
    ([sample_line(idx=3), sample_line(idx=3)], 2, "'idx' 3 repeats line 1"),
    ([sample_line(idx=[1])], 1, "'idx' must be an int or a string"),
]


@pytest.mark.parametrize(("lines", "line", "fragment"), MALFORMED)
def test_malformed_routing_file(tmp_path: Path, lines: list, line: int, fragment: str) -> None:
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataError) as info:
        read_routing(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_query_file_with_outputs_later(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "q.jsonl", [{"instruction": "x"}, GOOD])
    with pytest.raises(DataError, match=r"q\.jsonl:2: has 'outputs' but line 1 has none"):
        read_routing(path, require_outputs=False)
    path = write_lines(tmp_path / "s.jsonl", [{"instruction": "x", "scores": {}}])
    with pytest.raises(DataError, match=r"s\.jsonl:1: has 'scores' but no 'outputs'"):
        read_routing(path, require_outputs=False)


@pytest.mark.parametrize("content", [b"", b"\n  \n"])
def test_empty_file(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "empty.jsonl"
    path.write_bytes(content)
    with pytest.raises(DataError, match=rf"^{path}: file is empty"):
        read_routing(path)


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.jsonl"
    with pytest.raises(FileNotFoundError, match=f"{path}: no such file"):
        read_routing(path)


def test_corrupt_gzip_and_bad_encoding(tmp_path: Path) -> None:
    whole = gzip.compress(b"".join(json.dumps(GOOD).encode() + b"\n" for _ in range(200)))
    truncated = tmp_path / "cut.jsonl.gz"
    truncated.write_bytes(whole[: len(whole) // 2])
    with pytest.raises(DataError, match=rf"^{truncated}: corrupt gzip data after line \d+"):
        read_routing(truncated)
    latin = tmp_path / "latin.jsonl"
    latin.write_bytes(json.dumps(GOOD).encode() + b"\n" + b'{"instruction": "caf\xe9"}\n')
    with pytest.raises(DataError, match=rf"^{latin}:2: not UTF-8"):
        read_routing(latin)


# --- shipped examples ----------------------------------------------------------------


def test_quiz_examples_parse() -> None:
    test = read_routing(EXAMPLES / "quiz.jsonl")
    train = read_routing(EXAMPLES / "quiz_train.jsonl")
    queries = read_routing(EXAMPLES / "quiz_queries.jsonl", require_outputs=False)
    assert (len(test), len(train), len(queries)) == (60, 150, 30)
    models = ("careful", "calculator", "decent", "sloppy", "offtopic")
    assert test.models == train.models == models
    assert queries.outputs is None
    assert all(e["task"] and e["answer"] for e in queries.extra)
    for data in (test, train):
        assert set(np.unique(data.scores)) <= {0.0, 1.0}
        assert all(e["reference_output"] and e["task"] for e in data.extra)
        tasks = np.array([e["task"] for e in data.extra])
        words = np.isin(tasks, ["capital", "country", "definition", "opposite"])
        # Different models are best on different tasks: what per-input routing is for.
        assert data.models[data.scores[words].mean(0).argmax()] == "careful"
        assert data.models[data.scores[~words].mean(0).argmax()] == "calculator"
        assert data.models[data.scores.mean(0).argmax()] == "decent"
    everything = test.instructions + train.instructions + queries.instructions
    assert len(set(everything)) == len(everything)  # no question leaks between splits


# --- real files: empty and missing answers, every bad line at once (issue 11) --------


def test_empty_and_missing_outputs_read(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "sparse.jsonl",
        [
            GOOD,
            sample_line(outputs={"a": "", "b": "  ", "c": "x"}),  # empty answers: kept
            sample_line(outputs={"a": "1", "b": None, "c": "3"}),  # null: b did not answer
            sample_line(outputs={"a": "1", "c": "3"}, scores={"a": 1.0, "b": 0.5}),  # b absent
        ],
    )
    data = read_routing(path)
    assert data.outputs[1] == ["", "  ", "x"]
    assert data.outputs[2] == ["1", None, "3"] and data.outputs[3] == ["1", None, "3"]
    np.testing.assert_array_equal(
        data.observed, [[True] * 3, [True] * 3, [True, False, True], [True, False, True]]
    )
    assert data.lengths()[1:].tolist() == [[0, 2, 1], [1, 0, 1], [1, 0, 1]]
    with pytest.raises(ValueError, match="read-only"):
        data.observed[0, 0] = False
    # None outputs round-trip through the writer (as null).
    write_routing(tmp_path / "again.jsonl.gz", data)
    again = read_routing(tmp_path / "again.jsonl.gz")
    assert_same(again, data)
    np.testing.assert_array_equal(again.observed, data.observed)
    assert data.subset(["c", "b", "a"]).observed[2].tolist() == [True, False, True]


def test_unknown_model_on_a_later_line_is_refused(tmp_path: Path) -> None:
    path = write_lines(tmp_path / "bad.jsonl", [GOOD, sample_line(outputs={"a": "1", "zz": "2"})])
    with pytest.raises(
        DataError, match=r"bad\.jsonl:2: 'outputs' has model 'zz', absent from line 1"
    ):
        read_routing(path)


def test_every_bad_line_is_reported(tmp_path: Path) -> None:
    lines: list[object] = [GOOD]
    for i in range(30):  # 30 bad lines of three kinds, among good ones
        lines += [
            GOOD,
            ['{"instruction": ', sample_line(instruction=7), sample_line(scores={"a": "x"})][i % 3],
        ]
    path = write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataError) as info:
        read_routing(path)
    message = str(info.value).splitlines()
    assert message[0] == f"{path}: 30 problems; all of them, to fix in one pass:"
    assert len(message) == 1 + 20 + 1 and message[-1] == "... and 10 more problems"
    assert message[1].startswith(f"{path}:3: bad JSON")
    assert message[2].startswith(f"{path}:5: 'instruction' must be a string")
    assert message[3].startswith(f"{path}:7: score of model 'a'")
    assert len(info.value.problems) == 30
    with pytest.raises(DataError, match="2 problems"):
        read_jsonl(write_lines(tmp_path / "two.jsonl", ["[", GOOD, "{"]))


def test_a_bad_first_line_does_not_hide_the_others(tmp_path: Path) -> None:
    path = write_lines(
        tmp_path / "bad.jsonl", ["{", GOOD, sample_line(outputs={"a": "1", "q": "2"})]
    )
    with pytest.raises(DataError) as info:
        read_routing(path)
    assert [p.split(": ")[0] for p in info.value.problems] == [f"{path}:1", f"{path}:3"]
    assert "absent from line 2" in info.value.problems[1]
