"""Query files: checked whole first (every bad line at once), then read in chunks."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest

import smoothie_jax as sj


def test_chunks_hold_every_query_in_order(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl.gz"
    lines = [f'{{"instruction": "q{i}"}}' for i in range(7)] + ['{"instruction": "x", "idx": 9}']
    with gzip.open(path, "wt") as f:
        f.write("\n".join(lines[:4]) + "\n\n" + "\n".join(lines[4:]) + "\n")  # a blank line
    assert sj.data.check_queries(path) == 8
    chunks = list(sj.data.iter_query_chunks(path, 3))
    assert [len(c) for c in chunks] == [3, 3, 2]
    flat = [q for c in chunks for q in c]
    assert flat[0] == (1, "q0") and flat[4] == (6, "q4") and flat[-1] == (9, "x")


def test_outputs_and_other_keys_are_ignored(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text('{"instruction": "a", "outputs": {"m": "b"}, "topic": "t", "idx": "id-1"}\n')
    assert list(sj.data.iter_query_chunks(path, 10)) == [[("id-1", "a")]]


def test_every_bad_line_is_reported_at_once(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(
        '{"instruction": "fine"}\n{"prompt": "x"}\nnot json\n{"instruction": ""}\n'
        '{"instruction": "a", "idx": 1.5}\n'
    )
    with pytest.raises(sj.data.DataError) as info:
        sj.data.check_queries(path)
    assert len(info.value.problems) == 4
    assert f"{path}:2: missing 'instruction'" in str(info.value)


def test_an_empty_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "q.jsonl").write_text("\n")
    with pytest.raises(sj.data.DataError, match="empty"):
        sj.data.check_queries(tmp_path / "q.jsonl")


def test_serve_reexports_the_reader() -> None:
    assert sj.serve.check_queries is sj.data.check_queries
    assert sj.serve.iter_query_chunks is sj.data.iter_query_chunks
