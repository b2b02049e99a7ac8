"""Writers: round trips through the reader, reproducible gzip, atomic replacement."""

from __future__ import annotations

import importlib.util
import math
from collections.abc import Iterator
from pathlib import Path

import pytest
from routing_samples import assert_same, sample_data

from smoothie_jax.data import (
    DataError,
    RoutingData,
    read_jsonl,
    read_routing,
    write_jsonl,
    write_routing,
)

ROOT = Path(__file__).parents[2]
EXAMPLES = ROOT / "examples/data"


@pytest.mark.parametrize("name", ["data.jsonl", "data.jsonl.gz"])
def test_round_trip(tmp_path: Path, name: str) -> None:
    data = sample_data()
    path = tmp_path / name
    assert write_routing(path, data) == 2
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == name.endswith(".gz")
    assert_same(read_routing(path), data)
    # NaN is written as null, the format's "unknown".
    assert read_jsonl(path)[0]["scores"]["c"] is None


def test_gzip_output_is_reproducible(tmp_path: Path) -> None:
    one, two = tmp_path / "one/data.jsonl.gz", tmp_path / "two/data.jsonl.gz"
    write_routing(one, sample_data())
    write_routing(two, sample_data())
    assert one.read_bytes() == two.read_bytes()
    header = one.read_bytes()[:32]
    assert header[4:8] == b"\0\0\0\0"  # no timestamp
    assert b"data.jsonl\0" in header  # the real name, not the temporary file's


def test_unicode_survives(tmp_path: Path) -> None:
    data = sample_data(instructions=["Ça va ? 日本", "naïve"])
    write_routing(tmp_path / "u.jsonl", data)
    assert "日本" in (tmp_path / "u.jsonl").read_text(encoding="utf-8")  # not \u-escaped
    assert_same(read_routing(tmp_path / "u.jsonl"), data)


def test_query_file_round_trip(tmp_path: Path) -> None:
    queries = RoutingData(["first?", "second?"], ids=[0, 1], extra=[{"task": "t"}, {}])
    write_routing(tmp_path / "q.jsonl", queries)
    assert read_jsonl(tmp_path / "q.jsonl")[0] == {"idx": 0, "instruction": "first?", "task": "t"}
    back = read_routing(tmp_path / "q.jsonl", require_outputs=False)
    assert back.outputs is None and back.scores is None and back.models == ()
    assert_same(back, queries)
    with pytest.raises(DataError, match=r"q\.jsonl:1: missing 'outputs'.*require_outputs"):
        read_routing(tmp_path / "q.jsonl")


def test_write_jsonl_counts_and_reads_back(tmp_path: Path) -> None:
    records = [{"a": 1}, {"b": [1, 2], "c": None}]
    assert write_jsonl(tmp_path / "r.jsonl.gz", iter(records)) == 2
    assert read_jsonl(tmp_path / "r.jsonl.gz") == records


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


def test_quiz_generator_is_deterministic(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("make_quiz", EXAMPLES / "make_quiz.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in ("quiz.jsonl", "quiz_train.jsonl", "quiz_queries.jsonl"):
        assert (tmp_path / name).read_bytes() == (EXAMPLES / name).read_bytes(), name
