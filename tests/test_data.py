"""Data files: round trips, the shared alpaca_eval file, malformed input, converters, atomicity."""

from __future__ import annotations

import gzip
import importlib.util
import json
import math
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest

from smoothie_jax.data._routing import (
    DataError,
    RoutingData,
    convert_alpaca_eval,
    read_jsonl,
    read_reference_layout,
    read_routing,
    write_jsonl,
    write_routing,
)

ROOT = Path(__file__).parents[1]
SHARED = ROOT.parent / "shared/data/alpaca_eval_dev.jsonl.gz"
EXAMPLES = ROOT / "examples/data"
MODELS = ("a", "b", "c")


def _data(**overrides: object) -> RoutingData:
    fields: dict = dict(
        instructions=["What is 2+2?", "Capital of France?"],
        models=MODELS,
        outputs=[["4", "5", "four"], ["Paris", "Lyon", "Paris, France"]],
        scores=np.array([[1.0, 0.0, math.nan], [1.0, 0.0, 0.5]]),
        ids=[10, "q2"],
        extra=[{"reference_output": "4"}, {"reference_output": "Paris", "task": "geo"}],
    )
    fields.update(overrides)
    return RoutingData(**fields)


def _line(**overrides: object) -> dict:
    record: dict = {"instruction": "Say hi.", "outputs": {"a": "hi", "b": "hello", "c": "hey"}}
    record.update(overrides)
    return record


def _write_lines(path: Path, lines: list[object]) -> Path:
    """Test input, written raw so that malformed lines stay malformed."""
    text = "".join((x if isinstance(x, str) else json.dumps(x)) + "\n" for x in lines)
    path.write_text(text, encoding="utf-8")
    return path


def _assert_same(a: RoutingData, b: RoutingData) -> None:
    assert a.instructions == b.instructions
    assert a.models == b.models
    assert a.outputs == b.outputs
    if a.scores is None:
        assert b.scores is None
    else:
        np.testing.assert_array_equal(a.scores, b.scores)  # NaNs compare equal here
    assert a.ids == b.ids
    assert a.extra == b.extra


# --- RoutingData ---------------------------------------------------------------------


def test_routing_data_normalises_and_freezes() -> None:
    data = RoutingData(["x", "y"], ["a", "b", "c"], [["1", "22", "333"], ["4", "5", "6"]])
    assert data.models == MODELS
    assert data.ids == [1, 2] and data.extra == [{}, {}]
    assert data.scores is None and len(data) == 2
    np.testing.assert_array_equal(data.lengths(), [[1, 2, 3], [1, 1, 1]])
    assert data.lengths().dtype == np.int64
    with pytest.raises(AttributeError):
        data.models = ("z",)  # type: ignore[misc]
    scored = _data()
    with pytest.raises(ValueError, match="read-only"):
        scored.scores[0, 0] = 3.0  # type: ignore[index]


def test_subset_reorders_columns() -> None:
    data = _data(models=("a", "b", "c"), outputs=[["1", "2", "3"], ["4", "5", "6"]])
    sub = data.subset(["c", "a", "b"])
    assert sub.models == ("c", "a", "b")
    assert sub.outputs == [["3", "1", "2"], ["6", "4", "5"]]
    np.testing.assert_array_equal(sub.scores, data.scores[:, [2, 0, 1]])
    assert sub.ids == data.ids and sub.extra == data.extra
    with pytest.raises(ValueError, match=r"unknown models \['zz'\]"):
        data.subset(["a", "zz", "b"])
    with pytest.raises(ValueError, match="at least 3"):
        data.subset(["a", "b"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (dict(models=("a", "a", "c")), "distinct"),
        (dict(models=("a", "b"), outputs=[["1", "2"], ["3", "4"]], scores=None), "at least 3"),
        (dict(outputs=[["1", "2", "3"]]), "2 rows of 3"),
        (dict(scores=np.zeros((2, 2))), "shape"),
        (dict(ids=[1]), "one entry per instruction"),
        (dict(extra=[{"outputs": 1}, {}]), "clash"),
    ],
)
def test_routing_data_checks(overrides: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _data(**overrides)


def test_lengths_needs_outputs() -> None:
    with pytest.raises(ValueError, match="no outputs"):
        RoutingData(["x"]).lengths()


# --- round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    data = _data()
    path = tmp_path / name
    assert write_routing(path, data) == 2
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    _assert_same(read_routing(path), data)
    # NaN is written as null, the format's "unknown".
    assert read_jsonl(path)[0]["scores"]["c"] is None


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    one, two = tmp_path / "one/data.jsonl.gz", tmp_path / "two/data.jsonl.gz"
    write_routing(one, _data())
    write_routing(two, _data())
    assert one.read_bytes() == two.read_bytes()
    header = one.read_bytes()[:32]
    assert header[4:8] == b"\0\0\0\0"  # no timestamp
    assert b"data.jsonl\0" in header  # the real name, not the temporary file's


def test_gzip_detected_by_content_not_name(tmp_path: Path) -> None:
    path = tmp_path / "misnamed.jsonl"
    path.write_bytes(gzip.compress(json.dumps(_line()).encode() + b"\n"))
    assert read_routing(path).outputs == [["hi", "hello", "hey"]]


def test_unicode_survives(tmp_path: Path) -> None:
    data = _data(instructions=["Ça va ? 日本", "naïve"])
    write_routing(tmp_path / "u.jsonl", data)
    assert "日本" in (tmp_path / "u.jsonl").read_text(encoding="utf-8")  # not \u-escaped
    _assert_same(read_routing(tmp_path / "u.jsonl"), data)


def test_query_file_round_trip(tmp_path: Path) -> None:
    queries = RoutingData(["first?", "second?"], ids=[0, 1], extra=[{"task": "t"}, {}])
    write_routing(tmp_path / "q.jsonl", queries)
    assert read_jsonl(tmp_path / "q.jsonl")[0] == {"idx": 0, "instruction": "first?", "task": "t"}
    back = read_routing(tmp_path / "q.jsonl", require_outputs=False)
    assert back.outputs is None and back.scores is None and back.models == ()
    _assert_same(back, queries)
    with pytest.raises(DataError, match=r"q\.jsonl:1: missing 'outputs'.*require_outputs"):
        read_routing(tmp_path / "q.jsonl")


def test_defaults_when_keys_absent(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "d.jsonl", ["", _line(), "   ", _line(scores={"a": 1})])
    data = read_routing(path)
    assert data.ids == [2, 4]  # 1-based line numbers, blank lines skipped
    np.testing.assert_array_equal(data.scores, [[np.nan] * 3, [1.0, np.nan, np.nan]])
    assert data.scores.dtype == np.float64
    no_scores = read_routing(_write_lines(tmp_path / "n.jsonl", [_line()]))
    assert no_scores.scores is None


def test_model_order_follows_first_line(tmp_path: Path) -> None:
    first = _line(outputs={"c": "1", "a": "2", "b": "3"})
    second = _line(outputs={"a": "x", "b": "y", "c": "z"}, scores={"b": 0.5})
    data = read_routing(_write_lines(tmp_path / "o.jsonl", [first, second]))
    assert data.models == ("c", "a", "b")
    assert data.outputs == [["1", "2", "3"], ["z", "x", "y"]]
    np.testing.assert_array_equal(data.scores[1], [np.nan, np.nan, 0.5])


def test_write_jsonl_counts_and_reads_back(tmp_path: Path) -> None:
    records = [{"a": 1}, {"b": [1, 2], "c": None}]
    assert write_jsonl(tmp_path / "r.jsonl.gz", iter(records)) == 2
    assert read_jsonl(tmp_path / "r.jsonl.gz") == records


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

GOOD = _line()
MALFORMED = [
    # (lines, line number named, message fragment)
    ([GOOD, '{"instruction": "x",'], 2, "bad JSON"),
    ([GOOD, "[1, 2, 3]"], 2, "expected a JSON object, got list"),
    ([GOOD, '"just a string"'], 2, "expected a JSON object, got str"),
    ([GOOD, {"outputs": GOOD["outputs"]}], 2, "missing 'instruction'"),
    ([GOOD, _line(instruction=7)], 2, "'instruction' must be a string, got int"),
    ([_line(instruction="  ")], 1, "'instruction' is empty"),
    ([GOOD, {"instruction": "x"}], 2, "missing 'outputs'"),
    ([_line(outputs=["hi", "hello", "hey"])], 1, "'outputs' must be an object, got list"),
    ([GOOD, _line(outputs="hi")], 2, "'outputs' must be an object, got str"),
    ([GOOD, _line(outputs={"a": "1", "b": "2", "c": "3", "d": "4"})], 2, "has model 'd'"),
    ([_line(outputs={"a": "1", "b": "2"})], 1, "2 models ['a', 'b']; Smoothie needs at least 3"),
    ([_line(outputs={"a": "1", "b": "2", "c": 7})], 1, "output of model 'c' must be a string"),
    ([GOOD, _line(outputs={"a": "1", "b": ["2"], "c": "3"})], 2, "or null if it did not"),
    (
        ['{"instruction": "x", "outputs": {"a": "1", "a": "2", "b": "3", "c": "4"}}'],
        1,
        "duplicate key 'a'",
    ),
    ([GOOD, _line(scores={"a": "high"})], 2, "score of model 'a' must be a number or null"),
    ([_line(scores={"b": True})], 1, "score of model 'b' must be a number or null"),
    ([_line(scores=[1, 0, 0])], 1, "'scores' must be an object, got list"),
    ([_line(scores={"zz": 1.0})], 1, "'scores' has model 'zz'"),
    (
        ['{"instruction": "x", "outputs": {"a": "1", "b": "2", "c": "3"}, "scores": {"a": NaN}}'],
        1,
        "use null instead",
    ),
    ([_line(idx=3), _line(idx=3)], 2, "'idx' 3 repeats line 1"),
    ([_line(idx=[1])], 1, "'idx' must be an int or a string"),
]


@pytest.mark.parametrize(("lines", "line", "fragment"), MALFORMED)
def test_malformed_routing_file(tmp_path: Path, lines: list, line: int, fragment: str) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", lines)
    with pytest.raises(DataError) as info:
        read_routing(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: "), message
    assert fragment in message


def test_query_file_with_outputs_later(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "q.jsonl", [{"instruction": "x"}, GOOD])
    with pytest.raises(DataError, match=r"q\.jsonl:2: has 'outputs' but line 1 has none"):
        read_routing(path, require_outputs=False)
    path = _write_lines(tmp_path / "s.jsonl", [{"instruction": "x", "scores": {}}])
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


# --- the reference code's layout -----------------------------------------------------


def _reference_layout(tmp_path: Path, n: int = 3, suffix: str = "") -> tuple[Path, Path]:
    inputs = _write_lines(
        tmp_path / "inputs.jsonl",
        [
            {"embedding_input": f"question {i}", "reference": f"answer {i}", "idx": 100 + i}
            for i in range(n)
        ],
    )
    gens = tmp_path / "model_gens"
    gens.mkdir()
    for model in ("zeta", "alpha", "mid"):
        texts = [f"{model} says {i}" for i in range(n)]
        (gens / f"{model}{suffix}.json").write_text(json.dumps({"generations": texts}))
    return inputs, gens


def test_reference_layout(tmp_path: Path) -> None:
    inputs, gens = _reference_layout(tmp_path)
    data = read_reference_layout(inputs, gens)
    assert data.models == ("alpha", "mid", "zeta")  # discovered, sorted
    assert data.instructions == ["question 0", "question 1", "question 2"]
    assert data.outputs[1] == ["alpha says 1", "mid says 1", "zeta says 1"]
    assert data.scores is None
    assert data.ids == [100, 101, 102]
    assert data.extra[2] == {"reference": "answer 2"}
    ordered = read_reference_layout(inputs, gens, models=["zeta", "alpha", "mid"])
    assert ordered.outputs[0] == ["zeta says 0", "alpha says 0", "mid says 0"]
    # It writes out as an ordinary routing file.
    write_routing(tmp_path / "out.jsonl", data)
    _assert_same(read_routing(tmp_path / "out.jsonl"), data)


def test_reference_layout_suffix_and_text_field(tmp_path: Path) -> None:
    inputs, gens = _reference_layout(tmp_path, suffix="_test")
    data = read_reference_layout(inputs, gens, suffix="_test")
    assert data.models == ("alpha", "mid", "zeta")
    by_reference = read_reference_layout(inputs, gens, suffix="_test", text_field="reference")
    assert by_reference.instructions[0] == "answer 0"
    assert by_reference.extra[0] == {"embedding_input": "question 0"}


def test_reference_layout_errors(tmp_path: Path) -> None:
    inputs, gens = _reference_layout(tmp_path)
    (gens / "mid.json").write_text(json.dumps({"generations": ["x", "y"]}))
    with pytest.raises(
        DataError, match=r"mid\.json: model 'mid' has 2 generations but .* 3 inputs"
    ):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text(json.dumps({"outputs": ["x", "y", "z"]}))
    with pytest.raises(DataError, match=r"mid\.json: expected an object with a 'generations'"):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text('{"generations": ["x", "y",')
    with pytest.raises(DataError, match=r"mid\.json:1: bad JSON"):
        read_reference_layout(inputs, gens)

    # An empty generation is an answer, null a model that did not answer: both read.
    (gens / "mid.json").write_text(json.dumps({"generations": ["x", " ", None]}))
    data = read_reference_layout(inputs, gens)
    assert [row[1] for row in data.outputs] == ["x", " ", None]
    assert data.observed[:, 1].tolist() == [True, True, False]
    (gens / "mid.json").write_text(json.dumps({"generations": ["x", 3, "z"]}))
    with pytest.raises(DataError, match=r"generations\[1\] \(input 101\) of model 'mid' must"):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text(json.dumps({"generations": [["x"], ["y"], ["z"]]}))
    with pytest.raises(DataError, match=r"generations\[0\] is a list"):
        read_reference_layout(inputs, gens)

    (gens / "mid.json").write_text(json.dumps({"generations": ["x", "y", "z"]}))
    assert read_reference_layout(inputs, gens).outputs[2][1] == "z"
    with pytest.raises(FileNotFoundError, match=r"nope\.json: no such file"):
        read_reference_layout(inputs, gens, models=["alpha", "mid", "nope"])
    with pytest.raises(DataError, match="2 models"):
        read_reference_layout(inputs, gens, models=["alpha", "mid"])
    with pytest.raises(FileNotFoundError, match="no such folder"):
        read_reference_layout(inputs, tmp_path / "missing")


def test_reference_layout_input_errors(tmp_path: Path) -> None:
    _, gens = _reference_layout(tmp_path)
    bad = _write_lines(tmp_path / "bad.jsonl", [{"embedding_input": "q"}, {"input": "q"}])
    with pytest.raises(DataError, match=rf"^{bad}:2: missing 'embedding_input'"):
        read_reference_layout(bad, gens)
    none = _write_lines(tmp_path / "none.jsonl", [{"text": "q"}])
    with pytest.raises(DataError, match=rf"^{none}:1: no input text field"):
        read_reference_layout(none, gens)
    clash = _write_lines(tmp_path / "clash.jsonl", [{"input": "q", "outputs": 1}])
    with pytest.raises(DataError, match=rf"^{clash}:1: key 'outputs' beside the text field"):
        read_reference_layout(clash, gens)


# --- alpaca_eval results/ ------------------------------------------------------------

INSTRUCTIONS = ["Write a haiku.", "Explain gravity.", "List three fruits.", "Say hello."]


def _results(tmp_path: Path, prefs: dict[str, list[float | None]] | None = None) -> Path:
    """A tiny alpaca_eval results/ folder; each model lists its items in its own order."""
    prefs = prefs or {
        "m1": [1.0, 2.0, 1.5, None],
        "m2": [1.2, 1.0, 2.0, 1.9],
        "m3": [2.0, 2.0, 1.0, 1.0],
    }
    results = tmp_path / "results"
    for shift, (model, values) in enumerate(prefs.items()):
        order = INSTRUCTIONS[shift:] + INSTRUCTIONS[:shift]
        outputs = [
            {"instruction": s, "output": f"{model}: {s}", "generator": model, "dataset": "d"}
            for s in order
        ]
        annotations = [
            {
                "instruction": s,
                "output_1": f"ref: {s}",
                "generator_1": "gpt4_turbo",
                "output_2": f"{model}: {s}",
                "generator_2": model,
                "preference": values[INSTRUCTIONS.index(s)],
            }
            for s in reversed(order)
        ]
        (results / model / "weighted_alpaca_eval_gpt4_turbo").mkdir(parents=True)
        (results / model / "model_outputs.json").write_text(json.dumps(outputs))
        (results / model / "weighted_alpaca_eval_gpt4_turbo/annotations.json").write_text(
            json.dumps(annotations)
        )
    (results / "not_a_model").mkdir()  # folders without model_outputs.json are ignored
    return results


def _edit(path: Path, change: Callable[[list[dict]], object]) -> None:
    items = json.loads(path.read_text())
    change(items)
    path.write_text(json.dumps(items))


@pytest.mark.parametrize("name", ["routing.jsonl", "routing.jsonl.gz"])
def test_convert_alpaca_eval(tmp_path: Path, name: str) -> None:
    results = _results(tmp_path)
    out = tmp_path / name
    assert convert_alpaca_eval(results, out) == 4
    data = read_routing(out)
    assert data.models == ("m1", "m2", "m3")
    assert data.instructions == INSTRUCTIONS  # the first model's order
    assert data.ids == [0, 1, 2, 3]
    for i, s in enumerate(INSTRUCTIONS):
        assert data.outputs[i] == [f"m1: {s}", f"m2: {s}", f"m3: {s}"]
        assert data.extra[i] == {
            "dataset": "d",
            "reference_output": f"ref: {s}",
            "reference_generator": "gpt4_turbo",
        }
    expected = np.array([[0.0, 1.0, 0.5, np.nan], [0.2, 0.0, 1.0, 0.9], [1.0, 1.0, 0.0, 0.0]]).T
    np.testing.assert_allclose(data.scores, expected)
    convert_alpaca_eval(results, out, models=["m3", "m1", "m2"])
    assert read_routing(out).models == ("m3", "m1", "m2")


def _misalign_missing(results: Path) -> None:
    def drop(items: list[dict]) -> None:
        items[:] = [item for item in items if item["instruction"] != "Explain gravity."]

    _edit(results / "m2/model_outputs.json", drop)


def _misalign_extra(results: Path) -> None:
    _edit(
        results / "m3/model_outputs.json",
        lambda items: items.append({"instruction": "An extra one.", "output": "x"}),
    )


def _misalign_duplicate(results: Path) -> None:
    _edit(results / "m2/model_outputs.json", lambda items: items.append(dict(items[0])))


def _misalign_output_2(results: Path) -> None:
    path = results / "m3/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    _edit(path, lambda items: items[0].update(output_2="another run's text"))


def _misalign_annotation_missing(results: Path) -> None:
    path = results / "m1/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    _edit(path, lambda items: items.pop())


def _bad_preference(results: Path) -> None:
    path = results / "m2/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    _edit(path, lambda items: items[0].update(preference=3.0))


def _empty_output(results: Path) -> None:
    _edit(results / "m1/model_outputs.json", lambda items: items[2].update(output=""))


@pytest.mark.parametrize(
    ("damage", "pattern"),
    [
        (
            _misalign_missing,
            r"m2/model_outputs\.json: model 'm2' lacks 1 instruction\(s\) of "
            r"model 'm1', e\.g\. 'Explain gravity\.'",
        ),
        (
            _misalign_extra,
            r"m3/model_outputs\.json: model 'm3' has 1 instruction\(s\) not in "
            r"model 'm1', e\.g\. 'An extra one\.'",
        ),
        (_misalign_duplicate, r"model 'm2' has two entries for instruction"),
        (
            _misalign_output_2,
            r"m3/weighted_alpaca_eval_gpt4_turbo/annotations\.json: model "
            r"'m3': output_2 for instruction .* differs",
        ),
        (_misalign_annotation_missing, r"annotations\.json: model 'm1' lacks 1 instruction"),
        (_bad_preference, r"model 'm2': preference 3\.0 .* not a number in \[1, 2\]"),
    ],
)
def test_convert_alpaca_eval_misaligned(
    tmp_path: Path, damage: Callable[[Path], None], pattern: str
) -> None:
    results = _results(tmp_path)
    damage(results)
    out = tmp_path / "routing.jsonl"
    with pytest.raises(DataError, match=pattern):
        convert_alpaca_eval(results, out)
    assert not out.exists()


def test_convert_alpaca_eval_needs_three_models(tmp_path: Path) -> None:
    results = _results(tmp_path, {"m1": [1.0] * 4, "m2": [1.0] * 4})
    with pytest.raises(DataError, match="2 models"):
        convert_alpaca_eval(results, tmp_path / "out.jsonl")
    with pytest.raises(FileNotFoundError, match="no such folder"):
        convert_alpaca_eval(tmp_path / "nowhere", tmp_path / "out.jsonl")


# --- atomicity -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["keep.jsonl", "keep.jsonl.gz"])
def test_failed_write_keeps_previous_file(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    write_jsonl(path, [{"old": 1}])
    before = path.read_bytes()

    def records() -> Iterator[dict]:  # fails part-way
        yield {"new": 1}
        yield {"new": 2}
        raise RuntimeError("disk on fire")

    with pytest.raises(RuntimeError, match="disk on fire"):
        write_jsonl(path, records())
    with pytest.raises(TypeError, match="record 1: .*not JSON serializable"):
        write_jsonl(path, [{"ok": 1}, {"bad": object()}])
    with pytest.raises(ValueError, match="record 0"):
        write_jsonl(path, [{"nan": math.nan}])
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == [name]  # no temp file left behind


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


def test_quiz_generator_is_deterministic(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_quiz", EXAMPLES / "make_quiz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("quiz.jsonl", "quiz_train.jsonl", "quiz_queries.jsonl"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name


# --- real files: empty and missing answers, every bad line at once (issue 11) --------


def test_convert_alpaca_eval_keeps_an_empty_output(tmp_path: Path) -> None:
    results = _results(tmp_path)
    _empty_output(results)  # m1's answer to instruction 2 is ""
    path = results / "m1/weighted_alpaca_eval_gpt4_turbo/annotations.json"
    fruits = "List three fruits."

    def blank(items: list[dict]) -> None:
        next(item for item in items if item["instruction"] == fruits).update(output_2="")

    _edit(path, blank)
    out = tmp_path / "routing.jsonl"
    assert convert_alpaca_eval(results, out) == 4
    data = read_routing(out)
    assert data.outputs[data.instructions.index(fruits)][0] == ""


def test_empty_and_missing_outputs_read(tmp_path: Path) -> None:
    path = _write_lines(
        tmp_path / "sparse.jsonl",
        [
            GOOD,
            _line(outputs={"a": "", "b": "  ", "c": "x"}),  # empty answers: kept
            _line(outputs={"a": "1", "b": None, "c": "3"}),  # null: b did not answer
            _line(outputs={"a": "1", "c": "3"}, scores={"a": 1.0, "b": 0.5}),  # b absent
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
    _assert_same(again, data)
    np.testing.assert_array_equal(again.observed, data.observed)
    assert data.subset(["c", "b", "a"]).observed[2].tolist() == [True, False, True]


def test_unknown_model_on_a_later_line_is_refused(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", [GOOD, _line(outputs={"a": "1", "zz": "2"})])
    with pytest.raises(
        DataError, match=r"bad\.jsonl:2: 'outputs' has model 'zz', absent from line 1"
    ):
        read_routing(path)


def test_every_bad_line_is_reported(tmp_path: Path) -> None:
    lines: list[object] = [GOOD]
    for i in range(30):  # 30 bad lines of three kinds, among good ones
        lines += [GOOD, ['{"instruction": ', _line(instruction=7), _line(scores={"a": "x"})][i % 3]]
    path = _write_lines(tmp_path / "bad.jsonl", lines)
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
        read_jsonl(_write_lines(tmp_path / "two.jsonl", ["[", GOOD, "{"]))


def test_a_bad_first_line_does_not_hide_the_others(tmp_path: Path) -> None:
    path = _write_lines(tmp_path / "bad.jsonl", ["{", GOOD, _line(outputs={"a": "1", "q": "2"})])
    with pytest.raises(DataError) as info:
        read_routing(path)
    assert [p.split(": ")[0] for p in info.value.problems] == [f"{path}:1", f"{path}:3"]
    assert "absent from line 2" in info.value.problems[1]
